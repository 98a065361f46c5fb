//! Reads spread over several regions: the `--regions` and `--all-regions` flags, the regions
//! they stand for (`--all-regions`: the regions enabled for the account, from DescribeRegions
//! through the cache, the entry `aws ec2 regions` uses), and a session per region: the one
//! `--region <name>` uses, so a region read as part of many and read alone share cache entries.
//!
//! Not here: merging the regions' listings into one stream (that is
//! [`crate::stream::RegionRows`], over `aws_core::fanout`).

use aws_core::ec2::{self, ListRequest, Listing};
use aws_core::AwsError;
use aws_core::row::Field;
use nu_engine::command_prelude::*;
use nu_protocol::shell_error::generic::GenericError;

use crate::context::{CallSession, check_region_name};
use crate::ec2::cache_params;
use crate::errors::{ErrorSpans, to_shell_error};
use crate::stream::collect_rows;

/// Where DescribeRegions is asked when the call has no region of its own: any region lists
/// the account's regions.
const FALLBACK_REGION: &str = "us-east-1";

/// Adds `--regions` and `--all-regions` to a command's signature.
pub fn region_flags(signature: Signature) -> Signature {
    signature
        .named(
            "regions",
            SyntaxShape::List(Box::new(SyntaxShape::String)),
            "Read these regions at once, as one table with a `region` column.",
            None,
        )
        .switch(
            "all-regions",
            "Read every region enabled for the account at once, as one table with a `region` column.",
            None,
        )
}

/// The regions a call asked for with `--regions` or `--all-regions`.
pub enum RegionChoice {
    /// `--regions [...]`: each name with its span.
    Listed(Vec<Spanned<String>>),
    /// `--all-regions`.
    All,
}

impl RegionChoice {
    /// The call's choice; `None` when it used neither flag (it reads its own region only).
    /// Refuses the two together, or either with `--region`.
    pub fn from_call(
        engine_state: &EngineState,
        stack: &mut Stack,
        call: &Call,
    ) -> Result<Option<Self>, ShellError> {
        let listed: Option<Vec<Spanned<String>>> = call.get_flag(engine_state, stack, "regions")?;
        let all = call.has_flag(engine_state, stack, "all-regions")?;
        let conflict = |first: &str, second: &str| {
            let span = call.get_flag_span(stack, second).unwrap_or(call.head);
            ShellError::Generic(
                GenericError::new(
                    format!("--{first} and --{second} cannot be used together"),
                    format!("--{second} conflicts with --{first}"),
                    span,
                )
                .with_help("Use --region for one region, --regions [a b] for several, --all-regions for every enabled one.")
                .with_code("nuaws::aws::conflicting_flags"),
            )
        };
        let choice = match (listed, all) {
            (Some(_), true) => return Err(conflict("regions", "all-regions")),
            (Some(listed), false) => {
                if let Some(empty) = listed.iter().find(|r| r.item.trim().is_empty()) {
                    return Err(ShellError::Generic(
                        GenericError::new("Empty region name", "this region name is empty", empty.span)
                            .with_help("Name regions like us-east-1; `aws ec2 regions` lists them."),
                    ));
                }
                if listed.is_empty() {
                    let span = call.get_flag_span(stack, "regions").unwrap_or(call.head);
                    return Err(ShellError::Generic(
                        GenericError::new("No regions given", "--regions needs at least one region", span)
                            .with_help("Name regions like --regions [us-east-1 eu-west-1], or use --all-regions."),
                    ));
                }
                RegionChoice::Listed(listed)
            }
            (None, true) => RegionChoice::All,
            (None, false) => return Ok(None),
        };
        if call.get_flag_span(stack, "region").is_some() {
            let other = match choice {
                RegionChoice::Listed(_) => "regions",
                RegionChoice::All => "all-regions",
            };
            return Err(conflict(other, "region"));
        }
        Ok(Some(choice))
    }
}

/// The regions to read, each once, in the order given (`--all-regions`: as DescribeRegions
/// lists them), with where errors about each should point.
pub fn region_names(
    cs: &CallSession,
    choice: &RegionChoice,
) -> Result<Vec<(String, ErrorSpans)>, ShellError> {
    match choice {
        RegionChoice::Listed(listed) => {
            let mut regions: Vec<(String, ErrorSpans)> = Vec::new();
            for region in listed {
                let name = region.item.trim();
                check_region_name(name, cs.session.endpoint().is_some(), region.span, "--regions")?;
                if !regions.iter().any(|(r, _)| r == name) {
                    // Whatever fails in a region is about that region: point at its name.
                    let spans = ErrorSpans {
                        head: region.span,
                        region: Some(region.span),
                        ..cs.spans_for(region.span)
                    };
                    regions.push((name.to_string(), spans));
                }
            }
            Ok(regions)
        }
        RegionChoice::All => Ok(enabled_regions(cs)
            .map_err(|err| to_shell_error(err, &cs.spans))?
            .into_iter()
            .map(|region| (region, cs.spans))
            .collect()),
    }
}

/// The regions enabled for the account of `cs`, through the cache.
pub fn enabled_regions(cs: &CallSession) -> Result<Vec<String>, AwsError> {
    let moved;
    let cs = if cs.session.region().is_some() {
        cs
    } else {
        moved = cs.in_region(FALLBACK_REGION)?;
        &moved
    };
    let request = ListRequest::new(Listing::Regions);
    let params = cache_params(&request);
    let session = cs.session.clone();
    let feed = cs.feed("ec2", Listing::Regions.operation(), String::new(), params, || {
        ec2::list(&session, request)
    })?;
    let rows = collect_rows(feed, &cs.signals)?;
    Ok(rows
        .iter()
        .filter_map(|row| row.get("name").and_then(Field::as_str).map(str::to_string))
        .collect())
}
