//! `aws tags`: the tags group (help only: this is nuaws's own, not an AWS CLI command).

crate::external::help_group!(
    AwsTags,
    "aws tags",
    "Resources of EC2 and S3 found and correlated by their tags.",
    "`aws tags correlate Application` lists the instances, volumes, snapshots, security groups, VPCs and buckets carrying the tag key Application, sorted by its value, so that the resources of one application are together."
);
