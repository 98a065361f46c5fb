//! `aws ec2 instances`: one row per instance, flattened out of reservations.

use aws_core::ec2::Listing;

use super::ListingSpec;

pub static SPEC: ListingSpec = ListingSpec {
    name: "aws ec2 instances",
    listing: Listing::Instances,
    description: "List EC2 instances, one row each: id, name, state, type, launch time, addresses, network and tags.",
    extra_description: "Reservations are flattened away. `name` comes from the Name tag; `tags` is a record of all tags. Results stream page by page.",
    search_terms: &["describe-instances", "servers", "vm"],
    ids: Some("instance ids"),
    owners: false,
    examples: &[
        ("All instances of the current region.", "aws ec2 instances"),
        ("Running instances only, filtered by the server.", "aws ec2 instances --filter {instance-state-name: running}"),
        ("Instances of one team, by tag.", "aws ec2 instances | where tags.Team? == team-1 | select id name state"),
        ("How many instances of each type.", "aws ec2 instances | get type | uniq --count"),
        (
            "Instances of three accounts in two regions as one table, assuming the role in each account.",
            "aws ec2 instances --accounts [111111111111 222222222222 333333333333] --role-name OrganizationAccountAccessRole --regions [us-east-1 eu-west-1] | select account region id state",
        ),
        ("Instances per profile and account, through each of two profiles.", "aws ec2 instances --profiles [dev prod] | group-by profile account --to-table"),
    ],
};
