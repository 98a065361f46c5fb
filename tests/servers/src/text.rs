//! Small text helpers shared by the servers: XML escaping, percent-decoding of query strings and
//! paths, and the date formats S3 uses.
//!
//! Not a general URL or XML library: just enough for the requests the AWS SDKs, the AWS CLI and
//! curl send to a loopback test server.

use std::fmt::Write as _;

/// `text` with the five XML special characters escaped, for element content and attributes.
pub fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// `xml_escape` undone, plus numeric character references (`&#47;`, `&#x2F;`); an unknown or
/// malformed reference is kept as it is.
pub fn xml_unescape(text: &str) -> String {
    let mut unescaped = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        unescaped.push_str(&rest[..start]);
        rest = &rest[start..];
        let reference = rest.find(';').map(|end| (&rest[1..end], end));
        let character = reference.and_then(|(name, _)| match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => {
                let number = name.strip_prefix('#')?;
                let code = match number.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => number.parse().ok()?,
                };
                char::from_u32(code)
            }
        });
        match (character, reference) {
            (Some(character), Some((_, end))) => {
                unescaped.push(character);
                rest = &rest[end + 1..];
            }
            _ => {
                unescaped.push('&');
                rest = &rest[1..];
            }
        }
    }
    unescaped.push_str(rest);
    unescaped
}

/// `%XX` sequences decoded; a malformed escape is kept as it is rather than rejected, and bytes
/// that do not form UTF-8 are replaced, because a test server should answer, not argue.
pub fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', high, low]) => hex_value(*high).zip(hex_value(*low)),
            _ => None,
        };
        if let Some((high, low)) = escaped {
            decoded.push(high << 4 | low);
            i += 3;
            continue;
        }
        decoded.push(if plus_is_space && bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// S3's `encoding-type=url` encoding: everything but unreserved characters and `/` as `%XX`.
pub fn percent_encode_key(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            encoded.push(byte as char);
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// The decoded `name=value` pairs of a query string, in order; a name without `=` has an empty
/// value (S3 sub-resources such as `?location` look like that).
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name, true), percent_decode(value, true))
        })
        .collect()
}

/// A UTC calendar time, from seconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday.
    pub weekday: u32,
}

impl UtcTime {
    pub fn from_unix_seconds(seconds: i64) -> UtcTime {
        let days = seconds.div_euclid(86_400);
        let second_of_day = seconds.rem_euclid(86_400) as u32;
        // Howard Hinnant's civil_from_days: the Gregorian date of a day count, without tables.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z.rem_euclid(146_097);
        let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_from_march = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
        let month = if month_from_march < 10 {
            month_from_march + 3
        } else {
            month_from_march - 9
        } as u32;
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        UtcTime {
            year,
            month,
            day,
            hour: second_of_day / 3600,
            minute: second_of_day / 60 % 60,
            second: second_of_day % 60,
            // 1970-01-01 was a Thursday.
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }

    /// `2024-01-01T00:00:00.000Z`, as in S3's XML listings.
    pub fn iso8601(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `Mon, 01 Jan 2024 00:00:00 GMT`, as in HTTP headers (`Last-Modified`).
    pub fn http_date(&self) -> String {
        const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
            WEEKDAYS[self.weekday as usize % 7],
            self.day,
            MONTHS[(self.month as usize + 11) % 12],
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_known_calendar_days() {
        let new_year_2024 = UtcTime::from_unix_seconds(1_704_067_200);
        assert_eq!(new_year_2024.iso8601(), "2024-01-01T00:00:00.000Z");
        assert_eq!(new_year_2024.http_date(), "Mon, 01 Jan 2024 00:00:00 GMT");
        // 2024 is a leap year: 366 days later is 2025-01-01, a Wednesday.
        let later = UtcTime::from_unix_seconds(1_704_067_200 + 366 * 86_400 + 3_723);
        assert_eq!(later.iso8601(), "2025-01-01T01:02:03.000Z");
        assert_eq!(later.http_date(), "Wed, 01 Jan 2025 01:02:03 GMT");
        assert_eq!(
            UtcTime::from_unix_seconds(951_782_400).iso8601(),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            UtcTime::from_unix_seconds(0).http_date(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    #[test]
    fn percent_decoding_tolerates_malformed_input() {
        assert_eq!(percent_decode("obj%2F000%20x+y", true), "obj/000 x y");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("100%", true), "100%");
        assert_eq!(percent_decode("%zz%4", true), "%zz%4");
        assert_eq!(percent_decode("%ff", true), "\u{fffd}");
    }

    #[test]
    fn query_pairs_keep_order_and_bare_names() {
        assert_eq!(
            query_pairs("list-type=2&prefix=obj%2F&location&&x="),
            vec![
                ("list-type".to_owned(), "2".to_owned()),
                ("prefix".to_owned(), "obj/".to_owned()),
                ("location".to_owned(), String::new()),
                ("x".to_owned(), String::new()),
            ]
        );
    }

    #[test]
    fn key_encoding_keeps_slashes() {
        assert_eq!(percent_encode_key("a b/c&d"), "a%20b/c%26d");
        assert_eq!(xml_escape("<a&'\">"), "&lt;a&amp;&apos;&quot;&gt;");
    }

    #[test]
    fn xml_unescape_undoes_xml_escape() {
        let text = "<a&'\"> b";
        assert_eq!(xml_unescape(&xml_escape(text)), text);
        assert_eq!(xml_unescape("a&#47;b&#x2F;c"), "a/b/c");
        assert_eq!(xml_unescape("a & b &bogus; &#xZZ; &"), "a & b &bogus; &#xZZ; &");
    }
}
