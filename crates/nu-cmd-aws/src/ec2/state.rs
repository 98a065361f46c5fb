//! The shared implementation of `aws ec2 start|stop|terminate`: instance ids from the arguments
//! or the pipeline (strings, or rows with an `id` column such as those of `aws ec2 instances`),
//! one row per instance with its previous and current state.

use std::sync::Arc;

use aws_core::ec2::{self, StateChange};
use aws_core::runtime::block_on;
use nu_engine::command_prelude::*;

use crate::context::{AwsContext, CallSession, session_flags};
use crate::ec2::listing::IdSpans;
use crate::values::row_to_value;

/// What distinguishes start, stop and terminate.
pub struct StateChangeSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub search_terms: &'static [&'static str],
    pub change: fn(force: bool) -> StateChange,
    /// Whether the command takes --force (stop).
    pub force: bool,
    pub examples: &'static [(&'static str, &'static str)],
}

#[derive(Clone)]
pub struct Ec2StateChange {
    pub ctx: Arc<AwsContext>,
    pub spec: &'static StateChangeSpec,
}

impl Command for Ec2StateChange {
    fn name(&self) -> &str {
        self.spec.name
    }

    fn signature(&self) -> Signature {
        let sig = session_flags(Signature::build(self.spec.name))
            .rest("ids", SyntaxShape::String, "Instance ids (or pipe them in).")
            .input_output_types(vec![
                (Type::Nothing, Type::table()),
                (Type::String, Type::table()),
                (Type::List(Box::new(Type::String)), Type::table()),
                (Type::record(), Type::table()),
                (Type::table(), Type::table()),
            ])
            .category(Category::Custom("aws".into()));
        if self.spec.force {
            sig.switch("force", "Force the instances to stop (no graceful shutdown).", None)
        } else {
            sig
        }
    }

    fn description(&self) -> &str {
        self.spec.description
    }

    fn search_terms(&self) -> Vec<&str> {
        self.spec.search_terms.to_vec()
    }

    fn examples(&self) -> Vec<Example<'_>> {
        self.spec
            .examples
            .iter()
            .map(|(description, example)| Example {
                description,
                example,
                result: None,
            })
            .collect()
    }

    crate::complete::completion_hook!(_cmd => Some(crate::complete::Candidates::Ids(aws_core::ec2::Listing::Instances)));

    fn run(
        &self,
        engine_state: &EngineState,
        stack: &mut Stack,
        call: &Call,
        input: PipelineData,
    ) -> Result<PipelineData, ShellError> {
        let mut ids: Vec<Spanned<String>> = call.rest(engine_state, stack, 0)?;
        if ids.is_empty() {
            if matches!(input, PipelineData::Empty) {
                return Err(ShellError::MissingParameter {
                    param_name: "instance ids (as arguments or from the pipeline)".into(),
                    span: call.head,
                });
            }
            ids = ids_from_input(input)?;
            if ids.is_empty() {
                // An empty selection (`where` matched nothing) changes nothing.
                return Ok(Value::list(vec![], call.head).into_pipeline_data());
            }
        }
        let force = self.spec.force && call.has_flag(engine_state, stack, "force")?;
        let cs = CallSession::resolve(&self.ctx, engine_state, stack, call)?;
        let interrupt = cs.interrupt();
        let change = (self.spec.change)(force);
        let id_list: Vec<String> = ids.iter().map(|id| id.item.clone()).collect();
        let ids = IdSpans { ids, spans: cs.spans };
        let result = block_on(&interrupt, ec2::change_state(&cs.session, id_list, change))
            .map_err(|_| ShellError::Interrupted { span: call.head })?;
        cs.instances_changed();
        let rows = result.map_err(|err| ids.to_shell_error(err))?;
        let head = call.head;
        Ok(Value::list(rows.into_iter().map(|r| row_to_value(r, head)).collect(), head)
            .into_pipeline_data())
    }
}

/// Ids from piped strings or from rows with an `id` (or `instance_id`) column.
fn ids_from_input(input: PipelineData) -> Result<Vec<Spanned<String>>, ShellError> {
    input
        .into_iter()
        .map(|value| {
            let span = value.span();
            let id = match &value {
                Value::Record { val, .. } => val
                    .get("id")
                    .or_else(|| val.get("instance_id"))
                    .ok_or_else(|| ShellError::CantFindColumn {
                        col_name: "id".into(),
                        span: None,
                        src_span: span,
                    })?
                    .coerce_string()?,
                Value::Error { error, .. } => return Err(*error.clone()),
                other => other.coerce_string()?,
            };
            Ok(Spanned { item: id, span })
        })
        .collect()
}
