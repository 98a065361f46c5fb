//! `aws s3`: the S3 group.

crate::external::group_command!(
    S3,
    "aws s3",
    ["s3"],
    "Amazon S3: buckets and objects as Nushell tables and streams.",
    "Native: buckets, ls, open, save, head, rm, cp, sync, du. head, open, rm, cp and sync work on many objects at once through the request engine (see `aws engine`). Any other `aws s3 ...` (mb, presign, ...) runs the installed AWS CLI with the same arguments."
);
