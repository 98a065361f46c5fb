//! `SyntheticS3` over plain HTTP (pages, tokens, start-after, prefixes, delimiters, objects) and
//! through the real AWS SDK for Rust, alone and behind a `FaultProxy` that makes the SDK retry.

mod common;

use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use common::{HttpClient, get, http_client, send, xml_values};
use http_body_util::Full;
use hyper::{Request, StatusCode};
use nuaws_test_servers::{FaultConfig, FaultProxy, SyntheticS3, object_body, object_etag, object_key, object_size};

async fn list(client: &HttpClient, server: &SyntheticS3, query: &str) -> String {
    let answer = get(client, &format!("{}/bench?list-type=2{query}", server.endpoint()))
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_cover_every_key_once_in_order() {
    let server = SyntheticS3::start("bench", 2500).unwrap();
    let client = http_client();
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    let mut key_counts = Vec::new();
    loop {
        let query = token
            .as_ref()
            .map_or(String::new(), |t| format!("&continuation-token={t}"));
        let page = list(&client, &server, &query).await;
        let page_keys = xml_values(&page, "Key");
        key_counts.push(xml_values(&page, "KeyCount")[0].parse::<usize>().unwrap());
        assert_eq!(xml_values(&page, "MaxKeys"), ["1000"]);
        assert_eq!(xml_values(&page, "Name"), ["bench"]);
        let sizes = xml_values(&page, "Size");
        let etags = xml_values(&page, "ETag");
        for offset in 0..page_keys.len() {
            let index = (keys.len() + offset) as u64;
            assert_eq!(sizes[offset], object_size(index).to_string());
            assert_eq!(etags[offset], format!("&quot;{}&quot;", object_etag(index)));
        }
        keys.extend(page_keys);
        match xml_values(&page, "IsTruncated")[0].as_str() {
            "true" => token = Some(xml_values(&page, "NextContinuationToken")[0].clone()),
            _ => {
                assert!(xml_values(&page, "NextContinuationToken").is_empty());
                break;
            }
        }
    }
    assert_eq!(key_counts, [1000, 1000, 500]);
    assert_eq!(keys.len(), 2500);
    assert_eq!(
        (keys[0].as_str(), keys[2499].as_str()),
        ("obj/000000000", "obj/000002499")
    );
    let expected: Vec<String> = (0..2500).map(object_key).collect();
    assert_eq!(keys, expected, "no gaps, no duplicates, in order");
    assert_eq!(server.requests(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_after_prefix_delimiter_and_max_keys() {
    let server = SyntheticS3::start("bench", 2500).unwrap();
    let client = http_client();

    let after = list(&client, &server, "&start-after=obj%2F000002400").await;
    let keys = xml_values(&after, "Key");
    assert_eq!((keys.len(), keys[0].as_str()), (99, "obj/000002401"));
    assert_eq!(xml_values(&after, "StartAfter"), ["obj/000002400"]);
    assert_eq!(
        xml_values(&list(&client, &server, "&start-after=zzz").await, "KeyCount"),
        ["0"]
    );
    assert_eq!(
        xml_values(&list(&client, &server, "&start-after=a").await, "KeyCount"),
        ["1000"]
    );

    let small = list(&client, &server, "&max-keys=7&start-after=obj/000000010").await;
    assert_eq!(xml_values(&small, "Key").last().unwrap(), "obj/000000017");
    assert_eq!(xml_values(&small, "NextContinuationToken"), ["18"]);
    assert_eq!(
        xml_values(&list(&client, &server, "&max-keys=5000").await, "KeyCount"),
        ["1000"]
    );

    let prefixed = list(&client, &server, "&prefix=obj/00000249").await;
    assert_eq!(
        xml_values(&prefixed, "Key"),
        (2490..2500).map(object_key).collect::<Vec<_>>()
    );
    assert_eq!(xml_values(&prefixed, "IsTruncated"), ["false"]);
    assert_eq!(
        xml_values(&list(&client, &server, "&prefix=other/").await, "KeyCount"),
        ["0"]
    );

    let top = list(&client, &server, "&delimiter=%2F").await;
    assert!(
        top.contains("<CommonPrefixes><Prefix>obj/</Prefix></CommonPrefixes>"),
        "{top}"
    );
    assert!(xml_values(&top, "Key").is_empty());
    assert_eq!(xml_values(&top, "KeyCount"), ["1"]);
    assert_eq!(xml_values(&top, "Delimiter"), ["/"]);
    let below = list(&client, &server, "&delimiter=/&prefix=obj/&max-keys=2").await;
    assert_eq!(xml_values(&below, "Key"), ["obj/000000000", "obj/000000001"]);

    // Any delimiter rolls keys up as S3 does: under obj/0000024, keys with a 9 after the prefix
    // group at their first 9.
    let nines = list(&client, &server, "&prefix=obj/0000024&delimiter=9").await;
    let common: Vec<String> = xml_values(&nines, "CommonPrefixes")
        .iter()
        .map(|c| c.replace("<Prefix>", "").replace("</Prefix>", ""))
        .collect();
    let mut expected_common: Vec<String> = (0..9).map(|tens| format!("obj/0000024{tens}9")).collect();
    expected_common.push("obj/00000249".to_owned());
    assert_eq!(common, expected_common);
    assert_eq!(xml_values(&nines, "Key").len(), 81);
    assert_eq!(xml_values(&nines, "KeyCount"), ["91"]);

    let encoded = list(&client, &server, "&encoding-type=url&prefix=obj/0000000&max-keys=1").await;
    assert_eq!(xml_values(&encoded, "EncodingType"), ["url"]);
    assert_eq!(xml_values(&encoded, "Key"), ["obj/000000000"]);

    for bad in [
        "&continuation-token=nope",
        "&max-keys=many",
        "&encoding-type=base64",
        "&continuation-token=2501",
    ] {
        let answer = get(&client, &format!("{}/bench?list-type=2{bad}", server.endpoint()))
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(answer.body.contains("<Code>InvalidArgument</Code>"), "{}", answer.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_buckets_and_errors() {
    let server = SyntheticS3::start("bench", 2500).unwrap();
    let client = http_client();
    let request = |method: &str, path: &str| {
        Request::builder()
            .method(method)
            .uri(format!("{}{path}", server.endpoint()))
            .body(Full::default())
            .unwrap()
    };

    let head = send(&client, request("HEAD", "/bench/obj/000000042")).await.unwrap();
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.headers["content-length"], object_size(42).to_string());
    assert_eq!(head.headers["etag"], format!("\"{}\"", object_etag(42)));
    assert_eq!(head.headers["last-modified"], "Mon, 01 Jan 2024 00:00:42 GMT");
    assert_eq!(head.headers["content-type"], "application/octet-stream");
    assert!(head.body.is_empty());

    let object = send(&client, request("GET", "/bench/obj%2F000000042")).await.unwrap();
    assert_eq!(object.body.as_bytes(), object_body(42));
    let mut ranged = request("GET", "/bench/obj/000000042");
    ranged.headers_mut().insert("range", "bytes=10-19".parse().unwrap());
    let ranged = send(&client, ranged).await.unwrap();
    assert_eq!(ranged.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.body.as_bytes(), &object_body(42)[10..20]);
    assert_eq!(
        ranged.headers["content-range"],
        format!("bytes 10-19/{}", object_size(42))
    );

    let missing_head = send(&client, request("HEAD", "/bench/obj/000002500")).await.unwrap();
    assert_eq!(
        (missing_head.status, missing_head.body.as_str()),
        (StatusCode::NOT_FOUND, "")
    );
    let missing = send(&client, request("GET", "/bench/not-a-key")).await.unwrap();
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.body.contains("<Error><Code>NoSuchKey</Code>"),
        "{}",
        missing.body
    );
    assert!(missing.body.contains("<Key>not-a-key</Key>"));
    let other_bucket = send(&client, request("GET", "/other?list-type=2")).await.unwrap();
    assert!(other_bucket.body.contains("<Code>NoSuchBucket</Code>"));
    let put = send(&client, request("PUT", "/bench/obj/000000001")).await.unwrap();
    assert_eq!(put.status, StatusCode::NOT_IMPLEMENTED);

    let buckets = send(&client, request("GET", "/")).await.unwrap();
    assert_eq!(xml_values(&buckets.body, "Name"), ["bench"]);
    assert_eq!(
        send(&client, request("HEAD", "/bench")).await.unwrap().status,
        StatusCode::OK
    );
    assert!(SyntheticS3::start("bench", 1_000_000_001).is_err());
}

fn sdk_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new("AKIDTESTING", "secret", None, None, "test"))
        // Faults in these tests are injected on purpose: retry quickly and often.
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(10)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn sdk_list_all(client: &aws_sdk_s3::Client, page_size: Option<i32>) -> Vec<aws_sdk_s3::types::Object> {
    let mut pages = client
        .list_objects_v2()
        .bucket("bench")
        .set_max_keys(page_size)
        .into_paginator()
        .send();
    let mut objects = Vec::new();
    while let Some(page) = pages.next().await {
        objects.extend(page.unwrap().contents.unwrap_or_default());
    }
    objects
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_sdk_lists_heads_and_gets_the_generated_objects() {
    let server = SyntheticS3::start("bench", 2500).unwrap();
    // Through a fault-free proxy, to see what the SDK sends.
    let proxy = FaultProxy::start(&server.endpoint(), FaultConfig::default()).unwrap();
    let client = sdk_client(&proxy.endpoint());

    let objects = sdk_list_all(&client, None).await;
    assert_eq!(objects.len(), 2500);
    for (index, object) in objects.iter().enumerate() {
        let index = index as u64;
        assert_eq!(object.key.as_deref(), Some(object_key(index).as_str()));
        assert_eq!(object.size, Some(object_size(index) as i64));
        assert_eq!(
            object.e_tag.as_deref(),
            Some(format!("\"{}\"", object_etag(index)).as_str())
        );
        assert_eq!(
            object.last_modified.map(|t| t.secs()),
            Some(1_704_067_200 + index as i64)
        );
        assert_eq!(object.storage_class.as_ref().map(|c| c.as_str()), Some("STANDARD"));
    }
    let sent: Vec<String> = proxy.log().into_iter().map(|r| r.path_and_query).collect();
    assert_eq!(sent.len(), 3, "{sent:?}");
    // The Rust SDK asks for `/bench/?list-type=2`, without encoding-type=url.
    assert!(sent[0].starts_with("/bench/?list-type=2"), "{sent:?}");
    assert!(sent.iter().all(|s| !s.contains("encoding-type")), "{sent:?}");
    assert!(sent[1].contains("continuation-token=1000"), "{sent:?}");

    let delimited = client
        .list_objects_v2()
        .bucket("bench")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(delimited.common_prefixes()[0].prefix(), Some("obj/"));
    assert_eq!(delimited.key_count(), Some(1));

    let head = client
        .head_object()
        .bucket("bench")
        .key("obj/000000007")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(object_size(7) as i64));
    assert_eq!(head.e_tag(), Some(format!("\"{}\"", object_etag(7)).as_str()));
    let missing = client
        .head_object()
        .bucket("bench")
        .key("obj/000002500")
        .send()
        .await
        .unwrap_err();
    assert!(missing.into_service_error().is_not_found());
    let get = client
        .get_object()
        .bucket("bench")
        .key("obj/000000008")
        .send()
        .await
        .unwrap();
    assert_eq!(
        get.body.collect().await.unwrap().into_bytes().as_ref(),
        object_body(8).as_slice()
    );
    let no_such_key = client
        .get_object()
        .bucket("bench")
        .key("obj/x")
        .send()
        .await
        .unwrap_err();
    assert!(no_such_key.into_service_error().is_no_such_key());
    let buckets = client.list_buckets().send().await.unwrap();
    assert_eq!(buckets.buckets()[0].name(), Some("bench"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_sdk_retries_the_proxys_throttling_and_errors() {
    let server = SyntheticS3::start("bench", 2500).unwrap();
    let proxy = FaultProxy::start(
        &server.endpoint(),
        FaultConfig::error_rate(0.3)
            .with_throttle(200.0, 3)
            .with_latency(Duration::from_millis(2)),
    )
    .unwrap();
    let client = sdk_client(&proxy.endpoint());
    let objects = sdk_list_all(&client, Some(100)).await;
    let keys: Vec<String> = objects.into_iter().filter_map(|o| o.key).collect();
    assert_eq!(keys, (0..2500).map(object_key).collect::<Vec<_>>());
    let stats = proxy.stats();
    assert!(stats.injected_errors > 0, "{stats:?}");
    assert_eq!(stats.forwarded, 25, "each page reached the server once: {stats:?}");
    assert_eq!(stats.received, 25 + stats.injected_errors + stats.throttled);

    // A key that always fails comes back as the SDK's AccessDenied, without retries.
    proxy
        .set_config(FaultConfig::fail_matching("obj/000000013", 403))
        .unwrap();
    proxy.reset_stats();
    let denied = client
        .head_object()
        .bucket("bench")
        .key("obj/000000013")
        .send()
        .await
        .unwrap_err();
    assert_eq!(denied.raw_response().map(|r| r.status().as_u16()), Some(403));
    let denied_get = client
        .get_object()
        .bucket("bench")
        .key("obj/000000013")
        .send()
        .await
        .unwrap_err();
    assert_eq!(denied_get.into_service_error().meta().code(), Some("AccessDenied"));
    assert_eq!(proxy.stats().matched_failures, 2);
    assert!(
        client
            .head_object()
            .bucket("bench")
            .key("obj/000000014")
            .send()
            .await
            .is_ok()
    );
}
