//! Who a session is, as AWS sees it: account and caller ARN, from STS GetCallerIdentity (which
//! needs no permission). The answer scopes every cache key, so it is itself cached: per session in
//! memory, and on disk under a hash of the access key id and endpoint (never the key itself, never
//! the secret), so a new shell process can serve cached reads without any request.
//!
//! A session that assumes a role (`--accounts`) is named by the credentials it assumes the role
//! with, the role and the session name, not by the role's short-lived keys (new on every
//! AssumeRole): so a new process knows who it would be in each account, and reads the cache,
//! without assuming any role. [`resolve_identities`] resolves many sessions at once.

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;

use crate::cache::{Cache, Identity};
use crate::error::{AwsError, ErrorKind, error_chain_text};
use crate::fanout::RequestLimit;
use crate::row::{Field, Row};
use crate::runtime::{Interrupt, block_on};
use crate::session::Session;

/// How long an identity read from disk is trusted. The same access key id always belongs to the
/// same principal, so this bounds only the life of a stale mapping after a key is deleted.
pub const IDENTITY_TTL: Duration = Duration::from_secs(3600);

const OPERATION: &str = "STS GetCallerIdentity";

/// How long a session trusts the identity it established without asking its credentials
/// provider again.
pub const IDENTITY_MEMO: Duration = Duration::from_secs(300);

/// The identity of `session`'s current credentials.
pub fn resolve_identity(
    session: &Session,
    cache: &Arc<Cache>,
    interrupt: &dyn Interrupt,
) -> Result<Identity, AwsError> {
    block_on(interrupt, resolve(session, cache))
        .map_err(|_| AwsError::interrupted(OPERATION))?
}

/// The identities of many sessions (one per account, say), resolved at once within `limit`;
/// one result per session, in their order.
pub fn resolve_identities(
    sessions: &[Arc<Session>],
    cache: &Arc<Cache>,
    limit: &RequestLimit,
    interrupt: &dyn Interrupt,
) -> Result<Vec<Result<Identity, AwsError>>, AwsError> {
    let work = async {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, session) in sessions.iter().enumerate() {
            let (session, cache, limit) = (session.clone(), cache.clone(), limit.clone());
            tasks.spawn(async move { (index, limit.run(resolve(&session, &cache)).await) });
        }
        let mut results: Vec<Option<Result<Identity, AwsError>>> = (0..sessions.len()).map(|_| None).collect();
        while let Some(done) = tasks.join_next().await {
            if let Ok((index, result)) = done {
                results[index] = Some(result);
            }
        }
        results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| Err(AwsError::new(ErrorKind::Local, OPERATION, "the identity lookup stopped")))
            })
            .collect()
    };
    block_on(interrupt, work).map_err(|_| AwsError::interrupted(OPERATION))
}

async fn resolve(session: &Session, cache: &Arc<Cache>) -> Result<Identity, AwsError> {
    if let Some(identity) = session.recent_identity(IDENTITY_MEMO) {
        return Ok(identity);
    }
    // An assumed role's session is named by what it assumes the role with (see the module's
    // comment); anything else by its own credentials.
    let (provider, role) = match session.assumed() {
        Some((role, base)) => (Some(base.clone()), Some(role)),
        None => (session.sdk_config().credentials_provider(), None),
    };
    let provider = provider.ok_or_else(|| {
        AwsError::new(ErrorKind::NoCredentials, OPERATION, "no credentials provider is configured")
    })?;
    let credentials = provider.provide_credentials().await.map_err(|err| {
        AwsError::new(
            ErrorKind::NoCredentials,
            "loading credentials",
            error_chain_text(&err),
        )
    })?;
    let name = match role {
        Some(role) => format!("{}\0{}\0{}", credentials.access_key_id(), role.role_arn, role.session_name),
        None => credentials.access_key_id().to_string(),
    };
    let fingerprint = fingerprint(&name, session.endpoint());
    if let Some(identity) = session.known_identity(&fingerprint) {
        return Ok(identity);
    }
    let key = identity_key(&fingerprint);
    // This key names no operation or region (one identity serves them all), so the lookup is
    // recorded here, as the operation it saves.
    let record = |tier| {
        let region = session.region().unwrap_or_default();
        cache.metrics().record_cache_lookup("sts", "GetCallerIdentity", region, tier);
    };
    // Many processes starting at once (a CI fleet) wait for the first one's answer, off the
    // runtime's workers: the wait is a blocking one.
    if let Some((entry, tier)) = off_the_workers(|| cache.lookup_or_wait(&key, "sts"))
        && let Some(identity) = entry.rows.first().and_then(identity_of_row)
    {
        record(tier);
        session.remember_identity(&fingerprint, &identity);
        return Ok(identity);
    }
    let fetched = async {
        if let Some((role, _)) = session.assumed() {
            assume(session, role).await?;
        }
        cache.count_network(&key, "sts");
        record(crate::cache::Tier::Network);
        session
            .sts()
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(OPERATION, e))
    };
    let out = fetched.await.inspect_err(|_| cache.abandon(&key))?;
    let identity = Identity::new(
        out.account().unwrap_or_default(),
        out.arn().unwrap_or_default(),
    );
    cache.store(key, vec![identity_row(&identity)], IDENTITY_TTL);
    session.remember_identity(&fingerprint, &identity);
    Ok(identity)
}

/// Records that the credentials with `access_key_id`, used at `endpoint`, belong to `identity`,
/// exactly as an answer of GetCallerIdentity is recorded: a session with these credentials then
/// reads the cache without asking STS. For a caller that knows the answer without a request
/// (the performance gate's fixed workloads, which send none); not for assumed roles.
pub fn store_identity(cache: &Cache, access_key_id: &str, endpoint: Option<&str>, identity: &Identity) {
    let key = identity_key(&fingerprint(access_key_id, endpoint));
    cache.store(key, vec![identity_row(identity)], IDENTITY_TTL);
}

fn identity_key(fingerprint: &str) -> String {
    format!("identity/{fingerprint}")
}

fn identity_row(identity: &Identity) -> Row {
    Row::new()
        .with("account", Field::Text(identity.account.clone()))
        .with("arn", Field::Text(identity.arn.clone()))
}

/// Runs the blocking `f` without holding up the other tasks of a runtime worker it may run on.
fn off_the_workers<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Assumes `session`'s role (its provider keeps the credentials for the requests that follow),
/// so that a refusal is reported as the role's, with the account it was about.
async fn assume(session: &Session, role: &crate::accounts::AssumeRole) -> Result<(), AwsError> {
    let operation = "STS AssumeRole";
    let provider = session.sdk_config().credentials_provider().ok_or_else(|| {
        AwsError::new(ErrorKind::NoCredentials, operation, "no credentials provider is configured")
    })?;
    provider.provide_credentials().await.map(drop).map_err(|err| {
        let text = error_chain_text(&err);
        let kind = if text.contains("AccessDenied") || text.contains("not authorized") {
            ErrorKind::AccessDenied
        } else {
            ErrorKind::NoCredentials
        };
        AwsError::new(kind, operation, format!("cannot assume {}: {text}", role.role_arn))
    })
}

fn identity_of_row(row: &Row) -> Option<Identity> {
    Some(Identity::new(
        row.get("account")?.as_str()?,
        row.get("arn")?.as_str()?,
    ))
}

/// A hash naming the credentials without revealing them: the access key id is not secret, but
/// it has no business on disk either.
fn fingerprint(access_key_id: &str, endpoint: Option<&str>) -> String {
    let digest = blake3::hash(format!("{access_key_id}\0{}", endpoint.unwrap_or("")).as_bytes());
    digest.as_bytes()[..12].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_hide_the_key_and_depend_on_the_endpoint() {
        let a = fingerprint("AKIAEXAMPLE", None);
        assert!(!a.contains("AKIA"));
        assert_eq!(a.len(), 24);
        assert_ne!(a, fingerprint("AKIAEXAMPLE", Some("http://127.0.0.1:5000")));
        assert_ne!(a, fingerprint("AKIAOTHER", None));
        assert_eq!(a, fingerprint("AKIAEXAMPLE", None));
    }
}
