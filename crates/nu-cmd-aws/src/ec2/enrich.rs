//! `aws ec2 enrich`: instance rows with the security groups, VPC, subnet and image they refer
//! to as full records, each distinct id fetched once in batched Describe calls per region.
//!
//! It buffers its input: no lookup can start before every id is known, and asking per instance
//! would cost a request per instance and resource type. Not a listing of its own: its input is
//! the rows of `aws ec2 instances` (or any records with the same id columns).

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_core::AwsError;
use aws_core::ec2::{Related, RelatedIds, describe_related};
use aws_core::error::ErrorKind;
use aws_core::fanout::{RequestLimit, in_region};
use aws_core::row::Row;
use aws_core::runtime::{block_on, runtime};
use aws_core::session::Session;
use nu_engine::command_prelude::*;
use tokio::task::JoinSet;

use crate::context::{AwsContext, CallSession, session_flags};
use crate::errors::to_shell_error;
use crate::values::row_to_value;

/// The id columns of an instance row, and the column each one's record goes in (right after
/// it). `security_groups` holds a list of ids and becomes a list of records in place.
const SINGLE_REFERENCES: &[(&str, &str)] = &[("vpc_id", "vpc"), ("subnet_id", "subnet"), ("image_id", "image")];
const GROUPS: &str = "security_groups";

#[derive(Clone)]
pub struct Ec2Enrich {
    pub ctx: Arc<AwsContext>,
}

impl Command for Ec2Enrich {
    fn name(&self) -> &str {
        "aws ec2 enrich"
    }

    fn signature(&self) -> Signature {
        session_flags(Signature::build(self.name()))
            .input_output_types(vec![
                (Type::table(), Type::table()),
                (Type::List(Box::new(Type::Any)), Type::table()),
                (Type::record(), Type::record()),
            ])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Add to instance rows the full records of their security groups, VPC, subnet and image."
    }

    fn extra_description(&self) -> &str {
        "Takes the rows of `aws ec2 instances`. `security_groups` becomes a list of records shaped like the rows of `aws ec2 security-groups`; `vpc`, `subnet` and `image` records are added after `vpc_id`, `subnet_id` and `image_id`. Each distinct id is fetched once: one Describe call per resource type and 200 ids, the four types at once. A resource that no longer exists gives null. Rows with a `region` column (from --regions) are looked up in their region. The input is read whole before the lookups start."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["join", "details", "security groups", "vpc", "subnet", "ami"]
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                description: "Instances with their security group, VPC, subnet and image records.",
                example: "aws ec2 instances | aws ec2 enrich",
                result: None,
            },
            Example {
                description: "Which security groups each running instance is in, by name.",
                example: "aws ec2 instances --filter {instance-state-name: running} | aws ec2 enrich | select id name security_groups.name",
                result: None,
            },
            Example {
                description: "Instances whose image was deregistered.",
                example: "aws ec2 instances | aws ec2 enrich | where image == null | select id image_id",
                result: None,
            },
            Example {
                description: "Instances of two regions, each looked up in its own.",
                example: "aws ec2 instances --regions [us-east-1 eu-west-1] | aws ec2 enrich | select id region vpc.cidr",
                result: None,
            },
        ]
    }

    crate::complete::completion_hook!(_cmd => None);

    fn run(
        &self,
        engine_state: &EngineState,
        stack: &mut Stack,
        call: &Call,
        input: PipelineData,
    ) -> Result<PipelineData, ShellError> {
        let head = call.head;
        let single = matches!(&input, PipelineData::Value(Value::Record { .. }, ..));
        let cs = CallSession::resolve(&self.ctx, engine_state, stack, call)?;
        let rows: Vec<Value> = input.into_iter().collect();
        let own_region = cs.session.region().map(str::to_string);

        // The ids each region needs, and which region each row is in.
        let mut wanted: BTreeMap<String, RelatedIds> = BTreeMap::new();
        let mut row_regions: Vec<Option<String>> = Vec::with_capacity(rows.len());
        for row in &rows {
            let record = match row {
                Value::Record { val, .. } => val,
                // A region that failed upstream stays an error row.
                Value::Error { .. } => {
                    row_regions.push(None);
                    continue;
                }
                other => {
                    return Err(ShellError::OnlySupportsThisInputType {
                        exp_input_type: "record (a row of `aws ec2 instances`)".into(),
                        wrong_type: other.get_type().to_string(),
                        dst_span: head,
                        src_span: other.span(),
                    });
                }
            };
            let region = match record.get("region").and_then(|r| r.as_str().ok()) {
                Some(region) => region.to_string(),
                None => own_region.clone().ok_or_else(|| {
                    to_shell_error(
                        AwsError::new(ErrorKind::NoRegion, "EC2", "no AWS region is configured"),
                        &cs.spans,
                    )
                })?,
            };
            collect_ids(record, wanted.entry(region.clone()).or_default());
            row_regions.push(Some(region));
        }

        let found = lookup(&cs, wanted)?;
        let mut out = Vec::with_capacity(rows.len());
        for (row, region) in rows.into_iter().zip(row_regions) {
            let enriched = match (row, region) {
                (Value::Record { val, .. }, Some(region)) => match found.get(&region) {
                    Some(Ok(related)) => Value::record(enrich(&val, related, head), head),
                    Some(Err(error)) => Value::error(error.clone(), head),
                    None => Value::record(enrich(&val, &Related::default(), head), head),
                },
                (other, _) => other,
            };
            out.push(enriched);
        }
        if single && let Some(record) = out.pop() {
            return Ok(record.into_pipeline_data());
        }
        Ok(Value::list(out, head).into_pipeline_data())
    }
}

/// The ids one instance row refers to, added to `ids`.
fn collect_ids(record: &Record, ids: &mut RelatedIds) {
    for id in group_ids(record.get(GROUPS)) {
        ids.security_groups.insert(id);
    }
    let text = |column: &str| record.get(column).and_then(|v| v.as_str().ok()).filter(|s| !s.is_empty());
    if let Some(id) = text("vpc_id") {
        ids.vpcs.insert(id.to_string());
    }
    if let Some(id) = text("subnet_id") {
        ids.subnets.insert(id.to_string());
    }
    if let Some(id) = text("image_id") {
        ids.images.insert(id.to_string());
    }
}

/// The group ids of a `security_groups` cell: ids, or records with an `id` (rows enriched
/// before); `None` stands for an entry that is neither.
fn group_entries(cell: Option<&Value>) -> Vec<Option<String>> {
    let Some(Value::List { vals, .. }) = cell else {
        return Vec::new();
    };
    vals.iter()
        .map(|v| match v {
            Value::String { val, .. } => Some(val.clone()),
            Value::Record { val, .. } => val.get("id").and_then(|id| id.as_str().ok()).map(str::to_string),
            _ => None,
        })
        .collect()
}

fn group_ids(cell: Option<&Value>) -> impl Iterator<Item = String> {
    group_entries(cell).into_iter().flatten()
}

/// Every region's lookups at once (one bound on requests in flight for all), each region's
/// result apart: a region that fails fails only its own rows.
fn lookup(
    cs: &CallSession,
    wanted: BTreeMap<String, RelatedIds>,
) -> Result<BTreeMap<String, Result<Related, ShellError>>, ShellError> {
    let mut results = BTreeMap::new();
    let mut sessions: Vec<(String, Arc<Session>, RelatedIds)> = Vec::new();
    for (region, ids) in wanted {
        let session = if cs.session.region() == Some(region.as_str()) {
            Ok(cs.session.clone())
        } else {
            cs.in_region(&region).map(|regional| regional.session)
        };
        match session {
            Ok(session) => sessions.push((region, session, ids)),
            Err(err) => {
                results.insert(region.clone(), Err(to_shell_error(in_region(err, &region), &cs.spans)));
            }
        }
    }
    let limit = RequestLimit::default();
    let interrupt = cs.interrupt();
    let fetched = block_on(&interrupt, async move {
        let mut lookups = JoinSet::new();
        for (region, session, ids) in sessions {
            let limit = limit.clone();
            lookups.spawn_on(
                async move {
                    let related = describe_related(&session, &ids, &limit).await;
                    (region, related)
                },
                runtime().handle(),
            );
        }
        let mut fetched = Vec::new();
        while let Some(joined) = lookups.join_next().await {
            fetched.push(joined);
        }
        fetched
    })
    .map_err(|_| ShellError::Interrupted { span: cs.spans.head })?;
    for joined in fetched {
        let (region, related) = joined.map_err(|err| {
            to_shell_error(
                AwsError::new(ErrorKind::Service, "EC2 Describe", format!("a lookup task failed: {err}")),
                &cs.spans,
            )
        })?;
        let related = related.map_err(|err| to_shell_error(in_region(err, &region), &cs.spans));
        results.insert(region, related);
    }
    Ok(results)
}

/// The row with its references as records: `security_groups` in place, `vpc`, `subnet` and
/// `image` after their id columns (at the end when the row has no such id column). An id the
/// lookup did not find gives null.
fn enrich(record: &Record, related: &Related, span: Span) -> Record {
    let found = |rows: &std::collections::HashMap<String, Row>, id: Option<&Value>| {
        id.and_then(|v| v.as_str().ok())
            .and_then(|id| rows.get(id))
            .map_or(Value::nothing(span), |row| row_to_value(row.clone(), span))
    };
    let lookup_of = |column: &str| match column {
        "vpc" => &related.vpcs,
        "subnet" => &related.subnets,
        _ => &related.images,
    };
    let added: Vec<&str> = SINGLE_REFERENCES.iter().map(|(_, column)| *column).collect();
    let mut out = Record::new();
    for (column, value) in record.iter() {
        if added.contains(&column.as_str()) {
            continue; // a record from an earlier enrichment: replaced below
        }
        if column == GROUPS {
            let groups = group_entries(Some(value))
                .into_iter()
                .map(|id| id.and_then(|id| related.security_groups.get(&id)))
                .map(|row| row.map_or(Value::nothing(span), |row| row_to_value(row.clone(), span)))
                .collect();
            out.push(column.clone(), Value::list(groups, span));
            continue;
        }
        out.push(column.clone(), value.clone());
        if let Some((id_column, record_column)) = SINGLE_REFERENCES.iter().find(|(id, _)| id == column) {
            out.push(*record_column, found(lookup_of(record_column), record.get(*id_column)));
        }
    }
    for (id_column, record_column) in SINGLE_REFERENCES {
        if record.get(*id_column).is_none() {
            out.push(*record_column, Value::nothing(span));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_core::row::Field;

    fn record(pairs: Vec<(&str, Value)>) -> Record {
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    fn resource(id: &str, name: &str) -> Row {
        Row::new()
            .with("id", Field::Text(id.into()))
            .with("name", Field::Text(name.into()))
    }

    #[test]
    fn references_become_records_and_missing_ones_null() {
        let span = Span::test_data();
        let instance = record(vec![
            ("id", Value::test_string("i-1")),
            ("vpc_id", Value::test_string("vpc-1")),
            ("subnet_id", Value::test_string("subnet-gone")),
            (GROUPS, Value::test_list(vec![Value::test_string("sg-1"), Value::test_string("sg-gone")])),
            ("image_id", Value::test_string("ami-1")),
        ]);
        let mut ids = RelatedIds::default();
        collect_ids(&instance, &mut ids);
        assert_eq!(ids.security_groups.iter().collect::<Vec<_>>(), ["sg-1", "sg-gone"]);
        assert_eq!(ids.subnets.iter().collect::<Vec<_>>(), ["subnet-gone"]);
        let mut related = Related::default();
        related.vpcs.insert("vpc-1".into(), resource("vpc-1", "main"));
        related.security_groups.insert("sg-1".into(), resource("sg-1", "web"));
        related.images.insert("ami-1".into(), resource("ami-1", "ubuntu"));
        let out = enrich(&instance, &related, span);
        let columns: Vec<&str> = out.columns().map(String::as_str).collect();
        assert_eq!(columns, ["id", "vpc_id", "vpc", "subnet_id", "subnet", GROUPS, "image_id", "image"]);
        let name_of = |v: &Value| v.as_record().ok().and_then(|r| r.get("name")).and_then(|n| n.as_str().ok()).map(str::to_string);
        assert_eq!(out.get("vpc").and_then(name_of).as_deref(), Some("main"));
        assert_eq!(out.get("subnet"), Some(&Value::nothing(span)));
        assert_eq!(out.get("image").and_then(name_of).as_deref(), Some("ubuntu"));
        let groups = out.get(GROUPS).and_then(|g| g.as_list().ok()).unwrap_or_default();
        assert_eq!(groups.len(), 2);
        assert_eq!(name_of(&groups[0]).as_deref(), Some("web"));
        assert_eq!(groups[1], Value::nothing(span));

        // Enriching again looks up the ids still there and keeps one record column each.
        let again = enrich(&out, &related, span);
        let mut ids_again = RelatedIds::default();
        collect_ids(&out, &mut ids_again);
        assert_eq!(ids_again.security_groups.iter().collect::<Vec<_>>(), ["sg-1"]);
        assert_eq!((&ids_again.vpcs, &ids_again.subnets, &ids_again.images), (&ids.vpcs, &ids.subnets, &ids.images));
        assert_eq!(again, out);
    }

    #[test]
    fn rows_without_reference_columns_get_null_records() {
        let span = Span::test_data();
        let out = enrich(&record(vec![("id", Value::test_string("i-1"))]), &Related::default(), span);
        let columns: Vec<&str> = out.columns().map(String::as_str).collect();
        assert_eq!(columns, ["id", "vpc", "subnet", "image"]);
    }
}
