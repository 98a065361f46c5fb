//! Resources correlated by one tag key: the instances, volumes, snapshots, security groups and
//! VPCs of some regions (one DescribeTags listing per region covers all five types) and the
//! buckets of the account (GetBucketTagging per bucket, concurrently) that carry the key, as one
//! table sorted by the key's value so that resources sharing a value are adjacent, or grouped
//! into one row per value.
//!
//! A region or a bucket that cannot be read is a failure of its own, reported beside the
//! resources the others gave. Not here: listing the buckets (the caller does, through its
//! cache) or anything about the shell's flags.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::ec2::tagged_resources;
use crate::error::{AwsError, ErrorKind};
use crate::fanout::{RequestLimit, in_region};
use crate::row::{Field, Row};
use crate::runtime::runtime;
use crate::s3::{BucketRouter, bucket_tags};
use crate::session::Session;

/// The EC2 resource types correlated, in the order a value's resources are shown.
pub const EC2_TYPES: &[&str] = &["instance", "volume", "snapshot", "security-group", "vpc"];

/// The type of a bucket's row.
pub const BUCKET: &str = "bucket";

/// GetBucketTagging requests in flight at once (one per bucket).
pub const BUCKET_CONCURRENCY: usize = 16;

/// What to look for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagQuery {
    pub key: String,
    /// Only resources whose value is exactly this.
    pub value: Option<String>,
}

/// A bucket of the account, with its region when ListBuckets reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub name: String,
    pub region: Option<String>,
}

/// The buckets to look at, and the session to ask with.
pub struct BucketScope {
    pub session: Arc<Session>,
    pub buckets: Vec<Bucket>,
    /// Only the buckets of these regions; all when `None`.
    pub regions: Option<Vec<String>>,
}

/// One resource carrying the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tagged {
    pub value: String,
    /// One of [`EC2_TYPES`], or [`BUCKET`].
    pub resource_type: String,
    /// The resource id, or the bucket name.
    pub id: String,
    /// The `Name` tag.
    pub name: Option<String>,
    pub region: Option<String>,
}

/// What a correlation found, sorted, and what could not be read.
#[derive(Debug, Default)]
pub struct Correlation {
    pub resources: Vec<Tagged>,
    pub failures: Vec<AwsError>,
}

/// Looks in every region of `regions` (region name, session of that region) and every bucket of
/// `buckets`, all at once.
pub async fn correlate(
    query: &TagQuery,
    regions: Vec<(String, Arc<Session>)>,
    buckets: Option<BucketScope>,
) -> Correlation {
    let mut lookups: JoinSet<Result<Vec<Tagged>, AwsError>> = JoinSet::new();
    let ec2_limit = RequestLimit::default();
    for (region, session) in regions {
        let (query, limit) = (query.clone(), ec2_limit.clone());
        lookups.spawn_on(
            async move {
                let found = tagged_resources(&session, &query.key, query.value.as_deref(), EC2_TYPES, &limit)
                    .await
                    .map_err(|err| in_region(err, &region))?;
                Ok(found
                    .into_iter()
                    .map(|r| Tagged {
                        value: r.value,
                        resource_type: r.resource_type,
                        id: r.id,
                        name: r.name,
                        region: Some(region.clone()),
                    })
                    .collect())
            },
            runtime().handle(),
        );
    }
    if let Some(scope) = buckets {
        let limit = RequestLimit::new(BUCKET_CONCURRENCY);
        let router = BucketRouter::new(&scope.session);
        let scope = Arc::new(scope);
        for bucket in scope.buckets.clone() {
            let (query, limit, router, scope) = (query.clone(), limit.clone(), router.clone(), scope.clone());
            lookups.spawn_on(
                async move { limit.run(tagged_bucket(&query, &scope, &router, bucket)).await },
                runtime().handle(),
            );
        }
    }
    let mut correlation = Correlation::default();
    while let Some(joined) = lookups.join_next().await {
        match joined {
            Ok(Ok(found)) => correlation.resources.extend(found),
            Ok(Err(err)) => correlation.failures.push(err),
            Err(err) => correlation.failures.push(AwsError::new(
                ErrorKind::Service,
                "tag lookup",
                format!("a lookup task failed: {err}"),
            )),
        }
    }
    sort(&mut correlation.resources);
    correlation
}

/// The bucket as a resource if it carries the key (and lives in a region of the scope).
async fn tagged_bucket(
    query: &TagQuery,
    scope: &BucketScope,
    router: &BucketRouter,
    bucket: Bucket,
) -> Result<Vec<Tagged>, AwsError> {
    let named = |mut err: AwsError| {
        err.message = format!("bucket `{}`: {}", bucket.name, err.message);
        err
    };
    // The same map of bucket regions as every other S3 request of the process.
    let region = match &bucket.region {
        Some(region) => {
            router.learn_listed(&bucket.name, region);
            region.clone()
        }
        None => router.region_of(&bucket.name).await.map_err(named)?,
    };
    if scope.regions.as_ref().is_some_and(|wanted| !wanted.contains(&region)) {
        return Ok(Vec::new());
    }
    let tags = bucket_tags(router, &bucket.name).await.map_err(named)?;
    let tag = |key: &str| tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let Some(value) = tag(&query.key) else {
        return Ok(Vec::new());
    };
    if query.value.as_ref().is_some_and(|wanted| *wanted != value) {
        return Ok(Vec::new());
    }
    Ok(vec![Tagged {
        value,
        resource_type: BUCKET.to_string(),
        id: bucket.name.clone(),
        name: tag("Name"),
        region: Some(region),
    }])
}

/// Where a type comes among a value's resources.
fn type_rank(resource_type: &str) -> usize {
    EC2_TYPES
        .iter()
        .chain(&[BUCKET])
        .position(|t| *t == resource_type)
        .unwrap_or(usize::MAX)
}

/// By value, then type (instances first, buckets last), region and id.
pub fn sort(resources: &mut [Tagged]) {
    resources.sort_by(|a, b| {
        (&a.value, type_rank(&a.resource_type), &a.region, &a.id)
            .cmp(&(&b.value, type_rank(&b.resource_type), &b.region, &b.id))
    });
}

/// One row per resource: `value`, `type`, `id`, `name`, `region`.
pub fn rows(resources: &[Tagged]) -> Vec<Row> {
    resources
        .iter()
        .map(|r| {
            Row::new()
                .with("value", Field::Text(r.value.clone()))
                .with("type", Field::Text(r.resource_type.clone()))
                .with("id", Field::Text(r.id.clone()))
                .with("name", Field::text(r.name.as_deref()))
                .with("region", Field::text(r.region.as_deref()))
        })
        .collect()
}

/// The columns of a grouped row holding each type's resources.
const GROUP_COLUMNS: &[(&str, &str)] = &[
    ("instance", "instances"),
    ("volume", "volumes"),
    ("snapshot", "snapshots"),
    ("security-group", "security_groups"),
    ("vpc", "vpcs"),
    (BUCKET, "buckets"),
];

/// One row per value: `value`, `count`, then a list of `{id, name, region}` per type (empty when
/// the value has none of that type), in value order.
pub fn grouped_rows(resources: &[Tagged]) -> Vec<Row> {
    let mut by_value: BTreeMap<&str, Vec<&Tagged>> = BTreeMap::new();
    for r in resources {
        by_value.entry(&r.value).or_default().push(r);
    }
    by_value
        .into_iter()
        .map(|(value, members)| {
            let mut row = Row::new()
                .with("value", Field::Text(value.to_string()))
                .with("count", Field::Int(i64::try_from(members.len()).unwrap_or(i64::MAX)));
            for (resource_type, column) in GROUP_COLUMNS {
                let of_type = members
                    .iter()
                    .filter(|r| r.resource_type == *resource_type)
                    .map(|r| {
                        Field::Record(vec![
                            ("id".into(), Field::Text(r.id.clone())),
                            ("name".into(), Field::text(r.name.as_deref())),
                            ("region".into(), Field::text(r.region.as_deref())),
                        ])
                    })
                    .collect();
                row = row.with(column, Field::List(of_type));
            }
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(value: &str, resource_type: &str, id: &str, region: &str) -> Tagged {
        Tagged {
            value: value.into(),
            resource_type: resource_type.into(),
            id: id.into(),
            name: None,
            region: Some(region.into()),
        }
    }

    #[test]
    fn resources_sharing_a_value_are_adjacent_in_type_order() {
        let mut found = vec![
            tagged("web", BUCKET, "web-assets", "us-east-1"),
            tagged("billing", "vpc", "vpc-2", "us-east-1"),
            tagged("web", "vpc", "vpc-1", "us-east-1"),
            tagged("web", "instance", "i-2", "us-east-1"),
            tagged("billing", "instance", "i-3", "us-east-1"),
            tagged("web", "instance", "i-1", "eu-west-1"),
            tagged("web", "security-group", "sg-1", "us-east-1"),
        ];
        sort(&mut found);
        let order: Vec<(&str, &str)> = found.iter().map(|t| (t.value.as_str(), t.id.as_str())).collect();
        assert_eq!(
            order,
            [
                ("billing", "i-3"),
                ("billing", "vpc-2"),
                ("web", "i-1"),
                ("web", "i-2"),
                ("web", "sg-1"),
                ("web", "vpc-1"),
                ("web", "web-assets"),
            ]
        );
        let row = &rows(&found)[0];
        let columns: Vec<&str> = row.columns.iter().map(|(c, _)| *c).collect();
        assert_eq!(columns, ["value", "type", "id", "name", "region"]);
    }

    #[test]
    fn grouping_gives_one_row_per_value_with_every_type_column() {
        let mut found = vec![
            tagged("web", "instance", "i-1", "us-east-1"),
            tagged("web", "instance", "i-2", "us-east-1"),
            tagged("web", BUCKET, "assets", "eu-west-1"),
            tagged("billing", "volume", "vol-1", "us-east-1"),
        ];
        sort(&mut found);
        let grouped = grouped_rows(&found);
        assert_eq!(grouped.len(), 2);
        let web = &grouped[1];
        assert_eq!(web.get("value"), Some(&Field::Text("web".into())));
        assert_eq!(web.get("count"), Some(&Field::Int(3)));
        let ids = |column: &str| match web.get(column) {
            Some(Field::List(items)) => items
                .iter()
                .filter_map(|item| match item {
                    Field::Record(fields) => fields.iter().find(|(k, _)| k == "id").and_then(|(_, v)| v.as_str().map(str::to_string)),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            other => panic!("{column}: {other:?}"),
        };
        assert_eq!(ids("instances"), ["i-1", "i-2"]);
        assert_eq!(ids("buckets"), ["assets"]);
        assert!(ids("volumes").is_empty());
        let columns: Vec<&str> = web.columns.iter().map(|(c, _)| *c).collect();
        assert_eq!(
            columns,
            ["value", "count", "instances", "volumes", "snapshots", "security_groups", "vpcs", "buckets"]
        );
    }
}
