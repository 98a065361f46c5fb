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

use crate::context::{AwsContext, CallSession, SessionArgs, cache_flags, freshness, policy, session_flags};
use crate::ec2::cache_params;

#[derive(Clone)]
pub struct CacheWarm {
    pub ctx: Arc<AwsContext>,
}

/// The EC2 listings worth having at hand.
const EC2_LISTINGS: &[Listing] = &[
    Listing::Instances,
    Listing::SecurityGroups,
    Listing::Vpcs,
    Listing::Subnets,
    Listing::Regions,
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

    crate::complete::completion_hook!(_cmd => None);

    fn run(
        &self,
        engine_state: &EngineState,
        stack: &mut Stack,
        call: &Call,
        _input: PipelineData,
    ) -> Result<PipelineData, ShellError> {
        // Only what needs the shell happens here; the session (config files, SSO, credentials)
        // is built on the warming thread, so the prompt never waits for it.
        let spec = SessionArgs::from_call(engine_state, stack, call)?.spec(engine_state, stack);
        let freshness = freshness(engine_state, stack, call)?;
        let policy = policy(engine_state, stack)?;
        let cache = self.ctx.cache(engine_state, stack).clone();
        let ctx = self.ctx.clone();
        let mut warming = vec!["buckets"];
        if spec.region.is_some() {
            warming.extend(["instances", "security-groups", "vpcs", "subnets", "regions"]);
        }
        let region = spec.region.clone();
        std::thread::Builder::new()
            .name("nuaws-cache-warm".into())
            .spawn(move || {
                if let Some(cs) = CallSession::background(&ctx, &spec, cache, policy, freshness) {
                    warm(&cs);
                }
            })
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
    for listing in EC2_LISTINGS {
        let request = ListRequest::new(*listing);
        let params = cache_params(&request);
        drain(cs, cs.feed("ec2", listing.operation(), String::new(), params, || ec2::list(&session, request)));
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
