//! Many accounts from one identity: the role a session enters each account through (STS
//! AssumeRole into `arn:<partition>:iam::<account>:role/<name>`), the checks on account ids and
//! role names a caller makes before any request, and the assumed role's credentials kept in
//! memory until shortly before they expire, so that every region's session of one account asks
//! STS once.
//!
//! Not here: which sessions exist and how they share a provider (that is [`crate::session`]),
//! who an assumed session is (that is [`crate::identity`]), or reading many accounts at once
//! (that is [`crate::fanout`] and the commands).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider, future};

/// The role session name when the environment names none (`AWS_ROLE_SESSION_NAME`). It is
/// part of the assumed role's caller ARN, which scopes cache entries: a name that changed per
/// process (as the SDK's default does) would make every new shell miss the cache.
pub const DEFAULT_SESSION_NAME: &str = "nuaws";

/// Credentials this close to their expiry are renewed before use: a request signed with them
/// may still be in flight when they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// A role to enter an account through, and the name of the session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AssumeRole {
    pub role_arn: String,
    pub session_name: String,
}

impl AssumeRole {
    /// The role `role_name` of `account` in `partition`, with the session name of the
    /// environment's `AWS_ROLE_SESSION_NAME`, else [`DEFAULT_SESSION_NAME`].
    pub fn into_account(partition: &str, account: &str, role_name: &str, session_name: Option<&str>) -> Self {
        Self {
            role_arn: role_arn(partition, account, role_name),
            session_name: session_name
                .filter(|name| !name.is_empty())
                .unwrap_or(DEFAULT_SESSION_NAME)
                .to_string(),
        }
    }

    /// The account the role belongs to (the fifth field of its ARN).
    pub fn account(&self) -> &str {
        self.role_arn.split(':').nth(4).unwrap_or("")
    }
}

/// `arn:<partition>:iam::<account>:role/<name>`; a name with a path (`ops/ReadOnly`) keeps it.
pub fn role_arn(partition: &str, account: &str, role_name: &str) -> String {
    format!("arn:{partition}:iam::{account}:role/{}", role_name.trim_matches('/'))
}

/// Why `id` is not an AWS account id (twelve digits), if it is not.
pub fn check_account_id(id: &str) -> Result<(), String> {
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    let digits = id.bytes().filter(u8::is_ascii_digit).count();
    Err(if id.bytes().all(|b| b.is_ascii_digit()) {
        format!("`{id}` has {digits} digits; an AWS account id has 12")
    } else {
        format!("`{id}` is not an AWS account id (12 digits)")
    })
}

/// Why `name` is not an IAM role name (optionally with a path: `ops/ReadOnly`), if it is not.
/// IAM allows letters, digits and `+=,.@_-` in names, 64 of them at most.
pub fn check_role_name(name: &str) -> Result<(), String> {
    let trimmed = name.trim_matches('/');
    let Some(last) = trimmed.rsplit('/').next().filter(|last| !last.is_empty()) else {
        return Err("a role name cannot be empty".to_string());
    };
    if last.len() > 64 {
        return Err(format!("`{last}` is longer than IAM's 64 characters for a role name"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c);
    match trimmed.chars().find(|c| !allowed(*c)) {
        Some(bad) => Err(format!("`{bad}` cannot appear in an IAM role name")),
        None if trimmed.contains("//") => Err("a role path cannot have an empty part".to_string()),
        None => Ok(()),
    }
}

/// A credentials provider that keeps what `inner` gave until shortly before it expires, and
/// asks `inner` once however many requests need credentials at the same time.
#[derive(Debug)]
pub struct CachedCredentials {
    inner: SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl CachedCredentials {
    pub fn shared(inner: impl ProvideCredentials + 'static) -> SharedCredentialsProvider {
        SharedCredentialsProvider::new(Self {
            inner: SharedCredentialsProvider::new(inner),
            cached: tokio::sync::Mutex::new(None),
        })
    }

    async fn credentials(&self) -> provider::Result {
        // Held across the request: concurrent callers wait for its answer instead of each
        // assuming the role.
        let mut cached = self.cached.lock().await;
        if let Some(credentials) = cached.as_ref().filter(|c| still_good(c, SystemTime::now())) {
            return Ok(credentials.clone());
        }
        let fresh = self.inner.provide_credentials().await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }
}

fn still_good(credentials: &Credentials, now: SystemTime) -> bool {
    credentials
        .expiry()
        .is_none_or(|expiry| expiry.duration_since(now).is_ok_and(|left| left > RENEW_BEFORE))
}

impl ProvideCredentials for CachedCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.credentials())
    }
}

/// Counts its calls, for tests of the cache above.
#[cfg(test)]
#[derive(Debug)]
struct Counting(std::sync::Arc<std::sync::atomic::AtomicUsize>, Option<SystemTime>);

#[cfg(test)]
impl ProvideCredentials for Counting {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        future::ProvideCredentials::ready(Ok(Credentials::new(format!("ASIA{n}"), "secret", None, self.1, "test")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!(check_account_id("111111111111").is_ok());
        assert!(check_account_id("11111111111").unwrap_err().contains("11 digits"));
        assert!(check_account_id("1111111111a1").unwrap_err().contains("not an AWS account id"));
        assert!(check_account_id("").is_err());
        assert!(check_account_id("１１１１１１１１１１１１").is_err(), "ASCII digits only");
    }

    #[test]
    fn role_names_follow_iam() {
        assert!(check_role_name("OrganizationAccountAccessRole").is_ok());
        assert!(check_role_name("ops/read-only@x").is_ok());
        assert!(check_role_name("").is_err());
        assert!(check_role_name("a b").unwrap_err().contains("` `"));
        assert!(check_role_name(&"r".repeat(65)).is_err());
        assert!(check_role_name("a//b").is_err());
    }

    #[test]
    fn role_arns_carry_partition_account_and_path() {
        let role = AssumeRole::into_account("aws-cn", "222222222222", "ops/ReadOnly", None);
        assert_eq!(role.role_arn, "arn:aws-cn:iam::222222222222:role/ops/ReadOnly");
        assert_eq!(role.session_name, DEFAULT_SESSION_NAME);
        assert_eq!(role.account(), "222222222222");
        assert_eq!(AssumeRole::into_account("aws", "1", "x", Some("ci-42")).session_name, "ci-42");
        assert_eq!(AssumeRole::into_account("aws", "1", "x", Some("")).session_name, DEFAULT_SESSION_NAME);
    }

    fn count(expiry: Option<SystemTime>) -> (SharedCredentialsProvider, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        (CachedCredentials::shared(Counting(calls.clone(), expiry)), calls)
    }

    #[test]
    fn credentials_are_kept_until_close_to_expiry() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (provider, calls) = count(Some(SystemTime::now() + Duration::from_secs(3600)));
        rt.block_on(async {
            let first = provider.provide_credentials().await.unwrap();
            let second = provider.provide_credentials().await.unwrap();
            assert_eq!(first.access_key_id(), second.access_key_id());
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // Expiring within the renewal margin: asked again every time.
        let (provider, calls) = count(Some(SystemTime::now() + Duration::from_secs(60)));
        rt.block_on(async {
            provider.provide_credentials().await.unwrap();
            provider.provide_credentials().await.unwrap();
        });
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
