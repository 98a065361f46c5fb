//! [`MetricsInterceptor`]: the SDK interceptor on every client nuaws builds (S3, EC2, STS) that
//! records each operation into a [`Metrics`] registry: its latency from the moment the SDK is
//! called until its result is ready (serialisation, signing, every attempt, backoff and
//! deserialisation included, so it is what the user waited for), its attempts, whether it
//! failed, the attempts the SDK judged throttled, and the bytes of each attempt's request and
//! response bodies.
//!
//! Throttling is the SDK's own verdict: the client's retry classifiers run on a failed attempt,
//! as its retry strategy runs them, and a `ThrottlingError` verdict (error codes SlowDown,
//! Throttling, ThrottlingException, RequestLimitExceeded, TooManyRequestsException, ...) counts;
//! so does HTTP 429.
//!
//! Not for: changing anything about a request. Every hook only reads, and none returns an
//! error: metrics never fail a request.

use std::sync::Arc;
use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef, InterceptorContext,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryReason,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_smithy_types::retry::ErrorKind;
use aws_types::region::Region;

use super::{Metrics, RequestRecord};

/// Records every operation of the client it is added to.
#[derive(Debug, Clone)]
pub struct MetricsInterceptor {
    metrics: Arc<Metrics>,
}

impl Default for MetricsInterceptor {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsInterceptor {
    /// Recording into [`Metrics::global`].
    pub fn new() -> Self {
        Self::with_registry(Metrics::global().clone())
    }

    pub fn with_registry(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

/// What the interceptor knows of one execution so far, kept in its config bag.
#[derive(Debug, Clone)]
struct Execution {
    started: Instant,
    attempts: u32,
    throttles: u32,
    bytes_in: u64,
    bytes_out: u64,
}

impl Storable for Execution {
    type Storer = StoreReplace<Self>;
}

fn header_length(value: Option<&str>) -> Option<u64> {
    value.and_then(|v| v.trim().parse().ok())
}

/// The SDK's verdict on a failed attempt, as its retry strategy reaches it: classifiers in
/// order of priority, each refining the previous verdict, a `RetryForbidden` final.
fn throttled(context: &InterceptorContext, components: &RuntimeComponents) -> bool {
    if context
        .response()
        .is_some_and(|r| r.status().as_u16() == 429)
    {
        return true;
    }
    let mut verdict = RetryAction::NoActionIndicated;
    for classifier in components.retry_classifiers() {
        let next = classifier.classify_retry_v2(context, &verdict);
        if next == RetryAction::NoActionIndicated {
            continue;
        }
        verdict = next;
        if verdict == RetryAction::RetryForbidden {
            break;
        }
    }
    matches!(
        verdict,
        RetryAction::RetryIndicated(RetryReason::RetryableError {
            kind: ErrorKind::ThrottlingError,
            ..
        })
    )
}

impl Intercept for MetricsInterceptor {
    fn name(&self) -> &'static str {
        "nuaws-metrics"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Execution {
            started: Instant::now(),
            attempts: 0,
            throttles: 0,
            bytes_in: 0,
            bytes_out: 0,
        });
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(execution) = cfg.get_mut_from_interceptor_state::<Execution>() {
            execution.attempts += 1;
        }
        Ok(())
    }

    /// The request as it goes out (signed, checksummed): by the end of the attempt the SDK has
    /// handed it to the connector, and the context no longer holds it.
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let sent = request
            .body()
            .content_length()
            .or_else(|| header_length(request.headers().get("content-length")));
        if let Some(execution) = cfg.get_mut_from_interceptor_state::<Execution>() {
            execution.bytes_out += sent.unwrap_or(0);
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The header first: by now a buffered body may have been taken by deserialisation.
        let received = context.response().and_then(|r| {
            header_length(r.headers().get("content-length")).or_else(|| r.body().content_length())
        });
        let failed = matches!(context.output_or_error(), Some(Err(_)));
        let throttle = failed && throttled(context.inner(), components);
        if let Some(execution) = cfg.get_mut_from_interceptor_state::<Execution>() {
            execution.bytes_in += received.unwrap_or(0);
            execution.throttles += u32::from(throttle);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(execution) = cfg.load::<Execution>() else {
            return Ok(());
        };
        let latency = execution.started.elapsed();
        let (service, operation) = cfg
            .load::<Metadata>()
            .map_or(("unknown", "unknown"), |m| (m.service(), m.name()));
        let region = cfg.load::<Region>().map_or("", Region::as_ref);
        self.metrics.record_request(&RequestRecord {
            service,
            operation,
            region,
            latency,
            attempts: execution.attempts,
            // No result at all means it ended before one could be made: a failure too.
            failed: !matches!(context.output_or_error(), Some(Ok(_))),
            throttles: execution.throttles,
            bytes_in: execution.bytes_in,
            bytes_out: execution.bytes_out,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::OperationKey;
    use crate::runtime::{NoInterrupt, block_on};
    use aws_credential_types::Credentials;
    use aws_smithy_runtime_api::client::http::{
        HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
    };
    use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use std::sync::Mutex;
    use std::time::Duration;

    /// An HTTP connector that answers each request with the next scripted response and keeps
    /// the requests' paths: an S3 "server" without a network.
    #[derive(Debug, Default)]
    struct Scripted {
        responses: Mutex<Vec<(u16, &'static str)>>,
        paths: Mutex<Vec<String>>,
    }

    impl HttpConnector for Scripted {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            self.paths.lock().unwrap().push(request.uri().to_string());
            let (status, body) = self.responses.lock().unwrap().remove(0);
            let mut response =
                HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body));
            response
                .headers_mut()
                .insert("content-length", body.len().to_string());
            HttpConnectorFuture::ready(Ok(response))
        }
    }

    const SLOW_DOWN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>1</RequestId></Error>";
    const BUCKETS: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListAllMyBucketsResult><Buckets><Bucket><Name>b</Name><CreationDate>2020-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets><Owner><ID>x</ID></Owner></ListAllMyBucketsResult>";
    const NO_SUCH_BUCKET: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>nope</BucketName><RequestId>2</RequestId></Error>";

    fn client(metrics: &Arc<Metrics>, server: &Arc<Scripted>) -> aws_sdk_s3::Client {
        let connector = SharedHttpConnector::new(ArcConnector(server.clone()));
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(Region::new("eu-central-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .http_client(http_client_fn(move |_, _| connector.clone()))
            .retry_config(
                aws_sdk_s3::config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(1)),
            )
            .interceptor(MetricsInterceptor::with_registry(metrics.clone()))
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    #[derive(Debug)]
    struct ArcConnector(Arc<Scripted>);

    impl HttpConnector for ArcConnector {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            self.0.call(request)
        }
    }

    #[test]
    fn records_latency_retries_throttles_errors_and_bytes() {
        let metrics = Arc::new(Metrics::new());
        let server = Arc::new(Scripted::default());
        *server.responses.lock().unwrap() = vec![
            (503, SLOW_DOWN),
            (200, BUCKETS),
            (404, NO_SUCH_BUCKET),
            (200, ""),
        ];
        let s3 = client(&metrics, &server);
        let listed = block_on(&NoInterrupt, s3.list_buckets().send()).unwrap();
        assert_eq!(listed.unwrap().buckets().len(), 1);
        let missing = block_on(&NoInterrupt, s3.list_objects_v2().bucket("nope").send()).unwrap();
        assert!(missing.is_err());
        let body = aws_sdk_s3::primitives::ByteStream::from_static(&[7u8; 1000]);
        let put = s3.put_object().bucket("b").key("k").body(body).send();
        block_on(&NoInterrupt, put).unwrap().unwrap();
        assert_eq!(server.paths.lock().unwrap().len(), 4);

        let snap = metrics.snapshot();
        let buckets = &snap[&OperationKey::new("s3", "ListBuckets", "eu-central-1")];
        assert_eq!(
            (
                buckets.requests,
                buckets.retries,
                buckets.throttles,
                buckets.errors
            ),
            (1, 1, 1, 0),
            "{buckets:?}"
        );
        assert_eq!(buckets.bytes_in, (SLOW_DOWN.len() + BUCKETS.len()) as u64);
        assert_eq!(buckets.latency.count(), 1);
        let objects = &snap[&OperationKey::new("s3", "ListObjectsV2", "eu-central-1")];
        assert_eq!(
            (
                objects.requests,
                objects.retries,
                objects.throttles,
                objects.errors
            ),
            (1, 0, 0, 1),
            "{objects:?}"
        );
        let put = &snap[&OperationKey::new("s3", "PutObject", "eu-central-1")];
        // The body, plus what the SDK wraps it in (a checksum trailer).
        assert!((1000..1200).contains(&put.bytes_out), "{put:?}");
        assert_eq!(buckets.bytes_out, 0, "{buckets:?}");
    }

    #[test]
    fn the_latency_is_the_whole_operation() {
        /// Answers after a delay, as a slow server would.
        #[derive(Debug)]
        struct Slow;
        impl HttpConnector for Slow {
            fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
                HttpConnectorFuture::new(async {
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    Ok(HttpResponse::new(
                        StatusCode::try_from(200).unwrap(),
                        SdkBody::from(BUCKETS),
                    ))
                })
            }
        }
        let metrics = Arc::new(Metrics::new());
        let connector = SharedHttpConnector::new(Slow);
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(Region::new("eu-central-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .http_client(http_client_fn(move |_, _| connector.clone()))
            .interceptor(MetricsInterceptor::with_registry(metrics.clone()))
            .build();
        let s3 = aws_sdk_s3::Client::from_conf(config);
        for _ in 0..3 {
            block_on(&NoInterrupt, s3.list_buckets().send())
                .unwrap()
                .unwrap();
        }
        let snap = metrics.snapshot();
        let figures = &snap[&OperationKey::new("s3", "ListBuckets", "eu-central-1")];
        assert_eq!(figures.requests, 3);
        let p50 = figures.latency.quantile(0.5).unwrap();
        assert!(
            p50 >= Duration::from_millis(40) && p50 < Duration::from_millis(200),
            "{p50:?}"
        );
    }
}
