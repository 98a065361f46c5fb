//! The tabular shape of AWS results: a [`Row`] of named [`Field`]s with typed values (sizes,
//! times, nested records), so that every listing is converted to shell values by one function
//! on the shell side. Not a general serialisation format.

use chrono::{DateTime, Utc};

/// One typed cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Null,
    Bool(bool),
    Int(i64),
    /// A size in bytes (shown as a filesize).
    Bytes(u64),
    Text(String),
    Time(DateTime<Utc>),
    List(Vec<Field>),
    /// A nested record with keys chosen at run time (tags, metadata).
    Record(Vec<(String, Field)>),
}

impl Field {
    pub fn text(s: Option<&str>) -> Field {
        s.map_or(Field::Null, |s| Field::Text(s.to_string()))
    }

    pub fn time(t: Option<&aws_smithy_types::DateTime>) -> Field {
        t.and_then(smithy_to_chrono).map_or(Field::Null, Field::Time)
    }

    pub fn bytes(n: Option<i64>) -> Field {
        n.map_or(Field::Null, |n| Field::Bytes(n.max(0) as u64))
    }

    pub fn int(n: Option<i32>) -> Field {
        n.map_or(Field::Null, |n| Field::Int(n.into()))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Field::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// A row: columns in display order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub columns: Vec<(&'static str, Field)>,
}

impl Row {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty row with room for `columns` (rows of many thousands of listed objects are built
    /// without growing, at their exact size).
    pub fn with_capacity(columns: usize) -> Self {
        Self {
            columns: Vec::with_capacity(columns),
        }
    }

    pub fn with(mut self, name: &'static str, field: Field) -> Self {
        self.columns.push((name, field));
        self
    }

    pub fn get(&self, name: &str) -> Option<&Field> {
        self.columns.iter().find(|(n, _)| *n == name).map(|(_, f)| f)
    }
}

/// Converts the SDK's timestamp; `None` only for instants chrono cannot represent.
pub fn smithy_to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
