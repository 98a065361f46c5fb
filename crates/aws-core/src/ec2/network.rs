//! The network listings: security groups, VPCs, subnets, and the regions themselves, each page
//! turned into rows. Not the rules of a security group (only their counts are shown).

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Region, SecurityGroup, Subnet, Vpc};

use super::ListRequest;
use super::fields::{count, enum_text, flag, name_and_tags};
use crate::error::AwsError;
use crate::pagination::Page;
use crate::row::{Field, Row};

pub(crate) async fn security_groups_page(
    client: &Client,
    request: &ListRequest,
    token: Option<String>,
) -> Page<Row> {
    let out = client
        .describe_security_groups()
        .set_group_ids(request.ids_param())
        .set_filters(request.filters_param())
        .set_max_results(request.page_size())
        .set_next_token(token)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("EC2 DescribeSecurityGroups", e))?;
    let rows = out
        .security_groups()
        .iter()
        .map(security_group_row)
        .collect();
    Ok((rows, out.next_token))
}

pub(crate) async fn vpcs_page(
    client: &Client,
    request: &ListRequest,
    token: Option<String>,
) -> Page<Row> {
    let out = client
        .describe_vpcs()
        .set_vpc_ids(request.ids_param())
        .set_filters(request.filters_param())
        .set_max_results(request.page_size())
        .set_next_token(token)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("EC2 DescribeVpcs", e))?;
    Ok((out.vpcs().iter().map(vpc_row).collect(), out.next_token))
}

pub(crate) async fn subnets_page(
    client: &Client,
    request: &ListRequest,
    token: Option<String>,
) -> Page<Row> {
    let out = client
        .describe_subnets()
        .set_subnet_ids(request.ids_param())
        .set_filters(request.filters_param())
        .set_max_results(request.page_size())
        .set_next_token(token)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("EC2 DescribeSubnets", e))?;
    Ok((
        out.subnets().iter().map(subnet_row).collect(),
        out.next_token,
    ))
}

/// DescribeRegions is not paginated: one page, no token.
pub(crate) async fn regions_page(client: &Client, request: &ListRequest) -> Page<Row> {
    let out = client
        .describe_regions()
        .set_region_names(request.ids_param())
        .set_filters(request.filters_param())
        .set_all_regions(request.all_regions.then_some(true))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("EC2 DescribeRegions", e))?;
    Ok((out.regions().iter().map(region_row).collect(), None))
}

pub(crate) fn security_group_row(g: &SecurityGroup) -> Row {
    let (name_tag, tags) = name_and_tags(g.tags());
    // A group has a name of its own; the Name tag is only a fallback.
    let name = g
        .group_name()
        .map_or(name_tag, |n| Field::Text(n.to_string()));
    Row::new()
        .with("id", Field::text(g.group_id()))
        .with("name", name)
        .with("description", Field::text(g.description()))
        .with("vpc_id", Field::text(g.vpc_id()))
        .with("owner_id", Field::text(g.owner_id()))
        .with("ingress_rules", count(g.ip_permissions().len()))
        .with("egress_rules", count(g.ip_permissions_egress().len()))
        .with("tags", tags)
}

pub(crate) fn vpc_row(v: &Vpc) -> Row {
    let (name, tags) = name_and_tags(v.tags());
    Row::new()
        .with("id", Field::text(v.vpc_id()))
        .with("name", name)
        .with("cidr", Field::text(v.cidr_block()))
        .with("state", enum_text(v.state()))
        .with("is_default", flag(v.is_default()))
        .with("owner_id", Field::text(v.owner_id()))
        .with("tags", tags)
}

pub(crate) fn subnet_row(s: &Subnet) -> Row {
    let (name, tags) = name_and_tags(s.tags());
    Row::new()
        .with("id", Field::text(s.subnet_id()))
        .with("name", name)
        .with("vpc_id", Field::text(s.vpc_id()))
        .with("cidr", Field::text(s.cidr_block()))
        .with("az", Field::text(s.availability_zone()))
        .with("available_ips", Field::int(s.available_ip_address_count()))
        .with("state", enum_text(s.state()))
        .with("map_public_ip", flag(s.map_public_ip_on_launch()))
        .with("tags", tags)
}

pub(crate) fn region_row(r: &Region) -> Row {
    Row::new()
        .with("name", Field::text(r.region_name()))
        .with("endpoint", Field::text(r.endpoint()))
        .with("opt_in_status", Field::text(r.opt_in_status()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{IpPermission, SubnetState, Tag, VpcState};

    #[test]
    fn security_group_counts_rules() {
        let group = SecurityGroup::builder()
            .group_id("sg-1")
            .group_name("web")
            .description("web servers")
            .vpc_id("vpc-1")
            .owner_id("123456789012")
            .ip_permissions(
                IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(443)
                    .to_port(443)
                    .build(),
            )
            .ip_permissions(
                IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(80)
                    .to_port(80)
                    .build(),
            )
            .ip_permissions_egress(IpPermission::builder().ip_protocol("-1").build())
            .build();
        let row = security_group_row(&group);
        assert_eq!(row.get("name"), Some(&Field::Text("web".into())));
        assert_eq!(row.get("ingress_rules"), Some(&Field::Int(2)));
        assert_eq!(row.get("egress_rules"), Some(&Field::Int(1)));
        assert_eq!(row.get("tags"), Some(&Field::Record(vec![])));
    }

    #[test]
    fn vpc_row_shape() {
        let vpc = Vpc::builder()
            .vpc_id("vpc-1")
            .cidr_block("10.0.0.0/16")
            .state(VpcState::Available)
            .is_default(true)
            .tags(Tag::builder().key("Name").value("main").build())
            .build();
        let row = vpc_row(&vpc);
        let names: Vec<_> = row.columns.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "id",
                "name",
                "cidr",
                "state",
                "is_default",
                "owner_id",
                "tags"
            ]
        );
        assert_eq!(row.get("name"), Some(&Field::Text("main".into())));
        assert_eq!(row.get("state"), Some(&Field::Text("available".into())));
        assert_eq!(row.get("is_default"), Some(&Field::Bool(true)));
    }

    #[test]
    fn subnet_row_shape() {
        let subnet = Subnet::builder()
            .subnet_id("subnet-1")
            .vpc_id("vpc-1")
            .cidr_block("10.0.1.0/24")
            .availability_zone("eu-west-1b")
            .available_ip_address_count(251)
            .state(SubnetState::Available)
            .map_public_ip_on_launch(false)
            .build();
        let row = subnet_row(&subnet);
        assert_eq!(row.get("available_ips"), Some(&Field::Int(251)));
        assert_eq!(row.get("map_public_ip"), Some(&Field::Bool(false)));
        assert_eq!(row.get("name"), Some(&Field::Null));
        assert_eq!(row.get("az"), Some(&Field::Text("eu-west-1b".into())));
    }

    #[test]
    fn region_row_shape() {
        let region = Region::builder()
            .region_name("eu-west-1")
            .endpoint("ec2.eu-west-1.amazonaws.com")
            .opt_in_status("opt-in-not-required")
            .build();
        let row = region_row(&region);
        let names: Vec<_> = row.columns.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["name", "endpoint", "opt_in_status"]);
        assert_eq!(row.get("name"), Some(&Field::Text("eu-west-1".into())));
    }
}
