//! The storage listings: EBS volumes, EBS snapshots and AMIs, each page turned into rows. Sizes
//! come from the API in GiB and leave here in bytes. Images and snapshots are listed for the
//! owners of [`ListRequest::owners`], never for everyone by default.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Image, Snapshot, Volume};

use super::ListRequest;
use super::fields::{enum_text, flag, gib, id_list, iso_time, name_and_tags, platform};
use crate::error::AwsError;
use crate::pagination::Page;
use crate::row::{Field, Row};

pub(crate) async fn volumes_page(
    client: &Client,
    request: &ListRequest,
    token: Option<String>,
) -> Page<Row> {
    let out = client
        .describe_volumes()
        .set_volume_ids(request.ids_param())
        .set_filters(request.filters_param())
        .set_max_results(request.page_size())
        .set_next_token(token)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("EC2 DescribeVolumes", e))?;
    Ok((
        out.volumes().iter().map(volume_row).collect(),
        out.next_token,
    ))
}

pub(crate) async fn snapshots_page(
    client: &Client,
    request: &ListRequest,
    token: Option<String>,
) -> Page<Row> {
    let out = client
        .describe_snapshots()
        .set_snapshot_ids(request.ids_param())
        .set_owner_ids(request.owners_param())
        .set_filters(request.filters_param())
        .set_max_results(request.page_size())
        .set_next_token(token)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("EC2 DescribeSnapshots", e))?;
    Ok((
        out.snapshots().iter().map(snapshot_row).collect(),
        out.next_token,
    ))
}

pub(crate) async fn images_page(
    client: &Client,
    request: &ListRequest,
    token: Option<String>,
) -> Page<Row> {
    let out = client
        .describe_images()
        .set_image_ids(request.ids_param())
        .set_owners(request.owners_param())
        .set_filters(request.filters_param())
        .set_max_results(request.page_size())
        .set_next_token(token)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("EC2 DescribeImages", e))?;
    Ok((out.images().iter().map(image_row).collect(), out.next_token))
}

pub(crate) fn volume_row(v: &Volume) -> Row {
    let (name, tags) = name_and_tags(v.tags());
    let attached = v.attachments().iter().filter_map(|a| a.instance_id());
    Row::new()
        .with("id", Field::text(v.volume_id()))
        .with("name", name)
        .with("size", gib(v.size()))
        .with("type", enum_text(v.volume_type()))
        .with("state", enum_text(v.state()))
        .with("az", Field::text(v.availability_zone()))
        .with("encrypted", flag(v.encrypted()))
        .with("iops", Field::int(v.iops()))
        .with("created", Field::time(v.create_time()))
        .with("attached_to", id_list(attached))
        .with("tags", tags)
}

pub(crate) fn snapshot_row(s: &Snapshot) -> Row {
    let (name, tags) = name_and_tags(s.tags());
    Row::new()
        .with("id", Field::text(s.snapshot_id()))
        .with("name", name)
        .with("volume_id", Field::text(s.volume_id()))
        .with("size", gib(s.volume_size()))
        .with("state", enum_text(s.state()))
        .with("progress", Field::text(s.progress()))
        .with("started", Field::time(s.start_time()))
        .with("owner_id", Field::text(s.owner_id()))
        .with("encrypted", flag(s.encrypted()))
        .with("description", Field::text(s.description()))
        .with("tags", tags)
}

pub(crate) fn image_row(i: &Image) -> Row {
    let (name_tag, tags) = name_and_tags(i.tags());
    // An AMI has a name of its own; the Name tag is only a fallback.
    let name = i.name().map_or(name_tag, |n| Field::Text(n.to_string()));
    Row::new()
        .with("id", Field::text(i.image_id()))
        .with("name", name)
        .with("state", enum_text(i.state()))
        .with("owner_id", Field::text(i.owner_id()))
        .with("created", iso_time(i.creation_date()))
        .with("architecture", enum_text(i.architecture()))
        .with("platform", platform(i.platform_details(), i.platform()))
        .with("root_device_type", enum_text(i.root_device_type()))
        .with("public", flag(i.public()))
        .with("description", Field::text(i.description()))
        .with("tags", tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{
        ArchitectureValues, DeviceType, ImageState, SnapshotState, Tag, VolumeAttachment,
        VolumeState, VolumeType,
    };
    use aws_smithy_types::DateTime;

    const GIB: u64 = 1024 * 1024 * 1024;

    #[test]
    fn volume_row_shape() {
        let volume = Volume::builder()
            .volume_id("vol-1")
            .size(100)
            .volume_type(VolumeType::Gp3)
            .state(VolumeState::InUse)
            .availability_zone("us-east-1a")
            .encrypted(true)
            .iops(3000)
            .create_time(DateTime::from_secs(1_600_000_000))
            .attachments(
                VolumeAttachment::builder()
                    .instance_id("i-1")
                    .device("/dev/xvda")
                    .build(),
            )
            .attachments(VolumeAttachment::builder().instance_id("i-2").build())
            .tags(Tag::builder().key("Name").value("data").build())
            .build();
        let row = volume_row(&volume);
        let names: Vec<_> = row.columns.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "id",
                "name",
                "size",
                "type",
                "state",
                "az",
                "encrypted",
                "iops",
                "created",
                "attached_to",
                "tags"
            ]
        );
        assert_eq!(row.get("size"), Some(&Field::Bytes(100 * GIB)));
        assert_eq!(row.get("type"), Some(&Field::Text("gp3".into())));
        assert_eq!(row.get("state"), Some(&Field::Text("in-use".into())));
        assert_eq!(row.get("iops"), Some(&Field::Int(3000)));
        assert_eq!(row.get("name"), Some(&Field::Text("data".into())));
        assert_eq!(
            row.get("attached_to"),
            Some(&Field::List(vec![
                Field::Text("i-1".into()),
                Field::Text("i-2".into())
            ]))
        );
    }

    #[test]
    fn snapshot_row_shape() {
        let snapshot = Snapshot::builder()
            .snapshot_id("snap-1")
            .volume_id("vol-1")
            .volume_size(8)
            .state(SnapshotState::Completed)
            .progress("100%")
            .start_time(DateTime::from_secs(1_600_000_000))
            .owner_id("123456789012")
            .encrypted(false)
            .build();
        let row = snapshot_row(&snapshot);
        assert_eq!(row.get("size"), Some(&Field::Bytes(8 * GIB)));
        assert_eq!(row.get("state"), Some(&Field::Text("completed".into())));
        assert_eq!(row.get("progress"), Some(&Field::Text("100%".into())));
        assert_eq!(row.get("encrypted"), Some(&Field::Bool(false)));
        assert_eq!(row.get("description"), Some(&Field::Null));
        assert!(matches!(row.get("started"), Some(Field::Time(_))));
    }

    #[test]
    fn image_row_shape() {
        let image = Image::builder()
            .image_id("ami-1")
            .name("ubuntu-24.04")
            .state(ImageState::Available)
            .owner_id("099720109477")
            .creation_date("2024-05-01T10:00:00.000Z")
            .architecture(ArchitectureValues::Arm64)
            .platform_details("Linux/UNIX")
            .root_device_type(DeviceType::Ebs)
            .public(true)
            .build();
        let row = image_row(&image);
        assert_eq!(row.get("name"), Some(&Field::Text("ubuntu-24.04".into())));
        assert_eq!(row.get("state"), Some(&Field::Text("available".into())));
        assert_eq!(row.get("architecture"), Some(&Field::Text("arm64".into())));
        assert_eq!(row.get("platform"), Some(&Field::Text("Linux/UNIX".into())));
        assert_eq!(
            row.get("root_device_type"),
            Some(&Field::Text("ebs".into()))
        );
        assert_eq!(row.get("public"), Some(&Field::Bool(true)));
        let Some(Field::Time(t)) = row.get("created") else {
            panic!("created must be a time");
        };
        assert_eq!(t.to_rfc3339(), "2024-05-01T10:00:00+00:00");
    }
}
