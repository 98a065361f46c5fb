//! Cache keys scoped by *identity*, not by profile name: a profile is a local alias whose meaning
//! changes with the config file, the environment and SSO role switches, so two profiles naming
//! the same role share entries and one profile name pointing at two accounts never does.
//!
//! A key reads as a path, `account/region/service/operation/scope#digest`, so entries can be
//! listed and cleared by glob (`*/eu-west-1/ec2/*`); the digest covers everything that makes two
//! requests different (partition, caller ARN, endpoint, canonical parameters), so two requests
//! share a key only when they would get the same answer.

use std::fmt::Write;

/// Who is asking, as AWS sees it (from STS GetCallerIdentity, or the credentials' account id).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// `aws`, `aws-cn`, `aws-us-gov`, ... (from the ARN).
    pub partition: String,
    pub account: String,
    /// The caller's principal ARN: two roles of one account may see different resources.
    pub arn: String,
}

impl Identity {
    pub fn new(account: impl Into<String>, arn: impl Into<String>) -> Self {
        let arn = arn.into();
        let partition = arn.split(':').nth(1).unwrap_or("aws").to_string();
        Self {
            partition,
            account: account.into(),
            arn,
        }
    }

    /// This identity with the role scope, when its ARN is a session of one of `roles`
    /// (`arn:aws:sts::123:assumed-role/ROLE/SESSION` becomes `.../assumed-role/ROLE`): the
    /// sessions of a role a team opted in share entries. Any other identity is returned as is;
    /// nothing else widens a scope.
    pub fn with_role_scope(self, roles: &[String]) -> Identity {
        let Some((prefix, rest)) = self.arn.split_once(":assumed-role/") else {
            return self;
        };
        let Some((role, _session)) = rest.split_once('/') else {
            return self;
        };
        if !roles.iter().any(|r| r == role) {
            return self;
        }
        let arn = format!("{prefix}:assumed-role/{role}");
        Identity { arn, ..self }
    }
}

/// What a request is, apart from who makes it.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub region: &'a str,
    /// The custom endpoint, if any: a local moto must never share entries with real AWS.
    pub endpoint: Option<&'a str>,
    pub service: &'a str,
    pub operation: &'a str,
    /// A readable summary of the parameters that matter for invalidation (bucket and prefix of
    /// an object listing); may be empty. It must not contain `#`.
    pub scope: String,
    /// Every parameter of the request; order does not matter.
    pub params: Vec<(&'a str, String)>,
}

/// Builds the key of `request` made by `identity`.
pub fn cache_key(identity: &Identity, request: &Request<'_>) -> String {
    let mut params = request.params.clone();
    params.sort();
    // Length-prefixed fields: no two different inputs serialise alike.
    let mut material = String::new();
    for field in [
        "v1",
        &identity.partition,
        &identity.account,
        &identity.arn,
        request.region,
        request.endpoint.unwrap_or(""),
        request.service,
        request.operation,
        &request.scope,
    ] {
        let _ = write!(material, "{}:{field};", field.len());
    }
    for (name, value) in &params {
        let _ = write!(material, "{}:{name}={}:{value};", name.len(), value.len());
    }
    let digest = blake3::hash(material.as_bytes());
    let hex: String = digest.as_bytes()[..8].iter().map(|b| format!("{b:02x}")).collect();
    let scope = request.scope.replace('#', "%23");
    format!(
        "{}/{}/{}/{}/{scope}#{hex}",
        identity.account, request.region, request.service, request.operation
    )
}

/// The readable parts of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyParts<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub operation: &'a str,
    pub scope: &'a str,
}

/// Splits a key made by [`cache_key`]; `None` for anything else.
pub fn key_parts(key: &str) -> Option<KeyParts<'_>> {
    let (path, _digest) = key.rsplit_once('#')?;
    let mut parts = path.splitn(5, '/');
    Some(KeyParts {
        account: parts.next()?,
        region: parts.next()?,
        service: parts.next()?,
        operation: parts.next()?,
        scope: parts.next().unwrap_or(""),
    })
}

/// The invalidation group of a key, for a tier shared by several machines, which cannot list
/// its keys: a write moves the generation of the groups it makes stale, and every entry of an
/// older generation is a miss. A group is coarser than the local invalidation (a whole bucket, a
/// region's instances) and leaves out the caller, so one person's write reaches every
/// teammate's entries about the same resources: `account/region/s3/<bucket>`,
/// `account/region/ec2/instances` (instances and volumes, which state changes touch),
/// `account/region/<service>/<operation>` otherwise. Keys not made by [`cache_key`] form one
/// group per first path segment (`identity`).
pub fn shared_group(key: &str) -> String {
    let Some(parts) = key_parts(key) else {
        return key.split('/').next().unwrap_or_default().to_string();
    };
    let what = match (parts.service, parts.operation) {
        ("s3", _) => parts.scope.split('/').next().unwrap_or_default(),
        ("ec2", "DescribeInstances" | "DescribeVolumes") => "instances",
        (_, operation) => operation,
    };
    format!("{}/{}/{}/{what}", parts.account, parts.region, parts.service)
}

/// Shell-style glob over a key's readable path: `*` matches any run (slashes included), `?` one
/// character. `*/us-east-1/ec2/*` matches every EC2 entry of that region.
pub fn glob_matches(pattern: &str, key: &str) -> bool {
    let path = key.rsplit_once('#').map_or(key, |(p, _)| p);
    glob(pattern.as_bytes(), path.as_bytes()) || glob(pattern.as_bytes(), key.as_bytes())
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matcher with backtracking to the last `*`: linear in practice, no recursion.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(region: &'a str, endpoint: Option<&'a str>) -> Request<'a> {
        Request {
            region,
            endpoint,
            service: "ec2",
            operation: "DescribeInstances",
            scope: String::new(),
            params: vec![("filter.instance-state-name", "running".into()), ("ids", "".into())],
        }
    }

    #[test]
    fn identities_never_share_a_key() {
        let a = Identity::new("111111111111", "arn:aws:iam::111111111111:user/a");
        let b = Identity::new("222222222222", "arn:aws:iam::222222222222:user/a");
        let a_role = Identity::new("111111111111", "arn:aws:sts::111111111111:assumed-role/ro/s");
        let r = req("us-east-1", None);
        let keys = [cache_key(&a, &r), cache_key(&b, &r), cache_key(&a_role, &r)];
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[0], keys[2]);
        assert_ne!(keys[1], keys[2]);
        // Same identity, other endpoint or region: other key.
        assert_ne!(keys[0], cache_key(&a, &req("us-east-1", Some("http://127.0.0.1:5000"))));
        assert_ne!(keys[0], cache_key(&a, &req("eu-west-1", None)));
        // Same everything: same key, whatever the parameter order.
        let mut r2 = req("us-east-1", None);
        r2.params.reverse();
        assert_eq!(keys[0], cache_key(&a, &r2));
    }

    #[test]
    fn keys_read_as_paths() {
        let a = Identity::new("111111111111", "arn:aws:iam::111111111111:user/a");
        assert_eq!(a.partition, "aws");
        let mut r = req("us-east-1", None);
        r.service = "s3";
        r.operation = "ListObjectsV2";
        r.scope = "my-bucket/logs/".into();
        let key = cache_key(&a, &r);
        assert!(key.starts_with("111111111111/us-east-1/s3/ListObjectsV2/my-bucket/logs/#"), "{key}");
        let parts = key_parts(&key).unwrap();
        assert_eq!(parts.scope, "my-bucket/logs/");
        assert_eq!(parts.operation, "ListObjectsV2");
        assert!(glob_matches("*/us-east-1/s3/*", &key));
        assert!(glob_matches("111111111111/*", &key));
        assert!(!glob_matches("*/eu-west-1/*", &key));
        assert!(glob_matches("*ListObjectsV2*", &key));
        assert!(!glob_matches("ec2*", &key));
    }

    #[test]
    fn role_scope_drops_the_session_of_named_roles_only() {
        let session = Identity::new("111111111111", "arn:aws:sts::111111111111:assumed-role/ops/alice");
        let roles = vec!["ops".to_string()];
        assert_eq!(session.clone().with_role_scope(&roles).arn, "arn:aws:sts::111111111111:assumed-role/ops");
        assert_eq!(session.clone().with_role_scope(&["dev".into()]), session);
        let user = Identity::new("111111111111", "arn:aws:iam::111111111111:user/ops");
        assert_eq!(user.clone().with_role_scope(&roles), user);
    }

    #[test]
    fn shared_groups_follow_what_writes_touch() {
        let a = Identity::new("111111111111", "arn:aws:iam::111111111111:user/a");
        let b = Identity::new("111111111111", "arn:aws:iam::111111111111:user/b");
        let mut r = req("us-east-1", None);
        r.service = "s3";
        r.operation = "ListObjectsV2";
        r.scope = "bkt/logs/".into();
        // Two callers, one bucket: one group, so either one's write reaches the other's entries.
        assert_eq!(shared_group(&cache_key(&a, &r)), "111111111111/us-east-1/s3/bkt");
        assert_eq!(shared_group(&cache_key(&a, &r)), shared_group(&cache_key(&b, &r)));
        let i = req("us-east-1", None);
        assert_eq!(shared_group(&cache_key(&a, &i)), "111111111111/us-east-1/ec2/instances");
        assert_eq!(shared_group("identity/0123"), "identity");
    }

    #[test]
    fn glob_edge_cases() {
        assert!(glob(b"*", b""));
        assert!(glob(b"a*b*c", b"aXXbYYc"));
        assert!(!glob(b"a*b*c", b"aXXbYY"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"", b"x"));
    }
}
