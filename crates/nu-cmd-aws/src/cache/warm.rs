//! `aws cache warm`: fills the cache with the common listings of the current identity and region
//! (buckets, instances, security groups, VPCs, subnets, regions) on a background thread, so the
//! prompt comes back at once and the next listing or completion is served from memory.

use std::sync::Arc;
use std::time::Duration;

use aws_core::cache::RowFeed;
use aws_core::ec2::{self, ListRequest, Listing};
use aws_core::pagination::Next;
use aws_core::s3::list_buckets;
use nu_engine::command_prelude::*;

use crate::context::{AwsContext, CallSession, cache_flags, session_flags};
use crate::ec2::cache_params;

#[derive(Clone)]
pub struct CacheWarm {
    pub ctx: Arc<AwsContext>,
}

/// The EC2 listings worth having at hand, with their operations.
const EC2_LISTINGS: &[(Listing, &str)] = &[
    (Listing::Instances, "DescribeInstances"),
    (Listing::SecurityGroups, "DescribeSecurityGroups"),
    (Listing::Vpcs, "DescribeVpcs"),
    (Listing::Subnets, "DescribeSubnets"),
    (Listing::Regions, "DescribeRegions"),
];

impl Command for CacheWarm {
    fn name(&self) -> &str {
        "aws cache warm"
    }

    fn signature(&self) -> Signature {
        cache_flags(session_flags(Signature::build(self.name())))
            .input_output_types(vec![(Type::Nothing, Type::record())])
            .category(Category::Custom("aws".into()))
    }

    fn description(&self) -> &str {
        "Fill the cache with the common listings of the current identity and region, in the background."
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![Example {
            description: "Warm the cache for another region without waiting.",
            example: "aws cache warm --region us-east-1",
            result: None,
        }]
    }

    fn run(
        &self,
        engine_state: &EngineState,
        stack: &mut Stack,
        call: &Call,
        _input: PipelineData,
    ) -> Result<PipelineData, ShellError> {
        let mut cs = CallSession::resolve(&self.ctx, engine_state, stack, call)?;
        cs.quiet = true;
        let region = cs.session.region().map(str::to_string);
        let mut warming = vec!["buckets"];
        if region.is_some() {
            warming.extend(["instances", "security-groups", "vpcs", "subnets", "regions"]);
        }
        std::thread::Builder::new()
            .name("nuaws-cache-warm".into())
            .spawn(move || warm(&cs))
            .map_err(|err| ShellError::Generic(
                nu_protocol::shell_error::generic::GenericError::new_internal(
                    "Cannot start warming the cache",
                    err.to_string(),
                ),
            ))?;
        let span = call.head;
        Ok(Value::record(
            record! {
                "warming" => Value::list(warming.into_iter().map(|w| Value::string(w, span)).collect(), span),
                "region" => region.map_or(Value::nothing(span), |r| Value::string(r, span)),
            },
            span,
        )
        .into_pipeline_data())
    }
}

/// Runs every listing to completion, which stores it; failures only mean less is warm.
fn warm(cs: &CallSession) {
    let session = cs.session.clone();
    drain(cs, cs.feed("s3", "ListBuckets", String::new(), vec![], || Ok(list_buckets(&session))));
    if session.region().is_none() {
        return;
    }
    for (listing, operation) in EC2_LISTINGS {
        let request = ListRequest::new(*listing);
        let params = cache_params(&request);
        drain(cs, cs.feed("ec2", operation, String::new(), params, || ec2::list(&session, request)));
    }
}

fn drain(cs: &CallSession, feed: Result<RowFeed, aws_core::AwsError>) {
    let Ok(mut feed) = feed else { return };
    loop {
        match feed.next_timeout(Duration::from_millis(100)) {
            Next::Item(_) => {}
            Next::End | Next::Error(_) => return,
            Next::Pending if cs.signals.interrupted() => return,
            Next::Pending => {}
        }
    }
}
