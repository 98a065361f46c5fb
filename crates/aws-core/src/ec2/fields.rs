//! Cell helpers shared by every EC2 row: tags to (name, record), SDK enums and flags to fields,
//! GiB sizes to bytes, ISO date strings to times. Not the rows themselves.

use aws_sdk_ec2::types::{PlatformValues, Tag};
use chrono::{DateTime, Utc};

use crate::row::Field;

/// Bytes in one GiB: EC2 gives volume and snapshot sizes in GiB.
const GIB: i64 = 1 << 30;

/// The `name` cell (the `Name` tag, Null without one) and the `tags` cell (every tag, keys
/// sorted) of a resource.
pub(crate) fn name_and_tags(tags: &[Tag]) -> (Field, Field) {
    let name = tags
        .iter()
        .find(|t| t.key() == Some("Name"))
        .map_or(Field::Null, |t| Field::text(t.value()));
    let mut record: Vec<(String, Field)> = tags
        .iter()
        .filter_map(|t| {
            let value = Field::Text(t.value().unwrap_or_default().to_string());
            Some((t.key()?.to_string(), value))
        })
        .collect();
    record.sort_by(|a, b| a.0.cmp(&b.0));
    (name, Field::Record(record))
}

/// An SDK enum (state, type, architecture) as its wire text.
pub(crate) fn enum_text<E: AsRef<str>>(value: Option<&E>) -> Field {
    Field::text(value.map(AsRef::as_ref))
}

pub(crate) fn flag(value: Option<bool>) -> Field {
    value.map_or(Field::Null, Field::Bool)
}

/// A size the API gives in GiB, as bytes.
pub(crate) fn gib(size: Option<i32>) -> Field {
    Field::bytes(size.map(|g| i64::from(g) * GIB))
}

pub(crate) fn count(n: usize) -> Field {
    Field::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// A list of ids (security groups, attached instances).
pub(crate) fn id_list<'a>(ids: impl Iterator<Item = &'a str>) -> Field {
    Field::List(ids.map(|id| Field::Text(id.to_string())).collect())
}

/// The platform of an instance or image: the detailed one ("Linux/UNIX", "Windows", "Red Hat
/// Enterprise Linux") when the API gives it, else the bare Windows marker, else Null (the API
/// sets that marker on Windows only).
pub(crate) fn platform(details: Option<&str>, platform: Option<&PlatformValues>) -> Field {
    match details {
        Some(d) if !d.is_empty() => Field::Text(d.to_string()),
        _ => enum_text(platform),
    }
}

/// A timestamp the API gives as an ISO 8601 string (image creation dates); Null if unparsable.
pub(crate) fn iso_time(text: Option<&str>) -> Field {
    text.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(Field::Null, |t| Field::Time(t.with_timezone(&Utc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(key: &str, value: &str) -> Tag {
        Tag::builder().key(key).value(value).build()
    }

    #[test]
    fn name_comes_from_the_name_tag_and_tags_are_sorted() {
        let (name, tags) =
            name_and_tags(&[tag("Env", "prod"), tag("Name", "web-1"), tag("App", "shop")]);
        assert_eq!(name, Field::Text("web-1".into()));
        let keys: Vec<&str> = match &tags {
            Field::Record(r) => r.iter().map(|(k, _)| k.as_str()).collect(),
            other => panic!("tags must be a record, got {other:?}"),
        };
        assert_eq!(keys, ["App", "Env", "Name"]);
    }

    #[test]
    fn no_name_tag_gives_null_and_an_empty_record() {
        assert_eq!(name_and_tags(&[]), (Field::Null, Field::Record(vec![])));
        let (name, _) = name_and_tags(&[tag("name", "lowercase is not Name")]);
        assert_eq!(name, Field::Null);
    }

    #[test]
    fn gib_becomes_bytes() {
        assert_eq!(gib(Some(8)), Field::Bytes(8 * 1024 * 1024 * 1024));
        assert_eq!(gib(Some(16384)), Field::Bytes(16384 << 30));
        assert_eq!(gib(None), Field::Null);
    }

    #[test]
    fn iso_dates_parse_to_utc() {
        let Field::Time(t) = iso_time(Some("2024-03-01T12:34:56.000Z")) else {
            panic!("expected a time");
        };
        assert_eq!(t.to_rfc3339(), "2024-03-01T12:34:56+00:00");
        assert_eq!(iso_time(Some("yesterday")), Field::Null);
        assert_eq!(iso_time(None), Field::Null);
    }

    #[test]
    fn platform_prefers_details() {
        assert_eq!(
            platform(Some("Linux/UNIX"), None),
            Field::Text("Linux/UNIX".into())
        );
        assert_eq!(
            platform(None, Some(&PlatformValues::Windows)),
            Field::Text("Windows".into())
        );
        assert_eq!(platform(Some(""), None), Field::Null);
    }
}
