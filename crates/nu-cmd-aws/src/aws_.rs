//! `aws`: the root of the AWS commands.

crate::external::group_command!(
    Aws,
    "aws",
    [],
    "Native AWS commands: S3 and EC2 as typed, streaming Nushell tables.",
    "The subcommands below run inside nuaws: no process is spawned and results are Nushell tables.
Anything else under `aws` (for example `aws iam list-users` or `aws sts get-caller-identity`) runs the installed AWS CLI with the same arguments; `^aws ...` always does.

Every native command takes --profile, --region and --endpoint-url; without them it uses $env.AWS_PROFILE, $env.AWS_REGION (or AWS_DEFAULT_REGION) and $env.AWS_ENDPOINT_URL of this shell."
);
