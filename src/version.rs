//! nuaws's `version`: nushell's own record plus the nuaws and Nushell versions, so a bug report
//! says both. Not the place for anything AWS-specific beyond naming the SDK build.

use nu_engine::command_prelude::*;
use nu_protocol::engine::StateWorkingSet;

/// The Nushell release this binary carries, read from Cargo.lock by `build.rs`.
pub const NUSHELL_VERSION: &str = env!("NUAWS_NUSHELL_VERSION");

/// The line `nuaws --version` prints.
pub fn version_line() -> String {
    format!(
        "nuaws {} (nushell {NUSHELL_VERSION})",
        env!("CARGO_PKG_VERSION")
    )
}

#[derive(Clone)]
struct Version;

impl Command for Version {
    fn name(&self) -> &str {
        "version"
    }

    fn signature(&self) -> Signature {
        Signature::build("version")
            .input_output_types(vec![(Type::Nothing, Type::record())])
            .allow_variants_without_examples(true)
            .category(Category::Core)
    }

    fn description(&self) -> &str {
        "Display nuaws's version, the Nushell version it carries, and its build configuration."
    }

    fn run(
        &self,
        engine_state: &EngineState,
        stack: &mut Stack,
        call: &Call,
        input: PipelineData,
    ) -> Result<PipelineData, ShellError> {
        let span = call.head;
        let base = nu_cmd_lang::Version
            .run(engine_state, stack, call, input)?
            .into_value(span)?;
        let mut record = Record::new();
        record.push("nuaws_version", Value::string(env!("CARGO_PKG_VERSION"), span));
        record.push("nushell_version", Value::string(NUSHELL_VERSION, span));
        if let Value::Record { val, .. } = base {
            for (k, v) in val.into_owned() {
                record.push(k, v);
            }
        }
        Ok(Value::record(record, span).into_pipeline_data())
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![Example {
            description: "Which Nushell does this nuaws carry.",
            example: "version | get nushell_version",
            result: None,
        }]
    }
}

/// Registers nuaws's `version` in place of nushell's (the later declaration wins).
pub fn add_version_command(mut engine_state: EngineState) -> EngineState {
    let mut working_set = StateWorkingSet::new(&engine_state);
    working_set.add_decl(Box::new(Version));
    let delta = working_set.render();
    if let Err(err) = engine_state.merge_delta(delta) {
        eprintln!("Error creating the version command: {err:?}");
    }
    engine_state
}
