//! `FaultProxy` against a tiny echo upstream: forwarding, latency under concurrency, throttling,
//! random errors, resets, stalls, matched failures, the admin interface, and that bad clients or a
//! dead upstream never stop it.

mod common;

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{BIG_BODY_LEN, EchoUpstream, get, http_client, post, send};
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use nuaws_test_servers::{FaultConfig, FaultProxy, SyntheticS3};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_requests_and_adds_latency_to_each_concurrently() {
    let upstream = EchoUpstream::start();
    let proxy = FaultProxy::start(&upstream.endpoint(), FaultConfig::latency(Duration::from_millis(50))).unwrap();
    let client = http_client();

    let put = Request::put(format!("{}/bucket/some%20key?x-id=PutObject", proxy.endpoint()))
        .header("x-amz-meta-test", "kept")
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap();
    let answer = send(&client, put).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "PUT /bucket/some%20key?x-id=PutObject\npayload");
    assert!(answer.total >= Duration::from_millis(50), "{:?}", answer.total);

    proxy.reset_stats();
    let started = Instant::now();
    let requests: Vec<_> = (0..20)
        .map(|i| {
            let client = client.clone();
            let url = format!("{}/item-{i}", proxy.endpoint());
            tokio::spawn(async move { get(&client, &url).await })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.unwrap().unwrap());
    }
    let elapsed = started.elapsed();
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer.body, format!("GET /item-{i}\n"));
        assert!(
            answer.total >= Duration::from_millis(50),
            "request {i} took only {:?}",
            answer.total
        );
    }
    // One after another they would take a second.
    assert!(
        elapsed < Duration::from_millis(500),
        "20 requests with 50 ms latency took {elapsed:?}"
    );
    let stats = proxy.stats();
    assert_eq!((stats.received, stats.forwarded, stats.in_flight), (20, 20, 0));
    assert!(stats.peak_in_flight >= 10, "peak in flight {}", stats.peak_in_flight);
    let log = proxy.log();
    assert_eq!(log.len(), 20);
    assert!(
        log.iter()
            .all(|r| r.finished - r.received >= Duration::from_millis(50) && r.status == Some(200))
    );
    assert!(
        log.iter()
            .all(|r| r.method == "GET" && r.path_and_query.starts_with("/item-"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_costs_no_thread_for_hundreds_of_concurrent_requests() {
    // 200 requests hold about 800 sockets across client, proxy and upstream: more than some
    // machines' default soft limit of 1024 leaves once the other tests' sockets are counted.
    raise_open_file_limit();
    let upstream = EchoUpstream::start();
    // A second of latency: the requests overlap even when a loaded machine (an instrumented
    // build, other tests) takes a few hundred ms to get all 200 going.
    let proxy = FaultProxy::start(&upstream.endpoint(), FaultConfig::latency(Duration::from_millis(1000))).unwrap();
    let client = http_client();
    let started = Instant::now();
    let requests: Vec<_> = (0..200)
        .map(|i| {
            let client = client.clone();
            let url = format!("{}/item-{i}", proxy.endpoint());
            tokio::spawn(async move { get(&client, &url).await })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap().unwrap().status, StatusCode::OK);
    }
    let elapsed = started.elapsed();
    // Were the latency a blocked thread, the proxy's two workers would take 100 s.
    assert!(
        elapsed < Duration::from_secs(5),
        "200 requests with 1 s latency took {elapsed:?}"
    );
    let stats = proxy.stats();
    assert_eq!(stats.forwarded, 200);
    assert!(stats.peak_in_flight >= 150, "peak in flight {}", stats.peak_in_flight);
}

fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max.min(8192) {
            limit.rlim_cur = limit.rlim_max.min(8192);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_bucket_answers_the_excess_with_s3_slow_down() {
    let upstream = EchoUpstream::start();
    let proxy = FaultProxy::start(&upstream.endpoint(), FaultConfig::throttle(50.0, 5)).unwrap();
    let client = http_client();
    // 200 requests spread over one second: the bucket allows its burst of 5 plus 50 refilled.
    let started = Instant::now();
    let mut requests = Vec::new();
    for i in 0..200u64 {
        tokio::time::sleep_until((started + Duration::from_millis(5 * i)).into()).await;
        let client = client.clone();
        let url = format!("{}/bucket/key-{i}", proxy.endpoint());
        requests.push(tokio::spawn(async move { get(&client, &url).await }));
    }
    let mut successes: u32 = 0;
    let mut slow_downs: u32 = 0;
    for request in requests {
        let answer = request.await.unwrap().unwrap();
        match answer.status {
            StatusCode::OK => successes += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(answer.body.contains("<Code>SlowDown</Code>"), "{}", answer.body);
                assert!(
                    answer
                        .body
                        .contains("<Message>Please reduce your request rate.</Message>")
                );
                assert!(answer.body.contains("<RequestId>"));
                slow_downs += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let allowed = 5.0 + 50.0 * seconds;
    assert!(
        f64::from(successes) <= allowed + 1.0,
        "{successes} successes in {seconds:.2} s"
    );
    assert!(successes >= 40, "only {successes} successes in {seconds:.2} s");
    assert_eq!(successes + slow_downs, 200);
    let stats = proxy.stats();
    assert_eq!(stats.throttled, u64::from(slow_downs));
    assert_eq!(stats.forwarded, u64::from(successes));
    assert_eq!(
        upstream.requests.load(std::sync::atomic::Ordering::SeqCst),
        u64::from(successes)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_requests_get_ec2_shaped_errors() {
    let upstream = EchoUpstream::start();
    let proxy = FaultProxy::start(&upstream.endpoint(), FaultConfig::throttle(0.0, 0)).unwrap();
    let client = http_client();
    let signed = |scope: &str| {
        Request::post(format!("{}/", proxy.endpoint()))
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/{scope}/aws4_request, SignedHeaders=host, Signature=00"),
            )
            .header("content-type", "application/x-amz-json-1.0")
            .body(Full::default())
            .unwrap()
    };
    let ec2 = send(&client, signed("ec2")).await.unwrap();
    assert_eq!(ec2.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        ec2.body
            .contains("<Response><Errors><Error><Code>RequestLimitExceeded</Code>"),
        "{}",
        ec2.body
    );
    assert!(ec2.body.contains("<RequestID>"));
    // The credential scope wins over the shape of the request.
    let s3 = send(&client, signed("s3")).await.unwrap();
    assert!(s3.body.contains("<Error><Code>SlowDown</Code>"), "{}", s3.body);
    // Unsigned: EC2's query protocol is recognised by its form-encoded POST or its Action= query.
    let form = Request::post(format!("{}/", proxy.endpoint()))
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(Full::new(Bytes::from_static(
            b"Action=DescribeInstances&Version=2016-11-15",
        )))
        .unwrap();
    assert!(send(&client, form).await.unwrap().body.contains("RequestLimitExceeded"));
    let query = get(&client, &format!("{}/?Action=DescribeInstances", proxy.endpoint()))
        .await
        .unwrap();
    assert!(query.body.contains("RequestLimitExceeded"));
    let presigned = get(
        &client,
        &format!(
            "{}/b/k?X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fec2%2Faws4_request",
            proxy.endpoint()
        ),
    )
    .await
    .unwrap();
    assert!(presigned.body.contains("RequestLimitExceeded"));

    proxy.set_config(FaultConfig::error_rate(1.0)).unwrap();
    let unavailable = send(&client, signed("ec2")).await.unwrap();
    assert_eq!(unavailable.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        unavailable.body.contains("<Code>Unavailable</Code>"),
        "{}",
        unavailable.body
    );
    assert_eq!(upstream.requests.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// Which of `count` sequential requests got an injected 503.
async fn injected_error_indices(proxy: &FaultProxy, count: usize) -> Vec<usize> {
    let client = http_client();
    let mut failed = Vec::new();
    for i in 0..count {
        let answer = get(&client, &format!("{}/bucket/key-{i}", proxy.endpoint()))
            .await
            .unwrap();
        if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(
                answer.body.contains("<Error><Code>ServiceUnavailable</Code>"),
                "{}",
                answer.body
            );
            failed.push(i);
        } else {
            assert_eq!(answer.status, StatusCode::OK);
        }
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_rate_fails_that_fraction_the_same_way_for_the_same_seed() {
    let upstream = EchoUpstream::start();
    let proxy = FaultProxy::start(&upstream.endpoint(), FaultConfig::error_rate(0.3)).unwrap();
    let first = injected_error_indices(&proxy, 1000).await;
    assert!(
        (250..=350).contains(&first.len()),
        "{} injected errors out of 1000",
        first.len()
    );
    assert_eq!(proxy.stats().injected_errors, first.len() as u64);
    assert_eq!(proxy.stats().forwarded, 1000 - first.len() as u64);

    proxy.set_config(FaultConfig::error_rate(0.3)).unwrap();
    assert_eq!(
        injected_error_indices(&proxy, 1000).await,
        first,
        "same seed, same faults"
    );
    proxy.set_config(FaultConfig::error_rate(0.3).with_seed(7)).unwrap();
    assert_ne!(
        injected_error_indices(&proxy, 1000).await,
        first,
        "another seed, other faults"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_closes_the_connection_without_a_response() {
    let upstream = EchoUpstream::start();
    let proxy = FaultProxy::start(&upstream.endpoint(), FaultConfig::reset_rate(1.0)).unwrap();
    let port = proxy.port();
    let read_result = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        stream
            .write_all(b"GET /bucket/key HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buffer = Vec::new();
        stream.read_to_end(&mut buffer).map(|_| buffer)
    })
    .await
    .unwrap();
    match read_result {
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}"),
        Ok(bytes) => panic!("expected a reset, read {:?}", String::from_utf8_lossy(&bytes)),
    }

    // A pooled client sees an error too, not a response.
    assert!(
        get(&http_client(), &format!("{}/bucket/key", proxy.endpoint()))
            .await
            .is_err()
    );
    let stats = proxy.stats();
    assert_eq!((stats.resets, stats.forwarded, stats.in_flight), (2, 0, 0));
    assert!(proxy.log().iter().all(|r| r.status.is_none()));
    assert_eq!(upstream.requests.load(std::sync::atomic::Ordering::SeqCst), 0);

    // The server is still up.
    proxy.set_config(FaultConfig::default()).unwrap();
    assert_eq!(
        get(&http_client(), &format!("{}/after", proxy.endpoint()))
            .await
            .unwrap()
            .body,
        "GET /after\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_start_then_stop_for_the_stall() {
    let upstream = EchoUpstream::start();
    let proxy = FaultProxy::start(
        &upstream.endpoint(),
        FaultConfig::stall(1.0, Some(Duration::from_millis(300))),
    )
    .unwrap();
    let client = http_client();

    let started = Instant::now();
    let response = client
        .request(
            Request::get(format!("{}/big", proxy.endpoint()))
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let head_after = started.elapsed();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let first_after = started.elapsed();
    let mut received = first.len();
    while let Some(frame) = body.frame().await {
        received += frame.unwrap().into_data().map_or(0, |data| data.len());
    }
    let done_after = started.elapsed();
    assert_eq!(received, BIG_BODY_LEN);
    assert!(first.len() < BIG_BODY_LEN);
    assert!(
        first_after < Duration::from_millis(250),
        "the first bytes came after {first_after:?}"
    );
    assert!(
        done_after - head_after >= Duration::from_millis(300),
        "head {head_after:?}, body done {done_after:?}"
    );
    assert_eq!(proxy.stats().stalls, 1);

    // Stalled for good: the body never ends, and the request stays in flight until the client
    // gives up and closes its connection.
    proxy.set_config(FaultConfig::stall(1.0, None)).unwrap();
    let fresh_client = http_client();
    let response = fresh_client
        .request(
            Request::get(format!("{}/big", proxy.endpoint()))
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = response.into_body();
    let mut received = 0;
    // Take what was sent before the stall, until nothing more comes for half a second.
    while let Ok(frame) = tokio::time::timeout(Duration::from_millis(500), body.frame()).await {
        received += frame
            .expect("the body ended")
            .unwrap()
            .into_data()
            .map_or(0, |data| data.len());
    }
    assert!(received > 0 && received < BIG_BODY_LEN, "received {received} bytes");
    assert_eq!(proxy.in_flight(), 1);
    drop(body);
    drop(fresh_client);
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.in_flight() != 0 {
        assert!(
            Instant::now() < deadline,
            "the abandoned stalled request is still in flight"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_matching_fails_only_matching_requests_with_the_status() {
    let upstream = EchoUpstream::start();
    let proxy = FaultProxy::start(&upstream.endpoint(), FaultConfig::fail_matching("fail-", 403)).unwrap();
    let client = http_client();
    for i in 0..10 {
        let ok = get(&client, &format!("{}/bucket/ok-{i}", proxy.endpoint()))
            .await
            .unwrap();
        assert_eq!((ok.status, ok.body), (StatusCode::OK, format!("GET /bucket/ok-{i}\n")));
        let failed = get(&client, &format!("{}/bucket/fail-{i}", proxy.endpoint()))
            .await
            .unwrap();
        assert_eq!(failed.status, StatusCode::FORBIDDEN);
        assert!(
            failed
                .body
                .contains("<Error><Code>AccessDenied</Code><Message>Access Denied</Message>"),
            "{}",
            failed.body
        );
    }
    let in_query = get(
        &client,
        &format!("{}/bucket?list-type=2&prefix=fail-", proxy.endpoint()),
    )
    .await
    .unwrap();
    assert_eq!(in_query.status, StatusCode::FORBIDDEN);

    proxy.set_config(FaultConfig::fail_matching("fail-", 500)).unwrap();
    let internal = get(&client, &format!("{}/bucket/fail-1", proxy.endpoint()))
        .await
        .unwrap();
    assert_eq!(internal.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        internal.body.contains("<Code>InternalError</Code>"),
        "{}",
        internal.body
    );
    let head = send(
        &client,
        Request::head(format!("{}/bucket/fail-1", proxy.endpoint()))
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        (head.status, head.body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "")
    );

    let stats = proxy.stats();
    assert_eq!((stats.matched_failures, stats.forwarded), (13, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_interface_sets_config_and_reports_stats_without_forwarding() {
    let upstream = EchoUpstream::start();
    let proxy = FaultProxy::start(&upstream.endpoint(), FaultConfig::default()).unwrap();
    let client = http_client();
    let admin = |path: &str| format!("{}/__proxy/{path}", proxy.endpoint());

    let set = post(
        &client,
        &admin("config"),
        r#"{"latency_ms": 30, "throttle_rate": 100, "error_rate": 0.5, "stall_rate": 0.1, "fail_matching": "bad", "fail_status": 404, "seed": 3}"#,
    )
    .await
    .unwrap();
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let config = proxy.config();
    assert_eq!(config.latency, Duration::from_millis(30));
    assert_eq!(
        config.throttle.map(|t| (t.rate_per_second, t.burst)),
        Some((100.0, 100))
    );
    assert_eq!(
        (config.error_rate, config.stall_rate, config.stall_for),
        (0.5, 0.1, None)
    );
    assert_eq!(
        (config.fail_matching.as_deref(), config.fail_status, config.seed),
        (Some("bad"), 404, 3)
    );
    let shown: serde_json::Value = serde_json::from_str(&get(&client, &admin("config")).await.unwrap().body).unwrap();
    assert_eq!(shown["latency_ms"], 30);
    assert_eq!(shown["throttle_burst"], 100);

    for bad in [
        r#"{"error_rate": 1.5}"#,
        r#"{"latency": 5}"#,
        "not json",
        r#"{"fail_status": 70000}"#,
        "[1]",
    ] {
        let refused = post(&client, &admin("config"), bad).await.unwrap();
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(refused.body.contains("\"error\""), "{}", refused.body);
    }
    assert_eq!(
        proxy.config().latency,
        Duration::from_millis(30),
        "a refused config changes nothing"
    );

    assert_eq!(
        post(&client, &admin("config"), "{}").await.unwrap().status,
        StatusCode::OK
    );
    assert_eq!(proxy.config(), FaultConfig::default());
    get(&client, &format!("{}/a", proxy.endpoint())).await.unwrap();
    let stats: serde_json::Value = serde_json::from_str(&get(&client, &admin("stats")).await.unwrap().body).unwrap();
    assert_eq!(
        (stats["received"].as_u64(), stats["forwarded"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        post(&client, &admin("reset-stats"), "").await.unwrap().status,
        StatusCode::OK
    );
    assert_eq!(proxy.stats().received, 0);
    assert!(proxy.log().is_empty());
    assert_eq!(
        get(&client, &admin("nothing")).await.unwrap().status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        upstream.requests.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "admin requests stay in the proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_broken_clients_and_a_dead_upstream() {
    // A port nothing listens on: bind one, then free it.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = FaultProxy::start(
        &format!("http://{dead}"),
        FaultConfig::latency(Duration::from_millis(20)),
    )
    .unwrap();
    let port = proxy.port();
    tokio::task::spawn_blocking(move || {
        for garbage in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort",
            b"GET /x HTTP/1.1\r\n",
        ] {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            let _ = stream.write_all(garbage);
            // Close mid-request, or right after a complete request while it waits out the latency.
        }
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _ = stream.write_all(b"GET /y HTTP/1.1\r\nHost: x\r\n\r\n");
    })
    .await
    .unwrap();
    let answer = get(&http_client(), &format!("{}/z", proxy.endpoint())).await.unwrap();
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert!(proxy.stats().upstream_errors >= 1);

    let upstream = EchoUpstream::start();
    assert!(FaultProxy::start("https://127.0.0.1:1", FaultConfig::default()).is_err());
    assert!(FaultProxy::start(&upstream.endpoint(), FaultConfig::error_rate(2.0)).is_err());
    let proxy = FaultProxy::start(&upstream.endpoint(), FaultConfig::default()).unwrap();
    assert!(proxy.set_config(FaultConfig::reset_rate(-0.1)).is_err());
}

/// A request signed (as far as the proxy looks) for `region`: SigV4's credential scope in the
/// Authorization header, with a dummy signature; the proxy checks no signatures.
fn signed_for(method: &str, url: &str, region: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(url)
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20260101/{region}/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
            ),
        )
        .body(Full::default())
        .unwrap()
}

fn bucket_region_header(answer: &common::Answer) -> Option<&str> {
    answer
        .headers
        .get("x-amz-bucket-region")
        .map(|value| value.to_str().unwrap())
}

fn upstream_requests(upstream: &EchoUpstream) -> u64 {
    upstream.requests.load(std::sync::atomic::Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_region_gets_permanent_redirect_with_region_header_and_endpoint() {
    let upstream = EchoUpstream::start();
    let proxy = FaultProxy::start(
        &upstream.endpoint(),
        FaultConfig::default().with_bucket_region("eu-bucket", "eu-west-1"),
    )
    .unwrap();
    let client = http_client();
    let url = format!("{}/eu-bucket/some%20key", proxy.endpoint());

    let redirected = send(&client, signed_for("GET", &url, "us-east-1")).await.unwrap();
    assert_eq!(redirected.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(bucket_region_header(&redirected), Some("eu-west-1"));
    assert!(redirected.headers.contains_key("x-amz-request-id"));
    assert_eq!(
        redirected.headers["content-type"].to_str().unwrap(),
        "application/xml"
    );
    assert!(
        redirected.body.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>PermanentRedirect</Code>\
             <Message>The bucket you are attempting to access must be addressed using the specified endpoint. \
             Please send all future requests to this endpoint.</Message>\
             <Endpoint>eu-bucket.s3.eu-west-1.amazonaws.com</Endpoint><Bucket>eu-bucket</Bucket><RequestId>"
        ),
        "{}",
        redirected.body
    );
    assert_eq!(common::xml_values(&redirected.body, "HostId").len(), 1);

    // A presigned URL carries its scope in the query; a PUT is redirected like a GET.
    let presigned = get(
        &client,
        &format!("{url}?X-Amz-Credential=AKID%2F20260101%2Fus-west-2%2Fs3%2Faws4_request"),
    )
    .await
    .unwrap();
    assert_eq!(presigned.status, StatusCode::MOVED_PERMANENTLY);
    let put = send(&client, signed_for("PUT", &url, "ap-northeast-1")).await.unwrap();
    assert_eq!(
        (put.status, bucket_region_header(&put)),
        (StatusCode::MOVED_PERMANENTLY, Some("eu-west-1"))
    );

    // Virtual-hosted style: the bucket is in the Host, in front of the proxy's own address.
    for host in [
        format!("eu-bucket.localhost:{}", proxy.port()),
        format!("eu-bucket.127.0.0.1:{}", proxy.port()),
    ] {
        let mut request = signed_for("GET", &format!("{}/some-key", proxy.endpoint()), "us-east-1");
        request.headers_mut().insert("host", host.parse().unwrap());
        let answer = send(&client, request).await.unwrap();
        assert_eq!(answer.status, StatusCode::MOVED_PERMANENTLY, "{host}");
        assert!(answer.body.contains("<Bucket>eu-bucket</Bucket>"), "{}", answer.body);
    }
    assert_eq!(upstream_requests(&upstream), 0, "region errors are never forwarded");

    // The right region, an unsigned request, a bucket not in the map and another bucket whose
    // name starts the same all pass through.
    let same_region = send(&client, signed_for("GET", &url, "eu-west-1")).await.unwrap();
    assert_eq!(
        (same_region.status, same_region.body.as_str()),
        (StatusCode::OK, "GET /eu-bucket/some%20key\n")
    );
    assert_eq!(bucket_region_header(&same_region), None);
    assert_eq!(get(&client, &url).await.unwrap().status, StatusCode::OK);
    for other in ["other-bucket/key", "eu-bucket2/key", "eu-bucket-x"] {
        let answer = send(
            &client,
            signed_for("GET", &format!("{}/{other}", proxy.endpoint()), "us-east-1"),
        )
        .await
        .unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{other}");
    }
    // A Host that is only the proxy's address is path-style, not a bucket named "127".
    let mut path_style = signed_for("GET", &url, "us-east-1");
    path_style
        .headers_mut()
        .insert("host", format!("127.0.0.1:{}", proxy.port()).parse().unwrap());
    assert_eq!(
        send(&client, path_style).await.unwrap().status,
        StatusCode::MOVED_PERMANENTLY
    );

    let stats = proxy.stats();
    assert_eq!(
        (stats.received, stats.region_errors, stats.forwarded),
        (11, 6, 5)
    );
    let statuses: Vec<_> = proxy.log().iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == Some(301)).count(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_requests_get_the_region_header_and_no_body() {
    let upstream = EchoUpstream::start();
    let proxy = FaultProxy::start(
        &upstream.endpoint(),
        FaultConfig::default()
            .with_bucket_region("eu-bucket", "eu-west-1")
            .with_bucket_region("cape-bucket", "af-south-1"),
    )
    .unwrap();
    let client = http_client();
    let head = |path: &str, region: &str| signed_for("HEAD", &format!("{}/{path}", proxy.endpoint()), region);

    // HeadBucket from the wrong region: 301, the header, no body.
    let wrong = send(&client, head("eu-bucket", "us-east-1")).await.unwrap();
    assert_eq!(
        (wrong.status, bucket_region_header(&wrong), wrong.body.as_str()),
        (StatusCode::MOVED_PERMANENTLY, Some("eu-west-1"), "")
    );
    // From its own region: forwarded, and S3's header added to the upstream's answer.
    let right = send(&client, head("eu-bucket", "eu-west-1")).await.unwrap();
    assert_eq!(
        (right.status, bucket_region_header(&right)),
        (StatusCode::OK, Some("eu-west-1"))
    );
    assert_eq!(upstream_requests(&upstream), 1);
    // HeadBucket redirects even where other requests get a 400: opt-in regions.
    for (path, region, expected) in [
        ("cape-bucket", "us-east-1", "af-south-1"),
        ("eu-bucket", "me-south-1", "eu-west-1"),
        ("eu-bucket/", "me-south-1", "eu-west-1"),
    ] {
        let answer = send(&client, head(path, region)).await.unwrap();
        assert_eq!(
            (answer.status, bucket_region_header(&answer), answer.body.as_str()),
            (StatusCode::MOVED_PERMANENTLY, Some(expected), ""),
            "{path} from {region}"
        );
    }
    // HeadObject from the wrong region: 301 with the header and no body.
    let object = send(&client, head("eu-bucket/key", "us-west-2")).await.unwrap();
    assert_eq!(
        (object.status, bucket_region_header(&object), object.body.as_str()),
        (StatusCode::MOVED_PERMANENTLY, Some("eu-west-1"), "")
    );
    // HeadObject in the bucket's region is forwarded unchanged.
    let object = send(&client, head("eu-bucket/key", "eu-west-1")).await.unwrap();
    assert_eq!(
        (object.status, bucket_region_header(&object)),
        (StatusCode::OK, None)
    );
    assert_eq!(proxy.stats().region_errors, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_endpoint_answers_us_east_1_with_authorization_header_malformed() {
    let upstream = EchoUpstream::start();
    let proxy = FaultProxy::start(
        &upstream.endpoint(),
        FaultConfig::default()
            .with_bucket_region("eu-bucket", "eu-west-1")
            .with_global_s3_endpoint(),
    )
    .unwrap();
    assert_eq!(proxy.config().s3_endpoint.as_str(), "global");
    let client = http_client();
    let url = format!("{}/eu-bucket/key", proxy.endpoint());

    let malformed = send(&client, signed_for("GET", &url, "us-east-1")).await.unwrap();
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(bucket_region_header(&malformed), None);
    assert!(
        malformed.body.contains(
            "<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; \
             the region &apos;us-east-1&apos; is wrong; expecting &apos;eu-west-1&apos;</Message>\
             <Region>eu-west-1</Region><RequestId>"
        ),
        "{}",
        malformed.body
    );
    // A HEAD has no body to carry <Region>: the header carries it.
    let head = send(&client, signed_for("HEAD", &url, "us-east-1")).await.unwrap();
    assert_eq!(
        (head.status, bucket_region_header(&head), head.body.as_str()),
        (StatusCode::BAD_REQUEST, Some("eu-west-1"), "")
    );
    // Signed for another region, the global endpoint redirects.
    let other = send(&client, signed_for("GET", &url, "us-west-2")).await.unwrap();
    assert_eq!(
        (other.status, bucket_region_header(&other)),
        (StatusCode::MOVED_PERMANENTLY, Some("eu-west-1"))
    );
    // HeadBucket still redirects with the header.
    let head_bucket = send(
        &client,
        signed_for("HEAD", &format!("{}/eu-bucket", proxy.endpoint()), "us-east-1"),
    )
    .await
    .unwrap();
    assert_eq!(head_bucket.status, StatusCode::MOVED_PERMANENTLY);

    // A regional endpoint redirects the same request.
    proxy
        .set_config(FaultConfig::default().with_bucket_region("eu-bucket", "eu-west-1"))
        .unwrap();
    let regional = send(&client, signed_for("GET", &url, "us-east-1")).await.unwrap();
    assert_eq!(regional.status, StatusCode::MOVED_PERMANENTLY);
    assert!(regional.body.contains("<Code>PermanentRedirect</Code>"));
    assert_eq!(upstream_requests(&upstream), 0);
    assert_eq!(proxy.stats().region_errors, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_in_region_mismatch_is_an_illegal_location_constraint_without_region_header() {
    let upstream = EchoUpstream::start();
    let proxy = FaultProxy::start(
        &upstream.endpoint(),
        FaultConfig::default()
            .with_bucket_region("cape-bucket", "af-south-1")
            .with_bucket_region("eu-bucket", "eu-west-1")
            .with_global_s3_endpoint(),
    )
    .unwrap();
    let client = http_client();
    let url = |path: &str| format!("{}/{path}", proxy.endpoint());

    // Both directions: an opt-in bucket from a default region, and the other way round. The
    // opt-in rule wins over the global endpoint's AuthorizationHeaderMalformed.
    for (path, signed, constraint) in [
        ("cape-bucket/key", "us-east-1", "af-south-1"),
        ("cape-bucket", "eu-west-1", "af-south-1"),
        ("eu-bucket/key", "me-south-1", "eu-west-1"),
    ] {
        let answer = send(&client, signed_for("GET", &url(path), signed)).await.unwrap();
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path} from {signed}");
        assert_eq!(bucket_region_header(&answer), None);
        assert!(
            answer.body.contains(&format!(
                "<Error><Code>IllegalLocationConstraintException</Code><Message>The {constraint} location constraint \
                 is incompatible for the region specific endpoint this request was sent to.</Message><RequestId>"
            )),
            "{}",
            answer.body
        );
    }
    let head = send(&client, signed_for("HEAD", &url("cape-bucket/key"), "us-east-1"))
        .await
        .unwrap();
    assert_eq!(
        (head.status, bucket_region_header(&head), head.body.as_str()),
        (StatusCode::BAD_REQUEST, None, "")
    );
    // Between two opt-in regions S3 redirects.
    let both = send(&client, signed_for("GET", &url("cape-bucket/key"), "me-south-1"))
        .await
        .unwrap();
    assert_eq!(
        (both.status, bucket_region_header(&both)),
        (StatusCode::MOVED_PERMANENTLY, Some("af-south-1"))
    );
    // The bucket's own region is served.
    let own = send(&client, signed_for("GET", &url("cape-bucket/key"), "af-south-1"))
        .await
        .unwrap();
    assert_eq!(own.status, StatusCode::OK);
    let stats = proxy.stats();
    assert_eq!((stats.region_errors, stats.forwarded), (5, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_bucket_location_is_answered_from_every_region() {
    let upstream = EchoUpstream::start();
    let proxy = FaultProxy::start(
        &upstream.endpoint(),
        FaultConfig::default()
            .with_bucket_region("eu-bucket", "eu-west-1")
            .with_bucket_region("us-bucket", "us-east-1")
            .with_bucket_region("cape-bucket", "af-south-1"),
    )
    .unwrap();
    let client = http_client();
    let location = |bucket: &str| format!("{}/{bucket}?location", proxy.endpoint());
    let xml = |constraint: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint \
             xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{constraint}</LocationConstraint>"
        )
    };
    for (bucket, signed, constraint) in [
        ("eu-bucket", "us-east-1", "eu-west-1"),
        ("eu-bucket", "eu-west-1", "eu-west-1"),
        ("eu-bucket", "af-south-1", "eu-west-1"),
        ("cape-bucket", "us-east-1", "af-south-1"),
        // us-east-1 is the empty constraint.
        ("us-bucket", "eu-west-1", ""),
        ("us-bucket", "us-east-1", ""),
    ] {
        let answer = send(&client, signed_for("GET", &location(bucket), signed)).await.unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{bucket} from {signed}");
        assert_eq!(answer.body, xml(constraint));
        assert_eq!(
            answer.headers["content-type"].to_str().unwrap(),
            "application/xml"
        );
        assert_eq!(bucket_region_header(&answer), None);
    }
    // Virtual-hosted, and with `location=`.
    let mut hosted = signed_for(
        "GET",
        &format!("{}/?location=", proxy.endpoint()),
        "us-west-2",
    );
    hosted
        .headers_mut()
        .insert("host", format!("eu-bucket.localhost:{}", proxy.port()).parse().unwrap());
    assert_eq!(send(&client, hosted).await.unwrap().body, xml("eu-west-1"));
    // A bucket not in the map is the upstream's to answer.
    let unknown = send(&client, signed_for("GET", &location("other"), "eu-west-1"))
        .await
        .unwrap();
    assert_eq!(unknown.body, "GET /other?location\n");
    let stats = proxy.stats();
    assert_eq!(
        (stats.bucket_locations, stats.region_errors, stats.forwarded),
        (7, 0, 1)
    );
    assert_eq!(upstream_requests(&upstream), 1);
    assert!(proxy.log().iter().all(|r| r.status == Some(200)));
}

const LIST_BUCKETS_XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult \
    xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>abc</ID><DisplayName>webfile</DisplayName></Owner>\
    <Buckets>\
    <Bucket><Name>eu-bucket</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate><BucketRegion>us-east-1</BucketRegion></Bucket>\
    <Bucket><Name>plain</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate><BucketRegion>us-east-1</BucketRegion></Bucket>\
    <Bucket><Name>bare</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>\
    <Bucket><Name>cape-bucket</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>\
    </Buckets></ListAllMyBucketsResult>";

/// (name, regions) of each `<Bucket>` row.
fn bucket_rows(xml: &str) -> Vec<(String, Vec<String>)> {
    common::xml_values(xml, "Bucket")
        .iter()
        .map(|row| {
            (
                common::xml_values(row, "Name").concat(),
                common::xml_values(row, "BucketRegion"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_buckets_rows_get_their_bucket_region_or_lose_it() {
    let upstream = EchoUpstream::with_list_buckets(LIST_BUCKETS_XML);
    let config = FaultConfig::default()
        .with_bucket_region("eu-bucket", "eu-west-1")
        .with_bucket_region("cape-bucket", "af-south-1")
        .with_bucket_region("absent", "us-west-2");
    let proxy = FaultProxy::start(&upstream.endpoint(), config.clone()).unwrap();
    let client = http_client();
    let list = format!("{}/", proxy.endpoint());
    let rows = |names: [(&str, &[&str]); 4]| -> Vec<(String, Vec<String>)> {
        names
            .iter()
            .map(|(name, regions)| (name.to_string(), regions.iter().map(|r| r.to_string()).collect()))
            .collect()
    };

    // Answered in any region: buckets in the map get theirs (replacing the upstream's), the
    // others stay as the upstream sent them.
    for signed in ["us-east-1", "af-south-1", "ap-southeast-2"] {
        let answer = send(&client, signed_for("GET", &list, signed)).await.unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            bucket_rows(&answer.body),
            rows([
                ("eu-bucket", &["eu-west-1"]),
                ("plain", &["us-east-1"]),
                ("bare", &[]),
                ("cape-bucket", &["af-south-1"]),
            ])
        );
        assert!(answer.body.contains(
            "<Bucket><Name>cape-bucket</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate>\
             <BucketRegion>af-south-1</BucketRegion></Bucket>"
        ));
        assert!(answer.body.ends_with("</Buckets></ListAllMyBucketsResult>"));
        assert_eq!(
            answer.headers["content-length"].to_str().unwrap(),
            answer.body.len().to_string()
        );
        assert_eq!(
            answer.headers["content-type"].to_str().unwrap(),
            "application/xml"
        );
    }

    // Off: no row has one, as from an older S3-compatible server.
    proxy.set_config(config.with_list_bucket_regions(false)).unwrap();
    let stripped = send(&client, signed_for("GET", &list, "us-east-1")).await.unwrap();
    assert!(!stripped.body.contains("BucketRegion"), "{}", stripped.body);
    assert_eq!(bucket_rows(&stripped.body).len(), 4);
    assert_eq!(
        stripped.headers["content-length"].to_str().unwrap(),
        stripped.body.len().to_string()
    );
    // Also with no bucket_regions at all.
    proxy
        .set_config(FaultConfig::default().with_list_bucket_regions(false))
        .unwrap();
    let stripped = send(&client, signed_for("GET", &list, "us-east-1")).await.unwrap();
    assert!(!stripped.body.contains("BucketRegion"));

    // The default config leaves the body as the upstream sent it.
    proxy.set_config(FaultConfig::default()).unwrap();
    let untouched = send(&client, signed_for("GET", &list, "us-east-1")).await.unwrap();
    assert_eq!(untouched.body, LIST_BUCKETS_XML);
    let stats = proxy.stats();
    assert_eq!((stats.forwarded, stats.region_errors), (6, 0));

    // SyntheticS3's ListBuckets row gains one too.
    let synthetic = SyntheticS3::start("synthetic-bucket", 3).unwrap();
    let proxy = FaultProxy::start(
        &synthetic.endpoint(),
        FaultConfig::default().with_bucket_region("synthetic-bucket", "eu-central-1"),
    )
    .unwrap();
    let answer = send(
        &client,
        signed_for("GET", &format!("{}/", proxy.endpoint()), "us-east-1"),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        bucket_rows(&answer.body),
        vec![("synthetic-bucket".to_owned(), vec!["eu-central-1".to_owned()])]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_loop_buckets_always_redirect_to_another_region() {
    let upstream = EchoUpstream::start();
    let proxy = FaultProxy::start(
        &upstream.endpoint(),
        FaultConfig::default()
            .with_redirect_loop("loop-bucket")
            .with_bucket_region("loop-bucket", "eu-west-1"),
    )
    .unwrap();
    let client = http_client();
    let url = format!("{}/loop-bucket/key", proxy.endpoint());

    // Following each redirect leads to another one, never to the object.
    let mut region = "us-east-1".to_owned();
    let mut visited = Vec::new();
    for _ in 0..6 {
        let answer = send(&client, signed_for("GET", &url, &region)).await.unwrap();
        assert_eq!(answer.status, StatusCode::MOVED_PERMANENTLY);
        let next = bucket_region_header(&answer).unwrap().to_owned();
        assert_ne!(next, region);
        assert!(
            answer.body.contains(&format!(
                "<Endpoint>loop-bucket.s3.{next}.amazonaws.com</Endpoint><Bucket>loop-bucket</Bucket>"
            )),
            "{}",
            answer.body
        );
        visited.push(next.clone());
        region = next;
    }
    assert_eq!(
        visited,
        ["us-west-2", "eu-west-1", "us-west-2", "eu-west-1", "us-west-2", "eu-west-1"]
    );
    // Every operation: HEAD, GetBucketLocation, the region in bucket_regions too.
    let head = send(
        &client,
        signed_for("HEAD", &format!("{}/loop-bucket", proxy.endpoint()), "eu-west-1"),
    )
    .await
    .unwrap();
    assert_eq!(
        (head.status, bucket_region_header(&head), head.body.as_str()),
        (StatusCode::MOVED_PERMANENTLY, Some("us-west-2"), "")
    );
    let location = send(
        &client,
        signed_for(
            "GET",
            &format!("{}/loop-bucket?location", proxy.endpoint()),
            "us-west-2",
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        (location.status, bucket_region_header(&location)),
        (StatusCode::MOVED_PERMANENTLY, Some("eu-west-1"))
    );
    assert_eq!(upstream_requests(&upstream), 0);
    assert_eq!(proxy.stats().region_errors, 8);

    // Through the admin interface.
    let admin = post(
        &client,
        &format!("{}/__proxy/config", proxy.endpoint()),
        r#"{"redirect_loops": ["other-loop"]}"#,
    )
    .await
    .unwrap();
    assert_eq!(admin.status, StatusCode::OK, "{}", admin.body);
    let other = send(
        &client,
        signed_for("GET", &format!("{}/other-loop/k", proxy.endpoint()), "us-west-2"),
    )
    .await
    .unwrap();
    assert_eq!(bucket_region_header(&other), Some("eu-west-1"));
    let freed = send(&client, signed_for("GET", &url, "us-east-1")).await.unwrap();
    assert_eq!(freed.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_answers_wait_out_latency_precede_faults_and_are_counted() {
    let upstream = EchoUpstream::start();
    let proxy = FaultProxy::start(
        &upstream.endpoint(),
        FaultConfig::throttle(0.0, 0)
            .with_latency(Duration::from_millis(40))
            .with_bucket_region("eu-bucket", "eu-west-1"),
    )
    .unwrap();
    let client = http_client();
    let url = format!("{}/eu-bucket/key", proxy.endpoint());

    let redirected = send(&client, signed_for("GET", &url, "us-east-1")).await.unwrap();
    assert_eq!(redirected.status, StatusCode::MOVED_PERMANENTLY);
    assert!(redirected.total >= Duration::from_millis(40), "{:?}", redirected.total);
    // In the right region the request meets the faults.
    let throttled = send(&client, signed_for("GET", &url, "eu-west-1")).await.unwrap();
    assert_eq!(throttled.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(throttled.body.contains("<Code>SlowDown</Code>"));
    // So does GetBucketLocation, which stands in for the upstream.
    let location = send(
        &client,
        signed_for("GET", &format!("{}/eu-bucket?location", proxy.endpoint()), "us-east-1"),
    )
    .await
    .unwrap();
    assert_eq!(location.status, StatusCode::SERVICE_UNAVAILABLE);
    let unmapped = send(
        &client,
        signed_for("GET", &format!("{}/other/key", proxy.endpoint()), "us-east-1"),
    )
    .await
    .unwrap();
    assert_eq!(unmapped.status, StatusCode::SERVICE_UNAVAILABLE);

    let stats = proxy.stats();
    assert_eq!(
        (stats.received, stats.region_errors, stats.throttled, stats.bucket_locations),
        (4, 1, 3, 0)
    );
    let shown = stats.to_json();
    assert_eq!(shown["region_errors"], 1);
    assert_eq!(shown["bucket_locations"], 0);
    let over_http: serde_json::Value = serde_json::from_str(
        &get(&client, &format!("{}/__proxy/stats", proxy.endpoint()))
            .await
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(over_http["region_errors"], 1);
    let log = proxy.log();
    assert_eq!(
        log.iter().map(|r| r.status).collect::<Vec<_>>(),
        [Some(301), Some(503), Some(503), Some(503)]
    );
    assert_eq!(
        (log[0].method.as_str(), log[0].path_and_query.as_str()),
        ("GET", "/eu-bucket/key")
    );
    assert!(log[0].finished - log[0].received >= Duration::from_millis(40));

    proxy.reset_stats();
    assert_eq!(proxy.stats().region_errors, 0);
    assert!(proxy.log().is_empty());
}

#[test]
fn region_config_round_trips_through_json_and_rejects_bad_values() {
    let config = FaultConfig::default()
        .with_bucket_region("eu-bucket", "eu-west-1")
        .with_bucket_region("us-bucket", "us-east-1")
        .with_global_s3_endpoint()
        .with_list_bucket_regions(false)
        .with_redirect_loop("loop-bucket")
        .with_disabled_region("af-south-1");
    let json = config.to_json();
    assert_eq!(json["disabled_regions"], serde_json::json!(["af-south-1"]));
    assert_eq!(
        json["bucket_regions"],
        serde_json::json!({ "eu-bucket": "eu-west-1", "us-bucket": "us-east-1" })
    );
    assert_eq!(json["s3_endpoint"], "global");
    assert_eq!(json["list_bucket_regions"], false);
    assert_eq!(json["redirect_loops"], serde_json::json!(["loop-bucket"]));
    assert_eq!(FaultConfig::from_json(&json).unwrap(), config);

    // The defaults: off, and the proxy transparent.
    let defaults = FaultConfig::default();
    assert!(defaults.bucket_regions.is_empty() && defaults.redirect_loops.is_empty());
    assert!(defaults.list_bucket_regions);
    assert_eq!(defaults.s3_endpoint.as_str(), "regional");
    let shown = defaults.to_json();
    assert_eq!(shown["bucket_regions"], serde_json::json!({}));
    assert_eq!(shown["s3_endpoint"], "regional");
    assert_eq!(shown["list_bucket_regions"], true);
    assert_eq!(shown["redirect_loops"], serde_json::json!([]));
    assert_eq!(FaultConfig::from_json(&shown).unwrap(), defaults);
    assert_eq!(
        FaultConfig::from_json(&serde_json::json!({
            "bucket_regions": null, "s3_endpoint": null, "list_bucket_regions": null, "redirect_loops": null
        }))
        .unwrap(),
        defaults
    );
    let parsed = FaultConfig::from_json(&serde_json::json!({
        "bucket_regions": { "b": "ap-southeast-2" }, "s3_endpoint": "regional"
    }))
    .unwrap();
    assert_eq!(parsed, FaultConfig::default().with_bucket_region("b", "ap-southeast-2"));

    for bad in [
        serde_json::json!({ "bucket_regions": { "b": 5 } }),
        serde_json::json!({ "bucket_regions": { "b": null } }),
        serde_json::json!({ "bucket_regions": ["b"] }),
        serde_json::json!({ "bucket_regions": { "b": "EU" } }),
        serde_json::json!({ "bucket_regions": { "b": "" } }),
        serde_json::json!({ "bucket_regions": { "b": "eu west 1" } }),
        serde_json::json!({ "bucket_regions": { "": "eu-west-1" } }),
        serde_json::json!({ "bucket_regions": { "a/b": "eu-west-1" } }),
        serde_json::json!({ "s3_endpoint": "moon" }),
        serde_json::json!({ "s3_endpoint": "Global" }),
        serde_json::json!({ "s3_endpoint": 1 }),
        serde_json::json!({ "list_bucket_regions": "yes" }),
        serde_json::json!({ "list_bucket_regions": 1 }),
        serde_json::json!({ "redirect_loops": "b" }),
        serde_json::json!({ "redirect_loops": [1] }),
        serde_json::json!({ "redirect_loops": [""] }),
        serde_json::json!({ "bucket_region": { "b": "eu-west-1" } }),
    ] {
        assert!(FaultConfig::from_json(&bad).is_err(), "{bad}");
    }
    assert!(
        FaultConfig::default()
            .with_bucket_region("b", "Not A Region")
            .validate()
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_interface_sets_and_shows_region_fields() {
    let upstream = EchoUpstream::start();
    let proxy = FaultProxy::start(&upstream.endpoint(), FaultConfig::default()).unwrap();
    let client = http_client();
    let admin = format!("{}/__proxy/config", proxy.endpoint());
    let set = post(
        &client,
        &admin,
        r#"{"bucket_regions": {"eu-bucket": "eu-west-1"}, "s3_endpoint": "global", "list_bucket_regions": false, "redirect_loops": ["loop"]}"#,
    )
    .await
    .unwrap();
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(
        proxy.config(),
        FaultConfig::default()
            .with_bucket_region("eu-bucket", "eu-west-1")
            .with_global_s3_endpoint()
            .with_list_bucket_regions(false)
            .with_redirect_loop("loop")
    );
    let shown: serde_json::Value = serde_json::from_str(&get(&client, &admin).await.unwrap().body).unwrap();
    assert_eq!(shown["bucket_regions"]["eu-bucket"], "eu-west-1");
    assert_eq!(shown["s3_endpoint"], "global");
    for bad in [
        r#"{"bucket_regions": {"eu-bucket": 1}}"#,
        r#"{"s3_endpoint": "local"}"#,
        r#"{"redirect_loops": "loop"}"#,
    ] {
        let refused = post(&client, &admin, bad).await.unwrap();
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(refused.body.contains("\"error\""), "{}", refused.body);
    }
    assert_eq!(proxy.config().s3_endpoint.as_str(), "global", "a refused config changes nothing");
}

fn sdk_client(endpoint: &str, region: &str) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new("AKIDTESTING", "secret", None, None, "test"))
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The AWS SDK's own parsers accept the proxy's region answers as S3's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_sdk_reads_the_region_answers() {
    use aws_sdk_s3::error::ProvideErrorMetadata as _;
    use aws_sdk_s3::types::BucketLocationConstraint;
    let synthetic = SyntheticS3::start("eu-bucket", 3).unwrap();
    let proxy = FaultProxy::start(
        &synthetic.endpoint(),
        FaultConfig::default().with_bucket_region("eu-bucket", "eu-west-1"),
    )
    .unwrap();
    let wrong = sdk_client(&proxy.endpoint(), "us-east-1");
    let right = sdk_client(&proxy.endpoint(), "eu-west-1");

    let head = wrong.head_bucket().bucket("eu-bucket").send().await.unwrap_err();
    let raw = head.raw_response().expect("a response");
    assert_eq!(raw.status().as_u16(), 301);
    assert_eq!(raw.headers().get("x-amz-bucket-region"), Some("eu-west-1"));
    let found = right.head_bucket().bucket("eu-bucket").send().await.unwrap();
    assert_eq!(found.bucket_region(), Some("eu-west-1"));

    let get = wrong
        .get_object()
        .bucket("eu-bucket")
        .key("obj/000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(get.code(), Some("PermanentRedirect"));
    assert_eq!(
        get.raw_response().unwrap().headers().get("x-amz-bucket-region"),
        Some("eu-west-1")
    );

    let location = wrong.get_bucket_location().bucket("eu-bucket").send().await.unwrap();
    assert_eq!(location.location_constraint(), Some(&BucketLocationConstraint::EuWest1));
    let listed = wrong.list_buckets().send().await.unwrap();
    assert_eq!(listed.buckets()[0].bucket_region(), Some("eu-west-1"));

    proxy
        .set_config(
            FaultConfig::default()
                .with_bucket_region("eu-bucket", "eu-west-1")
                .with_global_s3_endpoint(),
        )
        .unwrap();
    let malformed = wrong.list_objects_v2().bucket("eu-bucket").send().await.unwrap_err();
    assert_eq!(malformed.code(), Some("AuthorizationHeaderMalformed"));
    assert_eq!(
        malformed.meta().message(),
        Some("The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'")
    );
    proxy
        .set_config(FaultConfig::default().with_bucket_region("eu-bucket", "af-south-1"))
        .unwrap();
    let illegal = wrong.list_objects_v2().bucket("eu-bucket").send().await.unwrap_err();
    assert_eq!(illegal.code(), Some("IllegalLocationConstraintException"));
    let listed = right
        .list_objects_v2()
        .bucket("eu-bucket")
        .send()
        .await;
    assert_eq!(listed.unwrap_err().code(), Some("IllegalLocationConstraintException"));
    let served = sdk_client(&proxy.endpoint(), "af-south-1")
        .list_objects_v2()
        .bucket("eu-bucket")
        .send()
        .await
        .unwrap();
    assert_eq!(served.key_count(), Some(3));
}
