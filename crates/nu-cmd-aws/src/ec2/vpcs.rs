//! `aws ec2 vpcs`.

use aws_core::ec2::Listing;

use super::ListingSpec;

pub static SPEC: ListingSpec = ListingSpec {
    name: "aws ec2 vpcs",
    listing: Listing::Vpcs,
    description: "List VPCs: id, name, CIDR block, state, whether default, owner and tags.",
    extra_description: "",
    search_terms: &["describe-vpcs", "network"],
    ids: Some("VPC ids"),
    owners: false,
    examples: &[
        ("All VPCs.", "aws ec2 vpcs"),
        ("The default VPC.", "aws ec2 vpcs --filter {is-default: true}"),
    ],
};
