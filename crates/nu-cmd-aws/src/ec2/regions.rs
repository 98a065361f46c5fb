//! `aws ec2 regions`.

use aws_core::ec2::Listing;

use super::ListingSpec;

pub static SPEC: ListingSpec = ListingSpec {
    name: "aws ec2 regions",
    listing: Listing::Regions,
    description: "List the regions enabled for the account (--all for every region), with endpoint and opt-in status.",
    extra_description: "",
    search_terms: &["describe-regions"],
    ids: None,
    owners: false,
    examples: &[
        ("Enabled regions.", "aws ec2 regions | get name"),
        ("Every region, enabled or not.", "aws ec2 regions --all"),
    ],
};
