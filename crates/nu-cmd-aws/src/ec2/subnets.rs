//! `aws ec2 subnets`.

use aws_core::ec2::Listing;

use super::ListingSpec;

pub static SPEC: ListingSpec = ListingSpec {
    name: "aws ec2 subnets",
    listing: Listing::Subnets,
    description: "List subnets: id, name, VPC, CIDR block, availability zone, free addresses, state and tags.",
    extra_description: "",
    search_terms: &["describe-subnets", "network"],
    ids: Some("subnet ids"),
    owners: false,
    examples: &[
        ("All subnets.", "aws ec2 subnets"),
        ("Subnets with the most free addresses first.", "aws ec2 subnets | sort-by available_ips --reverse"),
    ],
};
