//! Region names: the regions AWS has, so that a mistyped `--region` or `$env.AWS_REGION` is
//! refused before any request, with the nearest real name suggested. Without this check a typo
//! reaches the network as a host name (`s3.us-est-1.amazonaws.com`: a DNS failure on real AWS)
//! or as a signing region (an HTTP 500 from a local test server).
//!
//! Not here: which regions an account has enabled (that is DescribeRegions, `aws ec2 regions`),
//! or where a bucket lives ([`crate::s3::route`]).

/// Every region of the public AWS partitions (`aws`, `aws-cn`, `aws-us-gov`, the isolated and
/// sovereign ones), as of late 2026.
pub const KNOWN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-isoe-west-1",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eusc-de-east-1",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-iso-east-1",
    "us-iso-west-1",
    "us-isob-east-1",
    "us-isof-east-1",
    "us-isof-south-1",
    "us-west-1",
    "us-west-2",
];

/// A region name nuaws will not send requests to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownRegion {
    pub name: String,
    /// The known region nearest to the name, when one is near enough to be what was meant.
    pub suggestion: Option<&'static str>,
}

/// Checks a region name. With a custom endpoint (MinIO, Ceph, R2, ...) the server decides what
/// its regions are called (`auto`, `default`, `garage`), so only names shaped like AWS's
/// (`xx-name-N`) are checked there: those are AWS names or typos of them.
pub fn check_region(name: &str, custom_endpoint: bool) -> Result<(), UnknownRegion> {
    if KNOWN_REGIONS.contains(&name) || (custom_endpoint && !shaped_like_aws(name)) {
        return Ok(());
    }
    let suggestion = KNOWN_REGIONS
        .iter()
        .map(|known| (edit_distance(name, known), *known))
        .min()
        .filter(|(distance, _)| *distance <= 3.max(name.len() / 3))
        .map(|(_, known)| known);
    Err(UnknownRegion {
        name: name.to_string(),
        suggestion,
    })
}

/// `us-east-1`, `ap-southeast-7`, `us-gov-west-1`: letters in two or more dash-separated words,
/// then a number.
fn shaped_like_aws(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    words.len() >= 2
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && words.iter().all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Levenshtein distance, by bytes (region names are ASCII; anything else is far from all).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_regions_pass_and_typos_get_the_nearest() {
        assert!(check_region("eu-west-1", false).is_ok());
        assert!(check_region("us-gov-west-1", false).is_ok());
        let typo = check_region("us-est-1", false).unwrap_err();
        assert_eq!(typo.suggestion, Some("us-east-1"));
        assert_eq!(check_region("eu-wset-2", false).unwrap_err().suggestion, Some("eu-west-2"));
        let far = check_region("moon-east-1", false).unwrap_err();
        assert_eq!(far.name, "moon-east-1");
        assert_eq!(check_region("zzzzzzzzzzzzzzzzzzzzzzzz", false).unwrap_err().suggestion, None);
    }

    #[test]
    fn custom_endpoints_name_their_own_regions_but_aws_shaped_typos_are_caught() {
        for own in ["auto", "default", "garage", "us-east-1"] {
            assert!(check_region(own, true).is_ok(), "{own}");
        }
        assert!(check_region("us-est-1", true).is_err());
        assert!(check_region("moon-east-1", true).is_err());
        assert!(check_region("auto", false).is_err());
    }

    #[test]
    fn the_list_is_sorted_and_every_name_is_shaped_like_a_region() {
        assert!(KNOWN_REGIONS.windows(2).all(|w| w[0] < w[1]));
        assert!(KNOWN_REGIONS.iter().all(|r| shaped_like_aws(r)), "a name is malformed");
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
