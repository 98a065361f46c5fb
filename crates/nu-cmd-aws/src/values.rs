//! `aws-core` rows as Nushell values: sizes become filesizes, times datetimes, nested records
//! records. The one place where that mapping is decided.

use aws_core::row::{Field, Row};
use nu_protocol::{Record, Span, Value};

pub fn field_to_value(field: Field, span: Span) -> Value {
    match field {
        Field::Null => Value::nothing(span),
        Field::Bool(b) => Value::bool(b, span),
        Field::Int(i) => Value::int(i, span),
        Field::Bytes(n) => Value::filesize(i64::try_from(n).unwrap_or(i64::MAX), span),
        Field::Text(s) => Value::string(s, span),
        Field::Time(t) => Value::date(t.fixed_offset(), span),
        Field::List(items) => Value::list(
            items.into_iter().map(|f| field_to_value(f, span)).collect(),
            span,
        ),
        Field::Record(fields) => Value::record(
            fields
                .into_iter()
                .map(|(k, f)| (k, field_to_value(f, span)))
                .collect::<Record>(),
            span,
        ),
    }
}

pub fn row_to_value(row: Row, span: Span) -> Value {
    Value::record(
        row.columns
            .into_iter()
            .map(|(k, f)| (k.to_string(), field_to_value(f, span)))
            .collect::<Record>(),
        span,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn typed_fields_become_typed_values() {
        let span = Span::test_data();
        let t = chrono::Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        let row = Row::new()
            .with("name", Field::Text("x".into()))
            .with("size", Field::Bytes(1024))
            .with("modified", Field::Time(t))
            .with("tags", Field::Record(vec![("Team".into(), Field::Text("a".into()))]))
            .with("ids", Field::List(vec![Field::Text("sg-1".into())]))
            .with("gone", Field::Null);
        let value = row_to_value(row, span);
        let record = value.as_record().unwrap();
        assert_eq!(record.get("size"), Some(&Value::filesize(1024, span)));
        assert_eq!(record.get("modified"), Some(&Value::date(t.fixed_offset(), span)));
        assert_eq!(
            record.get("tags").unwrap().as_record().unwrap().get("Team"),
            Some(&Value::string("a", span))
        );
        assert_eq!(record.get("gone"), Some(&Value::nothing(span)));
        assert_eq!(record.columns().cloned().collect::<Vec<_>>(), ["name", "size", "modified", "tags", "ids", "gone"]);
    }
}
