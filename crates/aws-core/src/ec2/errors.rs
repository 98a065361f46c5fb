//! Reading which id an EC2 error is about, from the service's message, so the shell can point at
//! the argument that named it. Not classification (that is [`crate::error`]).

use crate::error::{AwsError, ErrorKind};

/// Extracts the offending id from an EC2 NotFound/Malformed error message such as "The instance ID 'i-1' does not exist" or "Invalid id: \"i-xyz\"" (so the shell can point at that argument). None when the message names none.
///
/// Shapes understood (AWS and moto): the first single- or double-quoted text (`'i-1'`,
/// `'i-1, i-2'` → the first, `'[ami-1]'` → `ami-1`, `"i-xyz"`), else `Value (x) for parameter`.
/// Only service errors are read: a network or credentials message may quote anything.
pub fn offending_id(err: &AwsError) -> Option<String> {
    if !matches!(
        err.kind,
        ErrorKind::NotFound | ErrorKind::InvalidInput | ErrorKind::Service
    ) {
        return None;
    }
    quoted(&err.message)
        .or_else(|| parameter_value(&err.message))
        .and_then(first_id)
}

/// The text between the first quote (either kind) and the next quote of the same kind.
fn quoted(message: &str) -> Option<&str> {
    let start = message.find(['\'', '"'])?;
    let quote = &message[start..=start];
    let rest = &message[start + 1..];
    rest.find(quote).map(|end| &rest[..end])
}

/// `Value (i-x) for parameter instanceId is invalid.`
fn parameter_value(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("Value (")?;
    rest.split_once(')').map(|(value, _)| value)
}

/// The first id of a quoted list such as `i-1, i-2` or `[ami-1]`.
fn first_id(text: &str) -> Option<String> {
    text.split(',')
        .map(|id| id.trim_matches(|c: char| c == '[' || c == ']' || c.is_whitespace()))
        .find(|id| !id.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_of(kind: ErrorKind, message: &str) -> Option<String> {
        offending_id(&AwsError::new(kind, "EC2 DescribeInstances", message))
    }

    #[test]
    fn not_found_messages() {
        let cases = [
            (
                "The instance ID 'i-0123456789abcdef0' does not exist",
                "i-0123456789abcdef0",
            ),
            ("The instance IDs 'i-0aaa, i-0bbb' do not exist", "i-0aaa"),
            (
                "The image id '[ami-12345678]' does not exist",
                "ami-12345678",
            ),
            (
                "The volume 'vol-049df61146c4d7901' does not exist.",
                "vol-049df61146c4d7901",
            ),
            ("The snapshot 'snap-1234' does not exist.", "snap-1234"),
            (
                "The security group 'sg-903004f8' does not exist",
                "sg-903004f8",
            ),
            ("The vpc ID 'vpc-abc' does not exist", "vpc-abc"),
        ];
        for (message, id) in cases {
            assert_eq!(
                id_of(ErrorKind::NotFound, message).as_deref(),
                Some(id),
                "{message}"
            );
        }
    }

    #[test]
    fn malformed_messages() {
        assert_eq!(
            id_of(
                ErrorKind::InvalidInput,
                r#"Invalid id: "i-xyz" (expecting "i-...")"#
            )
            .as_deref(),
            Some("i-xyz")
        );
        assert_eq!(
            id_of(
                ErrorKind::InvalidInput,
                "Value (i-bad) for parameter instanceId is invalid."
            )
            .as_deref(),
            Some("i-bad")
        );
    }

    #[test]
    fn state_conflicts_name_the_instance() {
        let message = "The instance 'i-0abc' is not in a state from which it can be started.";
        assert_eq!(
            id_of(ErrorKind::Service, message).as_deref(),
            Some("i-0abc")
        );
    }

    #[test]
    fn none_when_no_id_is_named() {
        assert_eq!(
            id_of(ErrorKind::NotFound, "InvalidInstanceID.NotFound"),
            None
        );
        assert_eq!(
            id_of(ErrorKind::InvalidInput, "The instance ID '' does not exist"),
            None
        );
        assert_eq!(id_of(ErrorKind::InvalidInput, "unterminated 'quote"), None);
        assert_eq!(
            id_of(ErrorKind::Network, "cannot connect to 'localhost:5000'"),
            None
        );
        assert_eq!(id_of(ErrorKind::Throttled, "Request limit exceeded."), None);
    }
}
