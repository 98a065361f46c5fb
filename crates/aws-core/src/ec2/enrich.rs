//! The resources instances refer to — security groups, VPCs, subnets, images — fetched once per
//! distinct id, in batched Describe calls, for `aws ec2 enrich`. Each batch asks by filter
//! (`group-id`, `vpc-id`, ...) rather than by id list: an id list fails the whole call when one
//! id no longer exists (`InvalidGroup.NotFound`), a filter returns what exists, so a deleted
//! group is simply absent from the answer. The rows are those of the listings (`aws ec2
//! security-groups`, ...), so an enriched instance's records look like the listings' rows.
//!
//! Not here: reading ids out of instance rows or putting records back into them (the shell's
//! side), nor caching (each batch asks for an arbitrary set of ids, which no listing shares).

use std::collections::{BTreeSet, HashMap};

use aws_sdk_ec2::Client;
use tokio::task::JoinSet;

use super::filters::Filter;
use super::network::{security_group_row, subnet_row, vpc_row};
use super::storage::image_row;
use crate::error::{AwsError, ErrorKind};
use crate::fanout::RequestLimit;
use crate::row::{Field, Row};
use crate::runtime::runtime;
use crate::session::Session;

/// Values per filter the EC2 API accepts in one call.
pub const MAX_FILTER_VALUES: usize = 200;

/// The distinct ids to look up, by resource type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelatedIds {
    pub security_groups: BTreeSet<String>,
    pub vpcs: BTreeSet<String>,
    pub subnets: BTreeSet<String>,
    pub images: BTreeSet<String>,
}

impl RelatedIds {
    pub fn is_empty(&self) -> bool {
        self.security_groups.is_empty()
            && self.vpcs.is_empty()
            && self.subnets.is_empty()
            && self.images.is_empty()
    }
}

/// The rows found, by id; an id missing here does not exist (or is not visible).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Related {
    pub security_groups: HashMap<String, Row>,
    pub vpcs: HashMap<String, Row>,
    pub subnets: HashMap<String, Row>,
    pub images: HashMap<String, Row>,
}

impl Related {
    fn rows_of(&mut self, kind: Kind) -> &mut HashMap<String, Row> {
        match kind {
            Kind::SecurityGroups => &mut self.security_groups,
            Kind::Vpcs => &mut self.vpcs,
            Kind::Subnets => &mut self.subnets,
            Kind::Images => &mut self.images,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    SecurityGroups,
    Vpcs,
    Subnets,
    Images,
}

impl Kind {
    /// The filter that selects resources of this kind by id.
    fn id_filter(self) -> &'static str {
        match self {
            Kind::SecurityGroups => "group-id",
            Kind::Vpcs => "vpc-id",
            Kind::Subnets => "subnet-id",
            Kind::Images => "image-id",
        }
    }

    fn operation(self) -> &'static str {
        match self {
            Kind::SecurityGroups => "EC2 DescribeSecurityGroups",
            Kind::Vpcs => "EC2 DescribeVpcs",
            Kind::Subnets => "EC2 DescribeSubnets",
            Kind::Images => "EC2 DescribeImages",
        }
    }
}

/// The calls to make: for each kind with ids, its ids in batches of [`MAX_FILTER_VALUES`].
fn batches(ids: &RelatedIds) -> Vec<(Kind, Vec<String>)> {
    let kinds = [
        (Kind::SecurityGroups, &ids.security_groups),
        (Kind::Vpcs, &ids.vpcs),
        (Kind::Subnets, &ids.subnets),
        (Kind::Images, &ids.images),
    ];
    let mut out = Vec::new();
    for (kind, set) in kinds {
        let all: Vec<String> = set.iter().cloned().collect();
        out.extend(all.chunks(MAX_FILTER_VALUES).map(|chunk| (kind, chunk.to_vec())));
    }
    out
}

/// Fetches every id of `ids` in the session's region: one call per kind and batch of 200 ids,
/// all at once within `limit`. Fails on the first call that fails (the others are abandoned).
pub async fn describe_related(
    session: &Session,
    ids: &RelatedIds,
    limit: &RequestLimit,
) -> Result<Related, AwsError> {
    let mut related = Related::default();
    if ids.is_empty() {
        return Ok(related);
    }
    let client = session.ec2()?.clone();
    let mut calls = JoinSet::new();
    for (kind, batch) in batches(ids) {
        let (client, limit) = (client.clone(), limit.clone());
        calls.spawn_on(
            async move { (kind, limit.run(describe(&client, kind, batch)).await) },
            runtime().handle(),
        );
    }
    while let Some(joined) = calls.join_next().await {
        let (kind, rows) = joined.map_err(|err| {
            AwsError::new(ErrorKind::Service, "EC2 Describe", format!("a lookup task failed: {err}"))
        })?;
        let found = related.rows_of(kind);
        for row in rows? {
            if let Some(id) = row.get("id").and_then(Field::as_str) {
                found.insert(id.to_string(), row);
            }
        }
    }
    Ok(related)
}

/// One batch: every page of the Describe call of `kind` filtered to `ids`.
async fn describe(client: &Client, kind: Kind, ids: Vec<String>) -> Result<Vec<Row>, AwsError> {
    let filter = Filter {
        name: kind.id_filter().to_string(),
        values: ids,
    }
    .to_sdk();
    let mut rows = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let next = match kind {
            Kind::SecurityGroups => {
                let out = client
                    .describe_security_groups()
                    .filters(filter.clone())
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(kind.operation(), e))?;
                rows.extend(out.security_groups().iter().map(security_group_row));
                out.next_token
            }
            Kind::Vpcs => {
                let out = client
                    .describe_vpcs()
                    .filters(filter.clone())
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(kind.operation(), e))?;
                rows.extend(out.vpcs().iter().map(vpc_row));
                out.next_token
            }
            Kind::Subnets => {
                let out = client
                    .describe_subnets()
                    .filters(filter.clone())
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(kind.operation(), e))?;
                rows.extend(out.subnets().iter().map(subnet_row));
                out.next_token
            }
            Kind::Images => {
                // Without an owner, any image the account may launch; deprecated ones included,
                // since running instances still refer to them.
                let out = client
                    .describe_images()
                    .filters(filter.clone())
                    .include_deprecated(true)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(kind.operation(), e))?;
                rows.extend(out.images().iter().map(image_row));
                out.next_token
            }
        };
        match next {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(rows),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(prefix: &str, n: usize) -> BTreeSet<String> {
        (0..n).map(|i| format!("{prefix}-{i:05}")).collect()
    }

    #[test]
    fn one_call_per_kind_and_two_hundred_ids() {
        let wanted = RelatedIds {
            security_groups: ids("sg", 450),
            vpcs: ids("vpc", 2),
            subnets: BTreeSet::new(),
            images: ids("ami", 200),
        };
        let plan: Vec<(Kind, usize)> = batches(&wanted).iter().map(|(k, b)| (*k, b.len())).collect();
        assert_eq!(
            plan,
            [
                (Kind::SecurityGroups, 200),
                (Kind::SecurityGroups, 200),
                (Kind::SecurityGroups, 50),
                (Kind::Vpcs, 2),
                (Kind::Images, 200),
            ]
        );
        // Every id is asked for exactly once.
        let asked: BTreeSet<String> = batches(&wanted).into_iter().flat_map(|(_, b)| b).collect();
        assert_eq!(asked.len(), 450 + 2 + 200);
    }

    #[test]
    fn nothing_to_look_up_makes_no_call() {
        assert!(batches(&RelatedIds::default()).is_empty());
        assert!(RelatedIds::default().is_empty());
    }
}
