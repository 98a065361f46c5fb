//! `aws ec2 snapshots`.

use aws_core::ec2::Listing;

use super::ListingSpec;

pub static SPEC: ListingSpec = ListingSpec {
    name: "aws ec2 snapshots",
    listing: Listing::Snapshots,
    description: "List EBS snapshots owned by the account (or --owner): id, volume, size, state, start time and tags.",
    extra_description: "Defaults to the snapshots the account owns; the AWS CLI's default also lists every public snapshot.",
    search_terms: &["describe-snapshots", "ebs", "backup"],
    ids: Some("snapshot ids"),
    owners: true,
    examples: &[
        ("The account's snapshots.", "aws ec2 snapshots"),
        ("Snapshots older than 90 days.", "aws ec2 snapshots | where started < ((date now) - 90day)"),
    ],
};
