//! Inputs the benchmarks share: listing rows shaped like nuaws's own (EC2 instances, S3
//! objects), the cache key of an instance listing, and draining a bulk job. Fixed values only
//! (no clock, no randomness), so the performance gate's instruction counts repeat.
//!
//! Included with `#[path]` by the benches of `benches/`; each uses part of it. Not test support
//! for the suite.

#![allow(dead_code, reason = "each benchmark uses part of the fixtures")]

use std::time::Duration;

use aws_core::cache::{Identity, Request, cache_key};
use aws_core::engine::{BulkJob, BulkNext};
use aws_core::row::{Field, Row};
use chrono::{DateTime, Utc};

/// 2023-11-14T22:13:20Z: every fixture time is this plus some seconds.
pub const FIXED_UNIX: i64 = 1_700_000_000;

fn fixed_time(plus_seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(FIXED_UNIX + plus_seconds, 0).expect("a representable instant")
}

/// `n` rows shaped like `aws ec2 instances` rows.
pub fn instance_rows(n: usize) -> Vec<Row> {
    (0..n)
        .map(|i| {
            Row::new()
                .with("id", Field::Text(format!("i-{i:017x}")))
                .with("name", Field::Text(format!("web-{i:04}")))
                .with("state", Field::Text(if i % 10 == 0 { "stopped" } else { "running" }.into()))
                .with("type", Field::Text("t3.micro".into()))
                .with("launch_time", Field::Time(fixed_time(i as i64)))
                .with("private_ip", Field::Text(format!("10.0.{}.{}", i / 250, i % 250)))
                .with("public_ip", Field::Text(format!("54.1.{}.{}", i / 250, i % 250)))
                .with("vpc_id", Field::Text("vpc-0123456789abcdef0".into()))
                .with("subnet_id", Field::Text("subnet-0123456789abcdef0".into()))
                .with("security_groups", Field::List(vec![Field::Text("sg-0123456789abcdef0".into())]))
                .with("az", Field::Text("us-east-1a".into()))
                .with("image_id", Field::Text("ami-0123456789abcdef0".into()))
                .with("key_name", Field::Null)
                .with("platform", Field::Null)
                .with("architecture", Field::Text("x86_64".into()))
                .with(
                    "tags",
                    Field::Record(vec![
                        ("Name".into(), Field::Text(format!("web-{i:04}"))),
                        ("Team".into(), Field::Text(format!("team-{}", i % 5))),
                    ]),
                )
        })
        .collect()
}

/// `n` rows shaped like `aws s3 ls --recursive` rows of one bucket (keys as the synthetic S3
/// of `tests/servers` names them).
pub fn object_rows(n: usize) -> Vec<Row> {
    (0..n)
        .map(|i| {
            Row::new()
                .with("name", Field::Text(format!("s3://bench-bucket/obj/{i:09}")))
                .with("type", Field::Text("file".into()))
                .with("size", Field::Bytes(100 + (i as u64) % 900))
                .with("modified", Field::Time(fixed_time(i as i64)))
                .with("etag", Field::Text(format!("{:032x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15))))
                .with("storage_class", Field::Text("STANDARD".into()))
        })
        .collect()
}

/// The identity the fixtures' keys are made for.
pub fn bench_identity() -> Identity {
    Identity::new("123456789012", "arn:aws:iam::123456789012:user/bench")
}

/// The cache key of a plain `aws ec2 instances` in us-east-1.
pub fn instances_key() -> String {
    cache_key(
        &bench_identity(),
        &Request {
            region: "us-east-1",
            endpoint: None,
            service: "ec2",
            operation: "DescribeInstances",
            scope: String::new(),
            params: vec![("ids", String::new()), ("owners", String::new()), ("all", "false".into())],
        },
    )
}

/// Takes every answer of `job`, returning how many came.
pub fn drain<T>(mut job: BulkJob<u64, T>) -> u64 {
    let mut n = 0;
    loop {
        match job.next_timeout(Duration::from_secs(10)) {
            BulkNext::Outcome(_) => n += 1,
            BulkNext::End => return n,
            BulkNext::Pending => {}
        }
    }
}
