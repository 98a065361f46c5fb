//! `aws ec2`: the EC2 group.

crate::external::group_command!(
    Ec2,
    "aws ec2",
    ["ec2"],
    "Amazon EC2: instances and their resources as Nushell tables.",
    "Native: instances, security-groups, vpcs, subnets, volumes, snapshots, images, regions, enrich, start, stop, terminate. Listings take ids as arguments and server-side filters as a record (--filter {instance-state-name: running}), and run in several regions at once with --regions [a b] or --all-regions. Any other `aws ec2 ...` runs the installed AWS CLI with the same arguments."
);
