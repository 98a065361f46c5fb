//! The instance listing: DescribeInstances pages flattened out of their reservations into one
//! row per instance. Not the state changes (that is [`super::actions`]).

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Instance, Reservation};

use super::ListRequest;
use super::fields::{enum_text, id_list, name_and_tags, platform};
use crate::error::AwsError;
use crate::pagination::Page;
use crate::row::{Field, Row};

pub(crate) async fn page(
    client: &Client,
    request: &ListRequest,
    token: Option<String>,
) -> Page<Row> {
    let out = client
        .describe_instances()
        .set_instance_ids(request.ids_param())
        .set_filters(request.filters_param())
        .set_max_results(request.page_size())
        .set_next_token(token)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("EC2 DescribeInstances", e))?;
    Ok((instance_rows(out.reservations()), out.next_token))
}

/// One row per instance, in the order of the reservations.
pub(crate) fn instance_rows(reservations: &[Reservation]) -> Vec<Row> {
    reservations
        .iter()
        .flat_map(Reservation::instances)
        .map(instance_row)
        .collect()
}

/// The columns of an instance, most useful first.
pub(crate) fn instance_row(i: &Instance) -> Row {
    let (name, tags) = name_and_tags(i.tags());
    Row::new()
        .with("id", Field::text(i.instance_id()))
        .with("name", name)
        .with("state", enum_text(i.state().and_then(|s| s.name())))
        .with("type", enum_text(i.instance_type()))
        .with("launch_time", Field::time(i.launch_time()))
        .with("private_ip", Field::text(i.private_ip_address()))
        .with("public_ip", Field::text(i.public_ip_address()))
        .with("vpc_id", Field::text(i.vpc_id()))
        .with("subnet_id", Field::text(i.subnet_id()))
        .with(
            "security_groups",
            id_list(i.security_groups().iter().filter_map(|g| g.group_id())),
        )
        .with(
            "az",
            Field::text(i.placement().and_then(|p| p.availability_zone())),
        )
        .with("image_id", Field::text(i.image_id()))
        .with("key_name", Field::text(i.key_name()))
        .with("platform", platform(i.platform_details(), i.platform()))
        .with("architecture", enum_text(i.architecture()))
        .with("tags", tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{
        ArchitectureValues, GroupIdentifier, InstanceState, InstanceStateName, InstanceType,
        Placement, Tag,
    };
    use aws_smithy_types::DateTime;

    fn instance(id: &str) -> Instance {
        Instance::builder()
            .instance_id(id)
            .state(
                InstanceState::builder()
                    .code(16)
                    .name(InstanceStateName::Running)
                    .build(),
            )
            .instance_type(InstanceType::T3Micro)
            .launch_time(DateTime::from_secs(1_700_000_000))
            .private_ip_address("10.0.0.5")
            .vpc_id("vpc-1")
            .subnet_id("subnet-1")
            .security_groups(
                GroupIdentifier::builder()
                    .group_id("sg-1")
                    .group_name("web")
                    .build(),
            )
            .security_groups(GroupIdentifier::builder().group_id("sg-2").build())
            .placement(Placement::builder().availability_zone("us-east-1a").build())
            .image_id("ami-1")
            .architecture(ArchitectureValues::X8664)
            .tags(Tag::builder().key("Name").value("web-1").build())
            .build()
    }

    #[test]
    fn reservations_flatten_to_one_row_per_instance() {
        let reservations = [
            Reservation::builder()
                .instances(instance("i-1"))
                .instances(instance("i-2"))
                .build(),
            Reservation::builder().build(),
            Reservation::builder().instances(instance("i-3")).build(),
        ];
        let ids: Vec<_> = instance_rows(&reservations)
            .iter()
            .map(|r| r.get("id").and_then(Field::as_str).map(str::to_string))
            .collect();
        assert_eq!(
            ids,
            [Some("i-1".into()), Some("i-2".into()), Some("i-3".into())]
        );
    }

    #[test]
    fn instance_row_shape() {
        let row = instance_row(&instance("i-1"));
        let names: Vec<_> = row.columns.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "id",
                "name",
                "state",
                "type",
                "launch_time",
                "private_ip",
                "public_ip",
                "vpc_id",
                "subnet_id",
                "security_groups",
                "az",
                "image_id",
                "key_name",
                "platform",
                "architecture",
                "tags"
            ]
        );
        assert_eq!(row.get("name"), Some(&Field::Text("web-1".into())));
        assert_eq!(row.get("state"), Some(&Field::Text("running".into())));
        assert_eq!(row.get("type"), Some(&Field::Text("t3.micro".into())));
        assert_eq!(row.get("architecture"), Some(&Field::Text("x86_64".into())));
        assert_eq!(row.get("az"), Some(&Field::Text("us-east-1a".into())));
        assert_eq!(row.get("public_ip"), Some(&Field::Null));
        assert_eq!(row.get("key_name"), Some(&Field::Null));
        assert_eq!(row.get("platform"), Some(&Field::Null));
        assert_eq!(
            row.get("security_groups"),
            Some(&Field::List(vec![
                Field::Text("sg-1".into()),
                Field::Text("sg-2".into())
            ]))
        );
        let Some(Field::Time(t)) = row.get("launch_time") else {
            panic!("launch_time must be a time");
        };
        assert_eq!(t.timestamp(), 1_700_000_000);
    }
}
