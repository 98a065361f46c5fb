//! The EC2 resources of one region that carry a tag key, from DescribeTags: one paginated
//! listing covers every resource type (filtered by key, value and type on the server), where
//! asking each Describe call in turn would list every resource. Their `Name` tags come from a
//! second DescribeTags narrowed to the resources found.
//!
//! Not here: buckets (S3 has no such listing; see [`crate::tags`]), nor combining regions.

use std::collections::HashMap;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::TagDescription;
use tokio::task::JoinSet;

use super::enrich::MAX_FILTER_VALUES;
use super::filters::Filter;
use crate::error::{AwsError, ErrorKind};
use crate::fanout::RequestLimit;
use crate::runtime::runtime;
use crate::session::Session;

/// DescribeTags' largest page.
const PAGE_SIZE: i32 = 1000;

/// One resource carrying the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaggedResource {
    /// EC2's resource type: `instance`, `volume`, `snapshot`, `security-group`, `vpc`, ...
    pub resource_type: String,
    pub id: String,
    /// The value of the key on this resource.
    pub value: String,
    /// Its `Name` tag, if any.
    pub name: Option<String>,
}

/// The resources of `types` in the session's region whose tag `key` exists (and equals `value`
/// when given). Key and value match exactly: the server's filters take wildcards, so what they
/// return is checked again here.
pub async fn tagged_resources(
    session: &Session,
    key: &str,
    value: Option<&str>,
    types: &[&str],
    limit: &RequestLimit,
) -> Result<Vec<TaggedResource>, AwsError> {
    let client = session.ec2()?.clone();
    let mut filters = vec![
        filter("key", vec![key.to_string()]),
        filter("resource-type", types.iter().map(|t| t.to_string()).collect()),
    ];
    if let Some(value) = value {
        filters.push(filter("value", vec![value.to_string()]));
    }
    let tags = limit.run(all_tags(&client, filters)).await?;
    let mut found = matching(&tags, key, value, types);
    if key == "Name" {
        for resource in &mut found {
            resource.name = Some(resource.value.clone());
        }
        return Ok(found);
    }
    let ids: Vec<String> = found.iter().map(|r| r.id.clone()).collect();
    let names = names_of(&client, ids, limit).await?;
    for resource in &mut found {
        resource.name = names.get(&resource.id).cloned();
    }
    Ok(found)
}

/// The tags that are exactly `key` (= `value`) on a resource of `types`.
fn matching(tags: &[TagDescription], key: &str, value: Option<&str>, types: &[&str]) -> Vec<TaggedResource> {
    tags.iter()
        .filter_map(|t| {
            let resource_type = t.resource_type()?.as_str();
            let keep = t.key() == Some(key)
                && types.contains(&resource_type)
                && value.is_none_or(|v| t.value() == Some(v));
            if !keep {
                return None;
            }
            Some(TaggedResource {
                resource_type: resource_type.to_string(),
                id: t.resource_id()?.to_string(),
                value: t.value().unwrap_or_default().to_string(),
                name: None,
            })
        })
        .collect()
}

fn filter(name: &str, values: Vec<String>) -> aws_sdk_ec2::types::Filter {
    Filter {
        name: name.to_string(),
        values,
    }
    .to_sdk()
}

/// Every page of DescribeTags with `filters`.
async fn all_tags(
    client: &Client,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<TagDescription>, AwsError> {
    let mut tags = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = client
            .describe_tags()
            .set_filters(Some(filters.clone()))
            .max_results(PAGE_SIZE)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("EC2 DescribeTags", e))?;
        tags.extend(out.tags().iter().cloned());
        match out.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(tags),
        }
    }
}

/// The `Name` tag of each of `ids` that has one: DescribeTags by resource id, 200 ids a call.
async fn names_of(
    client: &Client,
    ids: Vec<String>,
    limit: &RequestLimit,
) -> Result<HashMap<String, String>, AwsError> {
    let mut calls = JoinSet::new();
    for batch in ids.chunks(MAX_FILTER_VALUES) {
        let filters = vec![filter("key", vec!["Name".into()]), filter("resource-id", batch.to_vec())];
        let (client, limit) = (client.clone(), limit.clone());
        calls.spawn_on(
            async move { limit.run(all_tags(&client, filters)).await },
            runtime().handle(),
        );
    }
    let mut names = HashMap::new();
    while let Some(joined) = calls.join_next().await {
        let tags = joined.map_err(|err| {
            AwsError::new(ErrorKind::Service, "EC2 DescribeTags", format!("a lookup task failed: {err}"))
        })??;
        for tag in tags {
            if let (Some(id), Some("Name"), Some(name)) = (tag.resource_id(), tag.key(), tag.value()) {
                names.insert(id.to_string(), name.to_string());
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::ResourceType;

    fn tag(kind: ResourceType, id: &str, key: &str, value: &str) -> TagDescription {
        TagDescription::builder()
            .resource_type(kind)
            .resource_id(id)
            .key(key)
            .value(value)
            .build()
    }

    #[test]
    fn only_the_exact_key_value_and_types_are_kept() {
        // What a server's wildcard filters might return for key `App`, value `web`.
        let tags = [
            tag(ResourceType::Instance, "i-1", "App", "web"),
            tag(ResourceType::Instance, "i-2", "Application", "web"),
            tag(ResourceType::Volume, "vol-1", "App", "web"),
            tag(ResourceType::Volume, "vol-2", "App", "web2"),
            tag(ResourceType::NetworkInterface, "eni-1", "App", "web"),
        ];
        let found = matching(&tags, "App", Some("web"), &["instance", "volume", "vpc"]);
        let ids: Vec<(&str, &str)> = found.iter().map(|r| (r.resource_type.as_str(), r.id.as_str())).collect();
        assert_eq!(ids, [("instance", "i-1"), ("volume", "vol-1")]);
        let any_value = matching(&tags, "App", None, &["volume"]);
        let values: Vec<&str> = any_value.iter().map(|r| r.value.as_str()).collect();
        assert_eq!(values, ["web", "web2"]);
    }
}
