//! The `aws ec2` commands: listings of instances and the resources around them (one command per
//! file, sharing [`listing`]; any of them over several regions at once), `enrich` (instances with
//! the records of what they refer to), and the instance state changes start, stop and terminate
//! (sharing [`state`]).

mod ec2_;
mod enrich;
mod images;
mod instances;
pub(crate) mod listing;
mod regions;
mod security_groups;
mod snapshots;
mod start;
mod state;
mod stop;
mod subnets;
mod terminate;
mod volumes;
mod vpcs;

use std::sync::Arc;

use nu_engine::command_prelude::*;

use crate::context::AwsContext;

pub use ec2_::Ec2;
pub use enrich::Ec2Enrich;
pub use listing::{Ec2List, ListingSpec};
pub use listing::cache_params;
pub use state::{Ec2StateChange, StateChangeSpec};

pub(crate) fn add_commands(working_set: &mut StateWorkingSet, ctx: &Arc<AwsContext>) {
    for spec in [
        &instances::SPEC,
        &security_groups::SPEC,
        &vpcs::SPEC,
        &subnets::SPEC,
        &volumes::SPEC,
        &snapshots::SPEC,
        &images::SPEC,
        &regions::SPEC,
    ] {
        working_set.add_decl(Box::new(Ec2List {
            ctx: ctx.clone(),
            spec,
        }));
    }
    working_set.add_decl(Box::new(Ec2Enrich { ctx: ctx.clone() }));
    for spec in [&start::SPEC, &stop::SPEC, &terminate::SPEC] {
        working_set.add_decl(Box::new(Ec2StateChange {
            ctx: ctx.clone(),
            spec,
        }));
    }
}
