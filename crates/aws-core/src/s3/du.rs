//! The aggregation of `aws s3 du`: objects of a listing summed into groups by prefix depth,
//! storage class and age, in one pass, memory bounded by the number of groups (never by the
//! number of objects). A snapshot can be taken at any time, for running totals while a long scan
//! goes on.
//!
//! Not here: the listing itself (see [`super::list::list_listed`]) or when to show a snapshot.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::row::{Field, Row};
use crate::s3::list::Listed;
use crate::s3::url::S3Url;

/// The age buckets of `LastModified`, youngest first: (label, up to this many days).
pub const AGES: [(&str, i64); 6] = [("<1d", 1), ("1-7d", 7), ("7-30d", 30), ("30-90d", 90), ("90-365d", 365), (">1y", i64::MAX)];

/// How to group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grouping {
    /// Levels of `/`-separated prefix below the URL's key (0: the URL itself).
    pub depth: usize,
    pub storage_class: bool,
    pub age: bool,
    /// By kind of version (current, noncurrent, delete marker; incomplete upload for the
    /// uploads of [`super::uploads::list_uploads`]), for listings of versions and uploads.
    pub versions: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    prefix: String,
    storage_class: Option<String>,
    age: Option<usize>,
    version: Option<&'static str>,
}

/// The totals of one group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    pub objects: u64,
    pub bytes: u64,
    pub oldest: Option<DateTime<Utc>>,
    pub newest: Option<DateTime<Utc>>,
}

/// A running aggregation over the objects of one or more listings.
#[derive(Debug)]
pub struct Du {
    grouping: Grouping,
    now: DateTime<Utc>,
    groups: BTreeMap<GroupKey, Totals>,
}

/// The prefix of `key` at `depth` levels below `base` (the URL's key): `base` and then up to
/// `depth` segments each ending in `/`; an object with fewer levels counts at the deepest
/// prefix it has.
pub fn prefix_at(base: &str, key: &str, depth: usize) -> String {
    let rest = key.strip_prefix(base).unwrap_or(key);
    let mut end = 0;
    for _ in 0..depth {
        match rest[end..].find('/') {
            Some(i) => end += i + 1,
            None => break,
        }
    }
    format!("{base}{}", &rest[..end])
}

/// The age bucket of a time, as an index into [`AGES`].
pub fn age_of(modified: Option<DateTime<Utc>>, now: DateTime<Utc>) -> usize {
    let days = modified.map_or(0, |t| (now - t).num_days());
    AGES.iter().position(|(_, limit)| days < *limit).unwrap_or(AGES.len() - 1)
}

impl Du {
    pub fn new(grouping: Grouping, now: DateTime<Utc>) -> Self {
        Self {
            grouping,
            now,
            groups: BTreeMap::new(),
        }
    }

    /// Counts one object of the listing of `url`.
    pub fn add(&mut self, url: &S3Url, object: &Listed) {
        self.add_version(url, object, None);
    }

    /// Counts one version (or delete marker) of the listing of versions of `url`.
    pub fn add_version(&mut self, url: &S3Url, object: &Listed, kind: Option<&'static str>) {
        let prefix = prefix_at(&url.key, &object.key, self.grouping.depth);
        let key = GroupKey {
            prefix: url.with_key(prefix).to_string(),
            storage_class: self
                .grouping
                .storage_class
                .then(|| object.storage_class.clone().unwrap_or_else(|| "STANDARD".into())),
            age: self.grouping.age.then(|| age_of(object.modified, self.now)),
            version: if self.grouping.versions { kind } else { None },
        };
        let totals = self.groups.entry(key).or_default();
        totals.objects += 1;
        totals.bytes += object.size;
        if let Some(t) = object.modified {
            totals.oldest = Some(totals.oldest.map_or(t, |o| o.min(t)));
            totals.newest = Some(totals.newest.map_or(t, |n| n.max(t)));
        }
    }

    /// Counts an empty listing of `url` as a group of nothing (so an empty prefix has a row).
    pub fn touch(&mut self, url: &S3Url) {
        if self.groups.keys().any(|k| k.prefix.starts_with(&url.to_string())) {
            return;
        }
        let key = GroupKey {
            prefix: url.to_string(),
            storage_class: None,
            age: None,
            version: None,
        };
        self.groups.entry(key).or_default();
    }

    /// The groups so far, in order of prefix, class, age and version: `prefix`, then
    /// `storage_class`, `age` and `version` when grouped by them, `objects`, `bytes`, `oldest`,
    /// `newest`.
    pub fn rows(&self) -> Vec<Row> {
        self.groups
            .iter()
            .map(|(key, totals)| {
                let mut row = Row::new().with("prefix", Field::Text(key.prefix.clone()));
                if self.grouping.storage_class {
                    row = row.with("storage_class", Field::text(key.storage_class.as_deref()));
                }
                if self.grouping.age {
                    row = row.with("age", Field::text(key.age.map(|a| AGES[a].0)));
                }
                if self.grouping.versions {
                    row = row.with("version", Field::text(key.version));
                }
                row.with("objects", Field::Int(totals.objects as i64))
                    .with("bytes", Field::Bytes(totals.bytes))
                    .with("oldest", totals.oldest.map_or(Field::Null, Field::Time))
                    .with("newest", totals.newest.map_or(Field::Null, Field::Time))
            })
            .collect()
    }

    pub fn groups(&self) -> usize {
        self.groups.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str, size: u64, class: &str, days_old: i64, now: DateTime<Utc>) -> Listed {
        Listed {
            key: key.into(),
            size,
            modified: Some(now - chrono::Duration::days(days_old)),
            etag: None,
            storage_class: Some(class.into()),
            checksum_algorithm: None,
        }
    }

    #[test]
    fn prefixes_at_a_depth() {
        assert_eq!(prefix_at("", "a/b/c.txt", 0), "");
        assert_eq!(prefix_at("", "a/b/c.txt", 1), "a/");
        assert_eq!(prefix_at("", "a/b/c.txt", 2), "a/b/");
        assert_eq!(prefix_at("", "a/b/c.txt", 5), "a/b/");
        assert_eq!(prefix_at("", "top.txt", 1), "");
        assert_eq!(prefix_at("logs/", "logs/2026/x", 1), "logs/2026/");
        assert_eq!(prefix_at("logs", "logs.csv", 1), "logs");
        assert_eq!(prefix_at("", "a//b", 2), "a//");
    }

    #[test]
    fn groups_sum_by_prefix_class_and_age() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let url = S3Url::new("b", "");
        let mut du = Du::new(Grouping { depth: 1, storage_class: true, age: true, versions: false }, now);
        for o in [
            obj("a/1", 10, "STANDARD", 0, now),
            obj("a/2", 5, "STANDARD", 0, now),
            obj("a/3", 7, "GLACIER", 400, now),
            obj("b/x/1", 1, "STANDARD", 3, now),
            obj("top", 2, "STANDARD", 40, now),
        ] {
            du.add(&url, &o);
        }
        let rows = du.rows();
        let flat: Vec<(String, String, String, i64, u64)> = rows
            .iter()
            .map(|r| {
                let text = |c| r.get(c).and_then(Field::as_str).unwrap_or_default().to_string();
                let Some(Field::Int(n)) = r.get("objects") else { panic!() };
                let Some(Field::Bytes(b)) = r.get("bytes") else { panic!() };
                (text("prefix"), text("storage_class"), text("age"), *n, *b)
            })
            .collect();
        assert_eq!(
            flat,
            [
                ("s3://b/".to_string(), "STANDARD".to_string(), "30-90d".to_string(), 1, 2),
                ("s3://b/a/".into(), "GLACIER".into(), ">1y".into(), 1, 7),
                ("s3://b/a/".into(), "STANDARD".into(), "<1d".into(), 2, 15),
                ("s3://b/b/".into(), "STANDARD".into(), "1-7d".into(), 1, 1),
            ]
        );
        assert_eq!(rows[2].get("oldest"), Some(&Field::Time(now)));
        assert!(Du::new(Grouping::default(), now).rows().is_empty());
    }

    #[test]
    fn an_empty_prefix_still_has_a_row() {
        let now = Utc::now();
        let mut du = Du::new(Grouping::default(), now);
        du.touch(&S3Url::new("empty", "x/"));
        let rows = du.rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get("objects"), Some(&Field::Int(0)));
        let cols: Vec<_> = rows[0].columns.iter().map(|(c, _)| *c).collect();
        assert_eq!(cols, ["prefix", "objects", "bytes", "oldest", "newest"]);
    }
}
