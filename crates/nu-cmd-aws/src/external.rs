//! The `aws`, `aws s3` and `aws ec2` group commands: with no arguments they show help listing
//! the native subcommands; with arguments (a subcommand nuaws does not implement natively, such
//! as `aws s3 sync` or `aws iam list-users`) they run the installed AWS CLI with the same
//! arguments, through Nushell's own `run-external`, so nothing is lost by switching shells.
//! Groups of nuaws's own (`aws cache`, `aws tags`, ...) have no AWS CLI counterpart: they only
//! show their help ([`help_group!`]).

use nu_engine::{command_prelude::*, eval_call, get_full_help};
use nu_protocol::ast::{self, Expr, Expression};
use nu_protocol::debugger::WithoutDebug;
use nu_protocol::shell_error::generic::GenericError;

/// The shared signature of a group command.
pub fn group_signature(name: &str) -> Signature {
    Signature::build(name)
        .input_output_types(vec![(Type::Any, Type::Any)])
        .rest(
            "args",
            SyntaxShape::Any,
            "Arguments for the AWS CLI, for subcommands nuaws does not implement natively.",
        )
        .allows_unknown_args()
        .category(Category::Custom("aws".into()))
}

/// Runs a group command: help without arguments, else the AWS CLI (`words` are the group's own
/// words, e.g. `["s3"]`, put back in front of the user's arguments).
pub fn run_group(
    command: &dyn Command,
    words: &[&str],
    engine_state: &EngineState,
    stack: &mut Stack,
    call: &Call,
    input: PipelineData,
) -> Result<PipelineData, ShellError> {
    let args: Vec<Spanned<String>> = call
        .rest::<Value>(engine_state, stack, 0)?
        .into_iter()
        .map(|v| {
            let span = v.span();
            v.coerce_into_string().map(|item| Spanned { item, span })
        })
        .collect::<Result<_, _>>()?;
    if args.is_empty() {
        let help = get_full_help(command, engine_state, stack, call.head);
        return Ok(Value::string(help, call.head).into_pipeline_data());
    }
    if !aws_cli_installed(engine_state, stack) {
        let name = std::iter::once("aws")
            .chain(words.iter().copied())
            .chain(std::iter::once(args[0].item.as_str()))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(ShellError::Generic(
            GenericError::new(
                format!("`{name}` is not a native nuaws command"),
                "nuaws runs such commands with the AWS CLI, which is not installed",
                args[0].span,
            )
            .with_help(format!(
                "Install the AWS CLI v2 to run every AWS command, or see `{} --help` for the native ones.",
                std::iter::once("aws").chain(words.iter().copied()).collect::<Vec<_>>().join(" ")
            ))
            .with_code("nuaws::aws::cli_missing"),
        ));
    }
    run_aws_cli(words, &args, engine_state, stack, call.head, input)
}

fn run_aws_cli(
    words: &[&str],
    args: &[Spanned<String>],
    engine_state: &EngineState,
    stack: &mut Stack,
    head: Span,
    input: PipelineData,
) -> Result<PipelineData, ShellError> {
    let Some(run_external) = engine_state.find_decl(b"run-external", &[]) else {
        return Err(ShellError::Generic(GenericError::new_internal(
            "run-external is missing",
            "this nuaws was built without Nushell's external command support",
        )));
    };
    let string_arg = |text: &str, span: Span| {
        Expression::new_unknown(Expr::String(text.to_string()), span, Type::String)
    };
    let mut external = ast::Call::new(head);
    external.decl_id = run_external;
    external.add_positional(string_arg("aws", head));
    for word in words {
        external.add_positional(string_arg(word, head));
    }
    for arg in args {
        external.add_positional(string_arg(&arg.item, arg.span));
    }
    eval_call::<WithoutDebug>(engine_state, stack, &external, input)
}

/// Whether an executable `aws` is on the shell's PATH (the shell's, not the process's).
fn aws_cli_installed(engine_state: &EngineState, stack: &Stack) -> bool {
    let Some(path) = stack.get_env_var(engine_state, "PATH") else {
        return false;
    };
    let dirs: Vec<String> = match path {
        Value::List { vals, .. } => vals.iter().filter_map(|v| v.coerce_string().ok()).collect(),
        other => other
            .coerce_string()
            .map(|s| std::env::split_paths(&s).map(|p| p.to_string_lossy().into_owned()).collect())
            .unwrap_or_default(),
    };
    dirs.iter().any(|dir| is_executable(&std::path::Path::new(dir).join("aws")))
}

#[cfg(unix)]
fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable(path: &std::path::Path) -> bool {
    path.with_extension("exe").is_file() || path.with_extension("cmd").is_file()
}

/// Defines a group command type: name, words before the user's arguments, description.
macro_rules! group_command {
    ($ty:ident, $name:literal, [$($word:literal),*], $description:literal, $extra:literal) => {
        #[derive(Clone)]
        pub struct $ty;

        impl nu_engine::command_prelude::Command for $ty {
            fn name(&self) -> &str {
                $name
            }

            fn signature(&self) -> nu_engine::command_prelude::Signature {
                $crate::external::group_signature($name)
            }

            fn description(&self) -> &str {
                $description
            }

            fn extra_description(&self) -> &str {
                $extra
            }

            fn search_terms(&self) -> Vec<&str> {
                vec!["amazon", "cloud"]
            }

            fn run(
                &self,
                engine_state: &nu_engine::command_prelude::EngineState,
                stack: &mut nu_engine::command_prelude::Stack,
                call: &nu_engine::command_prelude::Call,
                input: nu_engine::command_prelude::PipelineData,
            ) -> Result<nu_engine::command_prelude::PipelineData, nu_engine::command_prelude::ShellError> {
                $crate::external::run_group(self, &[$($word),*], engine_state, stack, call, input)
            }
        }
    };
}

pub(crate) use group_command;

/// A group of nuaws's own (no AWS CLI counterpart): running it shows its help.
macro_rules! help_group {
    ($ty:ident, $name:literal, $description:literal, $extra:literal) => {
        #[derive(Clone)]
        pub struct $ty;

        impl nu_engine::command_prelude::Command for $ty {
            fn name(&self) -> &str {
                $name
            }

            fn signature(&self) -> nu_engine::command_prelude::Signature {
                nu_engine::command_prelude::Signature::build(self.name())
                    .input_output_types(vec![(
                        nu_engine::command_prelude::Type::Nothing,
                        nu_engine::command_prelude::Type::String,
                    )])
                    .category(nu_engine::command_prelude::Category::Custom("aws".into()))
            }

            fn description(&self) -> &str {
                $description
            }

            fn extra_description(&self) -> &str {
                $extra
            }

            fn run(
                &self,
                engine_state: &nu_engine::command_prelude::EngineState,
                stack: &mut nu_engine::command_prelude::Stack,
                call: &nu_engine::command_prelude::Call,
                _input: nu_engine::command_prelude::PipelineData,
            ) -> Result<nu_engine::command_prelude::PipelineData, nu_engine::command_prelude::ShellError> {
                let help = nu_engine::get_full_help(self, engine_state, stack, call.head);
                Ok(nu_engine::command_prelude::IntoPipelineData::into_pipeline_data(
                    nu_engine::command_prelude::Value::string(help, call.head),
                ))
            }
        }
    };
}

pub(crate) use help_group;
