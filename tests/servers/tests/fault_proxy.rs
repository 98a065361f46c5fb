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
use nuaws_test_servers::{FaultConfig, FaultProxy};

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
    let proxy = FaultProxy::start(&upstream.endpoint(), FaultConfig::latency(Duration::from_millis(300))).unwrap();
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
    assert!(
        elapsed < Duration::from_millis(1500),
        "200 requests with 300 ms latency took {elapsed:?}"
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
