//! `aws ec2 images`.

use aws_core::ec2::Listing;

use super::ListingSpec;

pub static SPEC: ListingSpec = ListingSpec {
    name: "aws ec2 images",
    listing: Listing::Images,
    description: "List AMIs owned by the account (or --owner): id, name, state, owner, creation time, architecture and tags.",
    extra_description: "Defaults to the images the account owns; pass --owner [amazon] or an account id for others. Listing every public image (the AWS CLI's default) is never done implicitly.",
    search_terms: &["describe-images", "ami"],
    ids: Some("image ids"),
    owners: true,
    examples: &[
        ("The account's own images.", "aws ec2 images"),
        ("Amazon's images, newest first.", "aws ec2 images --owner [amazon] | sort-by created --reverse | first 5"),
    ],
};
