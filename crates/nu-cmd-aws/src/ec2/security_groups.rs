//! `aws ec2 security-groups`.

use aws_core::ec2::Listing;

use super::ListingSpec;

pub static SPEC: ListingSpec = ListingSpec {
    name: "aws ec2 security-groups",
    listing: Listing::SecurityGroups,
    description: "List EC2 security groups: id, name, description, VPC, owner, rule counts and tags.",
    extra_description: "",
    search_terms: &["describe-security-groups", "firewall", "sg"],
    ids: Some("security group ids"),
    owners: false,
    examples: &[
        ("All security groups.", "aws ec2 security-groups"),
        ("The groups of one VPC.", "aws ec2 security-groups | where vpc_id == (aws ec2 vpcs | first | get id)"),
    ],
};
