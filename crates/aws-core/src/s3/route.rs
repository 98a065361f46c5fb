//! Region routing for S3: every request about a bucket goes to the bucket's own region, as the
//! AWS CLI and boto3 do and the Rust SDK does not (awslabs/aws-sdk-rust#183). A bucket's region
//! is learned from S3's own answers: a success where the request was sent, the region a refusal
//! names (see [`crate::error::WrongRegion`]), ListBuckets' `BucketRegion`, or HeadBucket /
//! GetBucketLocation when a refusal names none. It is remembered per endpoint in
//! [`BucketRegions`]: in memory, and through a [`RegionStore`] (the disk cache) for regions that
//! took a request to learn, so a new process pays nothing for them either.
//!
//! The first touch of a bucket in another region costs one extra request (the refusal); after
//! that none. A refusal after the retry is a redirect loop, reported naming the bucket and both
//! regions, never followed again.
//!
//! Not here: which operations exist (the callers in [`crate::s3`]) or how the shell shows
//! errors.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};

use crate::error::{AwsError, ErrorKind};
use crate::session::{Attempts, Session};

/// Where learned regions are kept across processes. Implementations never fail a command: a
/// region that cannot be loaded or saved is simply learned again.
pub trait RegionStore: Send + Sync {
    fn load(&self, scope: &str, bucket: &str) -> Option<String>;
    fn save(&self, scope: &str, bucket: &str, region: &str);
}

/// The regions of buckets, per endpoint scope, shared by every session of the process (a bucket
/// is where it is whoever asks).
#[derive(Default)]
pub struct BucketRegions {
    known: Mutex<HashMap<(String, String), String>>,
    store: RwLock<Option<Arc<dyn RegionStore>>>,
    /// One lookup at a time per bucket: many requests of a bulk job that meet an unknown
    /// bucket together wait for one answer instead of each paying a refusal.
    locating: Mutex<HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>>,
}

impl BucketRegions {
    /// Keeps regions that took a request to learn in `store` from now on (`None`: memory only,
    /// as with the cache off).
    pub fn set_store(&self, store: Option<Arc<dyn RegionStore>>) {
        *self.store.write().unwrap_or_else(|e| e.into_inner()) = store;
    }

    fn store(&self) -> Option<Arc<dyn RegionStore>> {
        self.store.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), String>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The region `bucket` is known to be in: from memory, else from the store.
    pub fn get(&self, scope: &str, bucket: &str) -> Option<String> {
        let id = (scope.to_string(), bucket.to_string());
        if let Some(region) = self.lock().get(&id) {
            return Some(region.clone());
        }
        let region = self.store()?.load(scope, bucket)?;
        self.lock().insert(id, region.clone());
        Some(region)
    }

    /// Learns that `bucket` is in `region`. Kept in the store too when it is not where a
    /// request would go anyway (`default_region`): finding such a region cost a request, and
    /// keeping it saves that request in the next process.
    pub fn learn(&self, scope: &str, bucket: &str, region: &str, default_region: &str) {
        let previous = self
            .lock()
            .insert((scope.to_string(), bucket.to_string()), region.to_string());
        if previous.as_deref() != Some(region) && region != default_region {
            if let Some(store) = self.store() {
                store.save(scope, bucket, region);
            }
        }
    }

    fn locating_lock(&self, scope: &str, bucket: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locating = self.locating.lock().unwrap_or_else(|e| e.into_inner());
        locating
            .entry((scope.to_string(), bucket.to_string()))
            .or_default()
            .clone()
    }
}

/// The S3 clients of one session as requests about buckets use them: each bucket's request
/// goes to a client of the bucket's region. Cheap to clone.
#[derive(Clone)]
pub struct BucketRouter {
    session: Arc<Session>,
    attempts: Attempts,
    /// Locate an unknown bucket before the first request (many are about to go at once).
    locate_first: bool,
}

impl BucketRouter {
    /// With the SDK's retries, for single requests.
    pub fn new(session: &Arc<Session>) -> Self {
        Self {
            session: session.clone(),
            attempts: Attempts::Standard,
            locate_first: false,
        }
    }

    /// With one attempt per request, for the request engine (which retries itself). Its jobs
    /// send many requests at once, so an unknown bucket is located once before they go.
    pub fn single_attempt(session: &Arc<Session>) -> Self {
        Self {
            session: session.clone(),
            attempts: Attempts::Single,
            locate_first: true,
        }
    }

    /// With one attempt per request, for a caller that retries itself and sends its first
    /// request alone (a partitioned listing): an unknown bucket costs no lookup, only the
    /// refusal of a wrong region, as for a single request.
    pub fn single_attempt_in_turn(session: &Arc<Session>) -> Self {
        Self {
            locate_first: false,
            ..Self::single_attempt(session)
        }
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// The region requests about `bucket` go to now: the known one, else the session's.
    pub fn region_for(&self, bucket: &str) -> String {
        self.known(bucket)
            .unwrap_or_else(|| self.session.s3_region().to_string())
    }

    fn known(&self, bucket: &str) -> Option<String> {
        self.session
            .bucket_regions()
            .get(self.session.bucket_scope(), bucket)
    }

    fn learn(&self, bucket: &str, region: &str) {
        let session = &self.session;
        session
            .bucket_regions()
            .learn(session.bucket_scope(), bucket, region, session.s3_region());
    }

    /// Learns regions ListBuckets reported (real S3's rows carry `BucketRegion`).
    pub fn learn_listed(&self, bucket: &str, region: &str) {
        if !region.is_empty() {
            self.learn(bucket, region);
        }
    }

    /// The client for requests about `bucket`, for a sequence of requests after the first
    /// (the parts of an upload whose first request was [`BucketRouter::call`]ed).
    pub fn client_for(&self, bucket: &str) -> aws_sdk_s3::Client {
        self.session.s3_in(&self.region_for(bucket), self.attempts)
    }

    /// Runs `call` on the client of `bucket`'s region; when S3 answers that the bucket is
    /// elsewhere, learns where and runs it once more there.
    pub async fn call<T, F, Fut>(&self, bucket: &str, call: F) -> Result<T, AwsError>
    where
        F: Fn(aws_sdk_s3::Client) -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let mut known = self.known(bucket);
        if known.is_none() && self.locate_first {
            // A failed lookup is not the job's failure: the request itself will say.
            known = self.region_of(bucket).await.ok();
        }
        let first = known
            .clone()
            .unwrap_or_else(|| self.session.s3_region().to_string());
        let err = match call(self.session.s3_in(&first, self.attempts)).await {
            Ok(answer) => {
                if known.is_none() {
                    self.learn(bucket, &first);
                }
                return Ok(answer);
            }
            Err(err) => err,
        };
        let Some(wrong) = err.wrong_region.clone() else {
            return Err(err);
        };
        let named = match wrong.region {
            Some(region) => region,
            // S3 refused the region without naming the right one (an opt-in region): ask.
            None => match self.locate(bucket).await {
                Ok(region) => region,
                Err(_) => return Err(err),
            },
        };
        if named == first {
            return Err(redirect_loop(&err.operation, bucket, &first, &named));
        }
        self.learn(bucket, &named);
        match call(self.session.s3_in(&named, self.attempts)).await {
            Ok(answer) => Ok(answer),
            Err(again) if again.wrong_region.is_some() => {
                let third = again
                    .wrong_region
                    .as_ref()
                    .and_then(|w| w.region.clone())
                    .unwrap_or_else(|| first.clone());
                Err(redirect_loop(&again.operation, bucket, &first, &format!("{named}, then {third}")))
            }
            Err(mut again) => {
                if matches!(again.kind, ErrorKind::AccessDenied | ErrorKind::NoCredentials | ErrorKind::Network | ErrorKind::Timeout) {
                    again.message = format!(
                        "bucket `{bucket}` is in {named} (S3 sent the request there from {first}), and {named} refused it: {}",
                        again.message
                    );
                }
                Err(again)
            }
        }
    }

    /// The region of `bucket`: the known one, else asked of S3 (one request) and remembered.
    pub async fn region_of(&self, bucket: &str) -> Result<String, AwsError> {
        if let Some(region) = self.known(bucket) {
            return Ok(region);
        }
        let lock = self.session.bucket_regions().locating_lock(self.session.bucket_scope(), bucket);
        let _one_at_a_time = lock.lock().await;
        if let Some(region) = self.known(bucket) {
            return Ok(region);
        }
        let region = self.locate(bucket).await?;
        self.learn(bucket, &region);
        Ok(region)
    }

    /// Asks S3 where `bucket` is: HeadBucket, which any region answers with
    /// `x-amz-bucket-region` (on a 200 or a redirect), else GetBucketLocation.
    async fn locate(&self, bucket: &str) -> Result<String, AwsError> {
        let client = self.session.s3_in(self.session.s3_region(), Attempts::Standard);
        match client.head_bucket().bucket(bucket).send().await {
            Ok(out) => {
                // No header: the bucket answered where it was asked (an S3-compatible server).
                return Ok(out
                    .bucket_region()
                    .unwrap_or(self.session.s3_region())
                    .to_string());
            }
            Err(err) => {
                let err = AwsError::from_sdk("S3 HeadBucket", err);
                if let Some(region) = err.wrong_region.and_then(|w| w.region) {
                    return Ok(region);
                }
            }
        }
        crate::s3::tagging::bucket_location(&client, bucket).await
    }
}

fn redirect_loop(operation: &str, bucket: &str, first: &str, then: &str) -> AwsError {
    AwsError::new(
        ErrorKind::WrongRegion,
        operation,
        format!("bucket `{bucket}`: S3 sent the request from {first} to {then}, and refused it there too"),
    )
    .with_code("RedirectLoop")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Saved(Mutex<Vec<(String, String, String)>>);

    impl RegionStore for Saved {
        fn load(&self, scope: &str, bucket: &str) -> Option<String> {
            let saved = self.0.lock().unwrap();
            saved
                .iter()
                .rev()
                .find(|(s, b, _)| s == scope && b == bucket)
                .map(|(_, _, r)| r.clone())
        }

        fn save(&self, scope: &str, bucket: &str, region: &str) {
            self.0
                .lock()
                .unwrap()
                .push((scope.into(), bucket.into(), region.into()));
        }
    }

    #[test]
    fn only_regions_that_cost_a_request_are_stored_and_a_new_answer_replaces_an_old_one() {
        let store = Arc::new(Saved::default());
        let regions = BucketRegions::default();
        regions.set_store(Some(store.clone()));
        regions.learn("aws", "home", "us-east-1", "us-east-1");
        regions.learn("aws", "away", "eu-west-1", "us-east-1");
        regions.learn("aws", "away", "eu-west-1", "us-east-1");
        assert_eq!(store.0.lock().unwrap().len(), 1, "the same answer again is not written again");
        assert_eq!(regions.get("aws", "home").as_deref(), Some("us-east-1"));
        regions.learn("aws", "away", "ap-southeast-2", "us-east-1");
        assert_eq!(regions.get("aws", "away").as_deref(), Some("ap-southeast-2"));

        // A new process: memory empty, the store remembers.
        let fresh = BucketRegions::default();
        fresh.set_store(Some(store.clone()));
        assert_eq!(fresh.get("aws", "away").as_deref(), Some("ap-southeast-2"));
        assert_eq!(fresh.get("aws", "home"), None);
        // Endpoints never share what they learned.
        assert_eq!(fresh.get("http://127.0.0.1:9000", "away"), None);
    }
}
