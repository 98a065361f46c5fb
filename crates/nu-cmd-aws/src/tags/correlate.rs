//! `aws tags correlate <key>`: the instances, volumes, snapshots, security groups, VPCs and
//! buckets carrying a tag key, as one table sorted by the key's value (or one row per value with
//! `--group`). EC2 resources come from one DescribeTags listing per region; buckets from the
//! cached bucket list and one GetBucketTagging per bucket, concurrently.
//!
//! The table is built whole before it is shown: it is sorted. Not a tag editor.

use std::sync::Arc;

use aws_core::error::ErrorKind;
use aws_core::fanout::in_region;
use aws_core::row::{Field, Row};
use aws_core::runtime::block_on;
use aws_core::s3::list_buckets;
use aws_core::session::Session;
use aws_core::tags::{Bucket, BucketScope, TagQuery, correlate, grouped_rows, rows};
use aws_core::AwsError;
use nu_engine::command_prelude::*;
use nu_protocol::shell_error::generic::GenericError;

use crate::context::{AwsContext, CallSession, cache_flags, session_flags};
use crate::errors::{ErrorSpans, to_shell_error};
use crate::regions::{RegionChoice, region_flags, region_names};
use crate::stream::collect_rows;
use crate::values::row_to_value;

#[derive(Clone)]
pub struct TagsCorrelate {
    pub ctx: Arc<AwsContext>,
}

impl Command for TagsCorrelate {
    fn name(&self) -> &str {
        "aws tags correlate"
    }

    fn signature(&self) -> Signature {
        let sig = Signature::build(self.name())
            .required("key", SyntaxShape::String, "The tag key, e.g. Application.")
            .named("value", SyntaxShape::String, "Only resources whose tag has this value.", Some('v'))
            .switch("group", "One row per value, with the resources of each type in a list.", Some('g'))
            .input_output_types(vec![(Type::Nothing, Type::table())])
            .category(Category::Custom("aws".into()));
        cache_flags(region_flags(session_flags(sig)))
    }

    fn description(&self) -> &str {
        "Instances, volumes, snapshots, security groups, VPCs and buckets carrying a tag key, sorted by its value."
    }

    fn extra_description(&self) -> &str {
        "Columns: value (the tag's value), type (instance, volume, snapshot, security-group, vpc or bucket), id (resource id or bucket name), name (the Name tag) and region. EC2 resources are those of the current region, or of --regions / --all-regions; buckets are every bucket of the account, or those of the --regions given. EC2 costs one DescribeTags listing per region (plus one call per 200 resources for their names); buckets one GetBucketTagging each, 16 at a time. A region or bucket that cannot be read is an error row after the others (the command's error when nothing was found). The whole table is read before it is shown, since it is sorted."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["tag", "application", "cost", "inventory", "describe-tags", "group"]
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                description: "Everything tagged with an Application, by application.",
                example: "aws tags correlate Application",
                result: None,
            },
            Example {
                description: "The resources of one application.",
                example: "aws tags correlate Application --value web",
                result: None,
            },
            Example {
                description: "One row per application, with its resources by type.",
                example: "aws tags correlate Application --group | select value count instances buckets",
                result: None,
            },
            Example {
                description: "How many resources each team has, in two regions.",
                example: "aws tags correlate Team --regions [us-east-1 eu-west-1] | group-by value | transpose team resources | update resources { length }",
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
        _input: PipelineData,
    ) -> Result<PipelineData, ShellError> {
        let head = call.head;
        let key: Spanned<String> = call.req(engine_state, stack, 0)?;
        if key.item.is_empty() {
            return Err(ShellError::Generic(
                GenericError::new("Empty tag key", "the tag key is empty", key.span)
                    .with_help("Name a tag key, e.g. `aws tags correlate Application`."),
            ));
        }
        let value: Option<String> = call.get_flag(engine_state, stack, "value")?;
        let group = call.has_flag(engine_state, stack, "group")?;
        let choice = RegionChoice::from_call(engine_state, stack, call)?;
        let cs = CallSession::resolve(&self.ctx, engine_state, stack, call)?;

        let (regions, bucket_regions) = match &choice {
            None => {
                let region = cs
                    .session
                    .require_region("EC2 DescribeTags")
                    .map_err(|err| to_shell_error(err, &cs.spans))?;
                (vec![(region.to_string(), cs.spans)], None)
            }
            Some(choice) => {
                let regions = region_names(&cs, choice)?;
                let names: Vec<String> = regions.iter().map(|(r, _)| r.clone()).collect();
                let only = matches!(choice, RegionChoice::Listed(_)).then_some(names);
                (regions, only)
            }
        };

        let mut failures: Vec<ShellError> = Vec::new();
        let mut sessions: Vec<(String, Arc<Session>)> = Vec::new();
        for (region, spans) in &regions {
            match cs.in_region(region) {
                Ok(regional) => sessions.push((region.clone(), regional.session)),
                Err(err) => failures.push(to_shell_error(in_region(err, region), spans)),
            }
        }
        let buckets = match account_buckets(&cs) {
            Ok(buckets) => Some(BucketScope {
                session: cs.session.clone(),
                buckets,
                regions: bucket_regions,
            }),
            Err(err) if err.kind == ErrorKind::Interrupted => {
                return Err(ShellError::Interrupted { span: head });
            }
            Err(err) => {
                failures.push(to_shell_error(err, &cs.spans));
                None
            }
        };

        let query = TagQuery { key: key.item, value };
        let interrupt = cs.interrupt();
        let found = block_on(&interrupt, correlate(&query, sessions, buckets))
            .map_err(|_| ShellError::Interrupted { span: head })?;
        let table: Vec<Row> = if group {
            grouped_rows(&found.resources)
        } else {
            rows(&found.resources)
        };
        let spans = ErrorSpans { target: Some(key.span), ..cs.spans };
        failures.extend(found.failures.into_iter().map(|err| to_shell_error(err, &spans)));
        // Nothing found and something failed: the failure is the answer (no credentials, say),
        // not an empty table.
        if table.is_empty() && !failures.is_empty() {
            return Err(failures.swap_remove(0));
        }
        let mut values: Vec<Value> = table.into_iter().map(|row| row_to_value(row, head)).collect();
        values.extend(failures.into_iter().map(|err| Value::error(err, head)));
        Ok(Value::list(values, head).into_pipeline_data())
    }
}

/// The account's buckets with the region ListBuckets reports, through the cache (the entry
/// `aws s3 buckets` uses).
fn account_buckets(cs: &CallSession) -> Result<Vec<Bucket>, AwsError> {
    let session = cs.session.clone();
    let feed = cs.feed("s3", "ListBuckets", String::new(), vec![], || Ok(list_buckets(&session)))?;
    let text = |row: &Row, column: &str| row.get(column).and_then(Field::as_str).map(str::to_string);
    Ok(collect_rows(feed, &cs.signals)?
        .iter()
        .filter_map(|row| {
            Some(Bucket {
                name: text(row, "name")?,
                region: text(row, "region"),
            })
        })
        .collect())
}
