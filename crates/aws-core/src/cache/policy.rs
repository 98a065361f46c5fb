//! What may be cached, and for how long: an explicit allowlist of read operations with a TTL per
//! resource type. Anything not listed is never cached: writes, anything live, and anything that
//! can carry secrets (object bodies, user data, passwords, credentials, STS calls) never reaches
//! either tier. A unit test pins the allowlist, so adding an operation is a reviewed change.

use std::collections::BTreeMap;
use std::time::Duration;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;

/// The cacheable operations: (service, operation, resource name users configure it by, TTL).
/// Defaults follow how fast each resource changes: images and snapshots are near-immutable,
/// bucket lists change rarely, instances change state, object listings churn.
pub const CACHEABLE: &[(&str, &str, &str, u64)] = &[
    ("s3", "ListBuckets", "buckets", HOUR),
    ("s3", "ListObjectsV2", "objects", MINUTE),
    ("s3", "HeadObject", "object-metadata", MINUTE),
    ("ec2", "DescribeInstances", "instances", 5 * MINUTE),
    ("ec2", "DescribeSecurityGroups", "security-groups", 15 * MINUTE),
    ("ec2", "DescribeVpcs", "vpcs", HOUR),
    ("ec2", "DescribeSubnets", "subnets", HOUR),
    ("ec2", "DescribeVolumes", "volumes", 5 * MINUTE),
    ("ec2", "DescribeSnapshots", "snapshots", 24 * HOUR),
    ("ec2", "DescribeImages", "images", 24 * HOUR),
    ("ec2", "DescribeRegions", "regions", 24 * HOUR),
];

/// The longest TTL any entry may have, whatever the configuration says.
pub const POLICY_MAX_TTL: Duration = Duration::from_secs(7 * 24 * HOUR);

/// TTLs per cacheable operation, with user overrides applied.
#[derive(Clone, Debug)]
pub struct CachePolicy {
    ttls: BTreeMap<(&'static str, &'static str), Duration>,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            ttls: CACHEABLE
                .iter()
                .map(|(service, op, _, secs)| ((*service, *op), Duration::from_secs(*secs)))
                .collect(),
        }
    }
}

impl CachePolicy {
    /// The TTL of an operation, or `None` when it must not be cached (not on the allowlist, or
    /// configured to zero).
    pub fn ttl(&self, service: &str, operation: &str) -> Option<Duration> {
        self.ttls
            .get(&(service, operation))
            .copied()
            .filter(|ttl| !ttl.is_zero())
    }

    /// Overrides the TTL of a resource type (`instances`, `objects`, ...). Zero turns caching of
    /// it off; values are clamped to [`POLICY_MAX_TTL`]. Unknown names are an error listing the known
    /// ones: a typo must not silently keep the default.
    pub fn set_ttl(&mut self, resource: &str, ttl: Duration) -> Result<(), String> {
        let Some((service, op, _, _)) = CACHEABLE.iter().find(|(_, _, r, _)| *r == resource) else {
            return Err(format!(
                "unknown resource `{resource}`; the cacheable ones are: {}",
                resource_names().join(", ")
            ));
        };
        self.ttls.insert((service, op), ttl.min(POLICY_MAX_TTL));
        Ok(())
    }

    /// Every (resource, TTL) pair, for display.
    pub fn resources(&self) -> Vec<(&'static str, Duration)> {
        CACHEABLE
            .iter()
            .map(|(service, op, resource, _)| {
                (*resource, self.ttls.get(&(*service, *op)).copied().unwrap_or_default())
            })
            .collect()
    }
}

pub fn resource_names() -> Vec<&'static str> {
    CACHEABLE.iter().map(|(_, _, r, _)| *r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adding an operation here is a security review: it must return metadata only.
    #[test]
    fn the_allowlist_is_exactly_this() {
        let ops: Vec<String> = CACHEABLE.iter().map(|(s, o, _, _)| format!("{s}:{o}")).collect();
        assert_eq!(
            ops,
            [
                "s3:ListBuckets",
                "s3:ListObjectsV2",
                "s3:HeadObject",
                "ec2:DescribeInstances",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeVpcs",
                "ec2:DescribeSubnets",
                "ec2:DescribeVolumes",
                "ec2:DescribeSnapshots",
                "ec2:DescribeImages",
                "ec2:DescribeRegions",
            ]
        );
    }

    #[test]
    fn secrets_and_writes_are_never_cacheable() {
        let policy = CachePolicy::default();
        for (service, op) in [
            ("s3", "GetObject"),
            ("s3", "PutObject"),
            ("s3", "DeleteObjects"),
            ("ec2", "GetPasswordData"),
            ("ec2", "DescribeInstanceAttribute"),
            ("ec2", "DescribeLaunchTemplateVersions"),
            ("ec2", "StopInstances"),
            ("sts", "AssumeRole"),
            ("sts", "GetCallerIdentity"),
            ("secretsmanager", "GetSecretValue"),
        ] {
            assert_eq!(policy.ttl(service, op), None, "{service}:{op}");
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let mut policy = CachePolicy::default();
        assert_eq!(policy.ttl("ec2", "DescribeImages"), Some(Duration::from_secs(24 * HOUR)));
        assert_eq!(policy.ttl("s3", "ListBuckets"), Some(Duration::from_secs(HOUR)));
        assert_eq!(policy.ttl("ec2", "DescribeInstances"), Some(Duration::from_secs(5 * MINUTE)));
        policy.set_ttl("instances", Duration::from_secs(30)).unwrap();
        assert_eq!(policy.ttl("ec2", "DescribeInstances"), Some(Duration::from_secs(30)));
        policy.set_ttl("objects", Duration::ZERO).unwrap();
        assert_eq!(policy.ttl("s3", "ListObjectsV2"), None);
        policy.set_ttl("images", Duration::MAX).unwrap();
        assert_eq!(policy.ttl("ec2", "DescribeImages"), Some(POLICY_MAX_TTL));
        let err = policy.set_ttl("instancez", Duration::from_secs(1)).unwrap_err();
        assert!(err.contains("instances"), "{err}");
    }
}
