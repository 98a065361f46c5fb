//! EC2: listings of instances and the resources around them (security groups, VPCs, subnets,
//! volumes, snapshots, images, regions) as streams of [`Row`]s, the resources instances refer to
//! fetched in batches ([`describe_related`]), the resources carrying a tag key
//! ([`tagged_resources`]), the start/stop/terminate actions on instances, and reading the
//! offending id out of an EC2 error message.
//!
//! Not here: creating, modifying or deleting anything but an instance's run state, and anything
//! secret (user data, passwords, key material) — no row ever carries it.

mod actions;
mod enrich;
mod errors;
mod fields;
mod filters;
mod instances;
mod network;
mod storage;
mod tags;

use std::sync::Arc;

use aws_sdk_ec2::Client;

use crate::error::AwsError;
use crate::fanout::RequestLimit;
use crate::pagination::{Page, PageStream};
use crate::row::Row;
use crate::session::Session;

pub use actions::{StateChange, change_state};
pub use enrich::{Related, RelatedIds, describe_related};
pub use errors::offending_id;
pub use filters::Filter;
pub use tags::{TaggedResource, tagged_resources};

/// Items per page where the API takes a page size (EC2's maximum).
const PAGE_SIZE: i32 = 1000;

/// The owner images and snapshots are listed for when the caller names none: listing every
/// public AMI or snapshot would take minutes and is never what was meant.
const DEFAULT_OWNER: &str = "self";

/// What [`list`] lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    Instances,
    SecurityGroups,
    Vpcs,
    Subnets,
    Volumes,
    Snapshots,
    Images,
    Regions,
}

impl Listing {
    /// The EC2 API operation behind the listing (it names the listing's cache entries).
    pub fn operation(self) -> &'static str {
        match self {
            Listing::Instances => "DescribeInstances",
            Listing::SecurityGroups => "DescribeSecurityGroups",
            Listing::Vpcs => "DescribeVpcs",
            Listing::Subnets => "DescribeSubnets",
            Listing::Volumes => "DescribeVolumes",
            Listing::Snapshots => "DescribeSnapshots",
            Listing::Images => "DescribeImages",
            Listing::Regions => "DescribeRegions",
        }
    }
}

/// One listing request: which resources, narrowed by ids and filters.
#[derive(Clone, Debug, PartialEq)]
pub struct ListRequest {
    pub listing: Listing,
    /// Only these resources (instance ids, group ids, region names, ...); empty for all.
    pub ids: Vec<String>,
    /// EC2 server-side filters (`instance-state-name`, `tag:Env`, ...).
    pub filters: Vec<Filter>,
    /// Images and snapshots: owner account ids, or `self` / `amazon`. When empty and no ids are
    /// given, they default to `["self"]` (never every public one); explicit ids are looked up
    /// whoever owns them.
    pub owners: Vec<String>,
    /// Regions only: include the regions this account has not opted in to.
    pub all_regions: bool,
}

impl ListRequest {
    /// Everything of one kind: no ids, filters or owners.
    pub fn new(listing: Listing) -> Self {
        Self {
            listing,
            ids: Vec::new(),
            filters: Vec::new(),
            owners: Vec::new(),
            all_regions: false,
        }
    }

    /// The ids parameter: `None` when listing everything.
    fn ids_param(&self) -> Option<Vec<String>> {
        (!self.ids.is_empty()).then(|| self.ids.clone())
    }

    fn filters_param(&self) -> Option<Vec<aws_sdk_ec2::types::Filter>> {
        (!self.filters.is_empty()).then(|| self.filters.iter().map(Filter::to_sdk).collect())
    }

    /// The page size: only without ids, since several Describe calls refuse MaxResults together
    /// with an id list (and an id list is one page anyway).
    fn page_size(&self) -> Option<i32> {
        self.ids.is_empty().then_some(PAGE_SIZE)
    }

    /// The owners parameter of images and snapshots, defaulted as documented on `owners`.
    fn owners_param(&self) -> Option<Vec<String>> {
        match (self.owners.is_empty(), self.ids.is_empty()) {
            (false, _) => Some(self.owners.clone()),
            (true, true) => Some(vec![DEFAULT_OWNER.to_string()]),
            (true, false) => None,
        }
    }
}

/// Streams the listing page by page (PageStream::spawn), each page turned into Rows.
pub fn list(session: &Session, request: ListRequest) -> Result<PageStream<Row>, AwsError> {
    list_limited(session, request, None)
}

/// [`list`], each page request holding a permit of `limit` (a listing run in many regions at
/// once shares one limit).
pub fn list_limited(
    session: &Session,
    request: ListRequest,
    limit: Option<RequestLimit>,
) -> Result<PageStream<Row>, AwsError> {
    let client = session.ec2()?.clone();
    let request = Arc::new(request);
    Ok(PageStream::spawn(move |token| {
        let (client, request, limit) = (client.clone(), request.clone(), limit.clone());
        async move {
            match limit {
                Some(limit) => limit.run(fetch_page(&client, &request, token)).await,
                None => fetch_page(&client, &request, token).await,
            }
        }
    }))
}

/// One page of any listing.
async fn fetch_page(client: &Client, request: &ListRequest, token: Option<String>) -> Page<Row> {
    match request.listing {
        Listing::Instances => instances::page(client, request, token).await,
        Listing::SecurityGroups => network::security_groups_page(client, request, token).await,
        Listing::Vpcs => network::vpcs_page(client, request, token).await,
        Listing::Subnets => network::subnets_page(client, request, token).await,
        Listing::Regions => network::regions_page(client, request).await,
        Listing::Volumes => storage::volumes_page(client, request, token).await,
        Listing::Snapshots => storage::snapshots_page(client, request, token).await,
        Listing::Images => storage::images_page(client, request, token).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_only_without_ids() {
        let mut request = ListRequest::new(Listing::Instances);
        assert_eq!(request.page_size(), Some(1000));
        assert_eq!(request.ids_param(), None);
        request.ids = vec!["i-1".into()];
        assert_eq!(request.page_size(), None);
        assert_eq!(request.ids_param(), Some(vec!["i-1".to_string()]));
    }

    #[test]
    fn owners_default_to_self_only_for_unnarrowed_listings() {
        let mut request = ListRequest::new(Listing::Images);
        assert_eq!(request.owners_param(), Some(vec!["self".to_string()]));
        request.ids = vec!["ami-1".into()];
        assert_eq!(request.owners_param(), None);
        request.owners = vec!["amazon".into()];
        assert_eq!(request.owners_param(), Some(vec!["amazon".to_string()]));
    }

    #[test]
    fn filters_are_passed_only_when_given() {
        let mut request = ListRequest::new(Listing::Vpcs);
        assert_eq!(request.filters_param(), None);
        request.filters = vec![Filter {
            name: "is-default".into(),
            values: vec!["true".into()],
        }];
        let sdk = request.filters_param().unwrap_or_default();
        assert_eq!(sdk.len(), 1);
        assert_eq!(sdk[0].name(), Some("is-default"));
        assert_eq!(sdk[0].values(), ["true".to_string()]);
    }
}
