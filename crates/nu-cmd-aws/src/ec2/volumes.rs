//! `aws ec2 volumes`.

use aws_core::ec2::Listing;

use super::ListingSpec;

pub static SPEC: ListingSpec = ListingSpec {
    name: "aws ec2 volumes",
    listing: Listing::Volumes,
    description: "List EBS volumes: id, name, size, type, state, zone, encryption, attachments and tags.",
    extra_description: "",
    search_terms: &["describe-volumes", "ebs", "disk"],
    ids: Some("volume ids"),
    owners: false,
    examples: &[
        ("All volumes.", "aws ec2 volumes"),
        ("Unattached volumes and the space they hold.", "aws ec2 volumes --filter {status: available} | get size | math sum"),
    ],
};
