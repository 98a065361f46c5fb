//! `s3://bucket/key` URLs: parsing and the bucket-naming rules, with the byte offset of the first
//! offending character so the shell can underline exactly that part of what the user typed.

use std::fmt;

/// A parsed `s3://bucket/key` (the key may be empty or a prefix).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct S3Url {
    pub bucket: String,
    pub key: String,
}

/// Why a URL was refused, and where in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlError {
    pub message: String,
    pub help: String,
    /// Byte offset of the offending part within the input.
    pub offset: usize,
    /// Byte length of the offending part (at least 1 when the input is not empty).
    pub len: usize,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UrlError {}

const SCHEME: &str = "s3://";

impl S3Url {
    /// Parses `s3://bucket[/key]`, checking the bucket name against S3's rules.
    pub fn parse(input: &str) -> Result<S3Url, UrlError> {
        let Some(rest) = input.strip_prefix(SCHEME) else {
            let scheme_len = input.find("://").map_or(input.len(), |i| i + 3);
            let message = if input.starts_with("s3:") {
                format!("malformed S3 URL `{input}`: it must start with `s3://`")
            } else if input.contains("://") {
                format!("`{input}` is not an S3 URL")
            } else {
                format!("`{input}` is not an S3 URL (no `s3://`)")
            };
            return Err(UrlError {
                message,
                help: "Write S3 locations as s3://bucket/key, for example s3://my-bucket/logs/2024/."
                    .into(),
                offset: 0,
                len: scheme_len.max(1).min(input.len()),
            });
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if let Err(mut err) = validate_bucket_name(bucket) {
            err.offset += SCHEME.len();
            if err.offset + err.len > input.len() {
                // Nothing follows `s3://`: the part at fault is the URL as typed.
                (err.offset, err.len) = (0, input.len());
            }
            return Err(err);
        }
        Ok(S3Url {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    /// The URL of a key in the same bucket.
    pub fn with_key(&self, key: impl Into<String>) -> Self {
        Self::new(self.bucket.clone(), key)
    }

    /// The `s3://` URL of `key` in this URL's bucket, as text: what `with_key(key).to_string()`
    /// spells, in one allocation of its exact length (a listing spells one per object).
    pub fn key_url(&self, key: &str) -> String {
        let mut url = String::with_capacity(SCHEME.len() + self.bucket.len() + 1 + key.len());
        url.push_str(SCHEME);
        url.push_str(&self.bucket);
        url.push('/');
        url.push_str(key);
        url
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.bucket, self.key)
    }
}

/// S3's bucket-naming rules (general purpose buckets): 3-63 characters of lowercase letters,
/// digits, dots and hyphens, starting and ending with a letter or digit, no `..`, not shaped like
/// an IP address, and none of the reserved prefixes and suffixes.
pub fn validate_bucket_name(name: &str) -> Result<(), UrlError> {
    let err = |message: String, offset: usize, len: usize| UrlError {
        message,
        help: "Bucket names are 3-63 characters of lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit.".into(),
        offset,
        len: len.max(1),
    };
    if name.is_empty() {
        return Err(err("the S3 URL has no bucket name".into(), 0, 0));
    }
    if let Some((i, c)) = name
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        let what = if c.is_ascii_uppercase() {
            "an uppercase letter".to_string()
        } else {
            format!("the character `{c}`")
        };
        return Err(err(
            format!("invalid bucket name `{name}`: it contains {what}"),
            i,
            c.len_utf8(),
        ));
    }
    if name.len() < 3 || name.len() > 63 {
        return Err(err(
            format!(
                "invalid bucket name `{name}`: it is {} characters long (3 to 63 allowed)",
                name.len()
            ),
            0,
            name.len(),
        ));
    }
    let bytes = name.as_bytes();
    for (i, b) in [(0, bytes[0]), (name.len() - 1, bytes[name.len() - 1])] {
        if !(b.is_ascii_lowercase() || b.is_ascii_digit()) {
            return Err(err(
                format!("invalid bucket name `{name}`: it must start and end with a letter or digit"),
                i,
                1,
            ));
        }
    }
    if let Some(i) = name.find("..") {
        return Err(err(
            format!("invalid bucket name `{name}`: it contains two adjacent dots"),
            i,
            2,
        ));
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Err(err(
            format!("invalid bucket name `{name}`: it is formatted like an IP address"),
            0,
            name.len(),
        ));
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            return Err(err(
                format!("invalid bucket name `{name}`: the prefix `{prefix}` is reserved"),
                0,
                prefix.len(),
            ));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", "--x-s3", "--table-s3"] {
        if name.ends_with(suffix) {
            return Err(err(
                format!("invalid bucket name `{name}`: the suffix `{suffix}` is reserved"),
                name.len() - suffix.len(),
                suffix.len(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_and_key() {
        assert_eq!(S3Url::parse("s3://my-bucket").unwrap(), S3Url::new("my-bucket", ""));
        assert_eq!(S3Url::parse("s3://my-bucket/").unwrap(), S3Url::new("my-bucket", ""));
        assert_eq!(
            S3Url::parse("s3://my.bucket/a/b.json").unwrap(),
            S3Url::new("my.bucket", "a/b.json")
        );
        assert_eq!(S3Url::new("b12", "k").to_string(), "s3://b12/k");
    }

    #[test]
    fn malformed_urls_point_at_the_scheme() {
        for input in ["s3:/bucket/key", "http://bucket/key", "bucket/key", "S3://bucket"] {
            let err = S3Url::parse(input).unwrap_err();
            assert_eq!(err.offset, 0, "{input}");
            assert!(err.message.contains("S3 URL"), "{input}: {}", err.message);
        }
        assert_eq!(S3Url::parse("http://bucket/key").unwrap_err().len, "http://".len());
    }

    #[test]
    fn bad_bucket_names_point_at_the_offending_part() {
        let err = S3Url::parse("s3://My-bucket/k").unwrap_err();
        assert_eq!((err.offset, err.len), (5, 1));
        assert!(err.message.contains("uppercase"));
        let err = S3Url::parse("s3://ab/k").unwrap_err();
        assert_eq!((err.offset, err.len), (5, 2));
        let err = S3Url::parse("s3://a..b/k").unwrap_err();
        assert_eq!((err.offset, err.len), (6, 2));
        let err = S3Url::parse("s3://bad_name").unwrap_err();
        assert_eq!((err.offset, err.len), (8, 1));
        assert!(S3Url::parse("s3://192.168.1.1").is_err());
        assert!(S3Url::parse("s3://-abc").is_err());
        assert!(S3Url::parse("s3://abc-").is_err());
        assert!(S3Url::parse("s3://xn--abc").is_err());
        let err = S3Url::parse("s3://data-s3alias").unwrap_err();
        assert_eq!((err.offset, err.len), (9, 8));
        assert!(S3Url::parse("s3:///key").unwrap_err().message.contains("no bucket"));
        // The s3_url fuzz target's property (seen broken in review): a span inside what was
        // typed.
        let err = S3Url::parse("s3://").unwrap_err();
        assert!(err.message.contains("no bucket"));
        assert_eq!((err.offset, err.len), (0, 5), "the whole URL, not a byte after it");
        assert_eq!((S3Url::parse("").unwrap_err().offset, S3Url::parse("").unwrap_err().len), (0, 0));
        assert!(S3Url::parse(&format!("s3://{}", "a".repeat(64))).is_err());
        assert!(S3Url::parse(&format!("s3://{}", "a".repeat(63))).is_ok());
    }
}
