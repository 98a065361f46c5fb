//! ListObjectsV2 answers read by a parser made for their one shape, in place of the SDK's.
//!
//! Profiled in a release build (callgrind, 20 pages of 1,000 objects), the SDK spends about 30
//! million instructions per page deserializing: a generic XML tokenizer with a scoped decoder per
//! element and, before that, `body_is_error`, which tokenizes the whole page once more only to
//! learn that its root is not `<Error>` (the decoder drains the document on drop). That is most of
//! a listing's CPU. The shape of a `ListBucketResult` is small and fixed, so here it is read in
//! one pass into the same `ListObjectsV2Output` the SDK would build; everything downstream
//! (rows, `du`, `sync`) is unchanged.
//!
//! It is installed per request by [`HandParsedListing`], an interceptor that wraps the
//! operation's own deserializer: an answer that is not a `200` or not exactly the shape below
//! (an `<Error>` root, comments, CDATA, namespace prefixes, an unknown entity, a value the SDK
//! would reject) goes to the SDK's deserializer untouched, so errors, redirects and odd endpoints
//! behave exactly as before. Elements it does not know are skipped, as the SDK skips them.
//!
//! A document it takes is one the SDK reads to the same output: well formed by the rules of the
//! SDK's tokenizer (xmlparser) everywhere, skipped parts included, since the SDK stops reading
//! at the first fault it meets and keeps what it had. The fuzz target `s3_list_xml` holds the two
//! to that on hostile input (see `crate::fuzzing::s3_list_xml`).
//!
//! Not here: the requests (see [`super::list`]), or any other operation's answers.

use std::sync::LazyLock;

use aws_sdk_s3::operation::list_objects_v2::{ListObjectsV2, ListObjectsV2Output};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumType, CommonPrefix, EncodingType, Object, ObjectStorageClass, Owner, RequestCharged, RestoreStatus,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{BeforeDeserializationInterceptorContextMut, Output, OutputOrError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::client::ser_de::{DeserializeResponse, SharedResponseDeserializer};
use aws_smithy_runtime_api::http::header_parse::one_or_none_bytes;
use aws_smithy_types::DateTime;
use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;
use aws_smithy_types::config_bag::{ConfigBag, FrozenLayer, Storable, StoreReplace};
use aws_smithy_types::date_time::Format;

/// Puts [`parse_list_objects_v2`] in front of the operation's deserializer, for one
/// ListObjectsV2 request (`.customize().interceptor(HandParsedListing)`).
#[derive(Debug, Default, Clone, Copy)]
pub struct HandParsedListing;

/// Marks a request whose deserializer is already wrapped (retries run the interceptor again).
#[derive(Debug, Clone)]
struct Wrapped;

impl Storable for Wrapped {
    type Storer = StoreReplace<Self>;
}

impl Intercept for HandParsedListing {
    fn name(&self) -> &'static str {
        "HandParsedListing"
    }

    fn modify_before_deserialization(
        &self,
        _context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Wrapped>().is_some() {
            return Ok(());
        }
        if sdk_deserializer().is_some() {
            cfg.interceptor_state().store_put(SharedResponseDeserializer::new(HandParsed));
            cfg.interceptor_state().store_put(Wrapped);
        }
        Ok(())
    }
}

/// The operation's own configuration, made by its runtime plugin once: it holds the SDK's
/// ListObjectsV2 deserializer, which can be neither named nor cloned, only borrowed from there.
static OPERATION_LAYER: LazyLock<Option<FrozenLayer>> = LazyLock::new(|| ListObjectsV2::new().config());

pub(crate) fn sdk_deserializer() -> Option<&'static SharedResponseDeserializer> {
    OPERATION_LAYER.as_ref()?.load::<SharedResponseDeserializer>()
}

/// A whole answer read by hand, or `None` where the SDK is to read it: a `200` whose body
/// [`parse_list_objects_v2`] takes and whose `x-amz-request-charged` the SDK's own header parser
/// reads (one value at most, UTF-8, trimmed; a second value or bytes that are not text are the
/// SDK's error to report).
///
/// The one difference from the SDK's output: it also keeps the request ids of
/// `x-amz-request-id` and `x-amz-id-2`, which only the SDK's own code can set; nuaws reads
/// neither (its errors come from the SDK's path, which keeps them).
pub(crate) fn read_by_hand(response: &HttpResponse) -> Option<ListObjectsV2Output> {
    if response.status().as_u16() != 200 {
        return None;
    }
    let charged = one_or_none_bytes::<RequestCharged>(response.headers().get_all_bytes("x-amz-request-charged")).ok()?;
    let out = parse_list_objects_v2(response.body().bytes()?)?;
    Some(out.set_request_charged(charged).build())
}

/// What the SDK's own deserializer makes of an answer: the reference [`read_by_hand`] is held
/// to, by the tests below and the fuzz target `s3_list_xml`.
pub(crate) fn read_by_sdk(response: &HttpResponse) -> Result<ListObjectsV2Output, String> {
    let sdk = sdk_deserializer().ok_or("no ListObjectsV2 deserializer")?;
    let output = sdk.deserialize_nonstreaming_with_config(response, &ConfigBag::base()).map_err(|e| format!("{e:?}"))?;
    output.downcast::<ListObjectsV2Output>().map_err(|_| "not a ListObjectsV2Output".to_string())
}

/// The hand parser, and the SDK's deserializer for everything it does not take.
#[derive(Debug)]
struct HandParsed;

impl DeserializeResponse for HandParsed {
    fn deserialize_nonstreaming_with_config(&self, response: &HttpResponse, cfg: &ConfigBag) -> OutputOrError {
        if let Some(out) = read_by_hand(response) {
            #[cfg(test)]
            tests::TAKEN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return Ok(Output::erase(out));
        }
        match sdk_deserializer() {
            Some(sdk) => sdk.deserialize_nonstreaming_with_config(response, cfg),
            // Not installed without it (see the interceptor).
            None => Err(aws_smithy_runtime_api::client::orchestrator::OrchestratorError::other("no ListObjectsV2 deserializer")),
        }
    }
}

/// A `ListBucketResult` document as the SDK would read it, or `None` where this parser does not
/// take it (then the SDK reads it, and reports what is wrong with it).
pub fn parse_list_objects_v2(body: &[u8]) -> Option<aws_sdk_s3::operation::list_objects_v2::builders::ListObjectsV2OutputBuilder> {
    let mut xml = Scanner {
        s: std::str::from_utf8(body).ok()?,
        at: 0,
        opened: "",
    };
    xml.prolog()?;
    let Token::Open { name: "ListBucketResult", empty } = xml.next()? else {
        return None;
    };
    let mut out = ListObjectsV2Output::builder();
    let (mut contents, mut prefixes) = (Vec::new(), Vec::new());
    children(&mut xml, "ListBucketResult", empty, |xml, name, empty| {
        let o = std::mem::take(&mut out);
        out = match name {
            "Contents" => {
                contents.push(object(xml, empty)?);
                o
            }
            "CommonPrefixes" => {
                prefixes.push(common_prefix(xml, empty)?);
                o
            }
            "Name" => o.name(xml.text(empty)?),
            "Prefix" => o.prefix(xml.text(empty)?),
            "Delimiter" => o.delimiter(xml.text(empty)?),
            "ContinuationToken" => o.continuation_token(xml.text(empty)?),
            "NextContinuationToken" => o.next_continuation_token(xml.text(empty)?),
            "StartAfter" => o.start_after(xml.text(empty)?),
            "EncodingType" => o.encoding_type(EncodingType::from(xml.text(empty)?.as_str())),
            "IsTruncated" => o.is_truncated(boolean(&xml.text(empty)?)?),
            "MaxKeys" => o.max_keys(xml.text(empty)?.parse().ok()?),
            "KeyCount" => o.key_count(xml.text(empty)?.parse().ok()?),
            _ => {
                xml.skip(name, empty)?;
                o
            }
        };
        Some(())
    })?;
    if !contents.is_empty() {
        out = out.set_contents(Some(contents));
    }
    if !prefixes.is_empty() {
        out = out.set_common_prefixes(Some(prefixes));
    }
    xml.only_space_left().then_some(out)
}

fn object(xml: &mut Scanner<'_>, empty: bool) -> Option<Object> {
    let mut object = Object::builder();
    children(xml, "Contents", empty, |xml, name, empty| {
        let o = std::mem::take(&mut object);
        object = match name {
            "Key" => o.key(xml.text(empty)?),
            "LastModified" => o.last_modified(DateTime::from_str(&xml.text(empty)?, Format::DateTimeWithOffset).ok()?),
            "ETag" => o.e_tag(xml.text(empty)?),
            "ChecksumAlgorithm" => o.checksum_algorithm(ChecksumAlgorithm::from(xml.text(empty)?.as_str())),
            "ChecksumType" => o.checksum_type(ChecksumType::from(xml.text(empty)?.as_str())),
            "Size" => o.size(xml.text(empty)?.parse().ok()?),
            "StorageClass" => o.storage_class(ObjectStorageClass::from(xml.text(empty)?.as_str())),
            "Owner" => o.owner(owner(xml, empty)?),
            "RestoreStatus" => o.restore_status(restore_status(xml, empty)?),
            _ => {
                xml.skip(name, empty)?;
                o
            }
        };
        Some(())
    })?;
    Some(object.build())
}

/// Reads the children of the element just opened (`name`, empty or not) with `child`, which
/// gets each child's name and emptiness and must read it through its end; text between children
/// is ignored, as the SDK ignores it.
fn children<'a>(xml: &mut Scanner<'a>, name: &str, empty: bool, mut child: impl FnMut(&mut Scanner<'a>, &'a str, bool) -> Option<()>) -> Option<()> {
    if empty {
        return Some(());
    }
    loop {
        match xml.next()? {
            Token::Text(_) => {}
            Token::Close(closed) => return (closed == name).then_some(()),
            Token::Open { name, empty } => child(xml, name, empty)?,
        }
    }
}

fn owner(xml: &mut Scanner<'_>, empty: bool) -> Option<Owner> {
    let mut owner = Owner::builder();
    children(xml, "Owner", empty, |xml, name, empty| {
        match name {
            "ID" => owner = std::mem::take(&mut owner).id(xml.text(empty)?),
            "DisplayName" => owner = std::mem::take(&mut owner).display_name(xml.text(empty)?),
            _ => xml.skip(name, empty)?,
        }
        Some(())
    })?;
    Some(owner.build())
}

fn restore_status(xml: &mut Scanner<'_>, empty: bool) -> Option<RestoreStatus> {
    let mut status = RestoreStatus::builder();
    children(xml, "RestoreStatus", empty, |xml, name, empty| {
        match name {
            "IsRestoreInProgress" => status = std::mem::take(&mut status).is_restore_in_progress(boolean(&xml.text(empty)?)?),
            "RestoreExpiryDate" => {
                status = std::mem::take(&mut status).restore_expiry_date(DateTime::from_str(&xml.text(empty)?, Format::DateTimeWithOffset).ok()?)
            }
            _ => xml.skip(name, empty)?,
        }
        Some(())
    })?;
    Some(status.build())
}

fn common_prefix(xml: &mut Scanner<'_>, empty: bool) -> Option<CommonPrefix> {
    let mut prefix = CommonPrefix::builder();
    children(xml, "CommonPrefixes", empty, |xml, name, empty| {
        match name {
            "Prefix" => prefix = std::mem::take(&mut prefix).prefix(xml.text(empty)?),
            _ => xml.skip(name, empty)?,
        }
        Some(())
    })?;
    Some(prefix.build())
}

/// Smithy's booleans: exactly `true` or `false`.
fn boolean(text: &str) -> Option<bool> {
    match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[derive(Debug, PartialEq)]
enum Token<'a> {
    Open { name: &'a str, empty: bool },
    Close(&'a str),
    /// Raw, entities not yet replaced.
    Text(&'a str),
}

/// Tags and text of a document, for the subset of XML S3 writes; `None` for anything else.
struct Scanner<'a> {
    s: &'a str,
    at: usize,
    /// The name of the last element opened: what [`Scanner::text`] must see closed.
    opened: &'a str,
}

impl<'a> Scanner<'a> {
    /// The XML declaration and whitespace before the root. The SDK's tokenizer reads a
    /// declaration only at the very start (`<?xml` and a space), and holds it to its grammar;
    /// one after whitespace is an error there, and so is left to it here (`next` refuses `<?`).
    fn prolog(&mut self) -> Option<()> {
        const OPEN: &str = "<?xml ";
        if let Some(rest) = self.s.strip_prefix(OPEN) {
            let end = rest.find("?>")?;
            declaration(&rest[..end])?;
            self.at = OPEN.len() + end + 2;
        }
        self.skip_space();
        Some(())
    }

    fn skip_space(&mut self) {
        let rest = &self.s[self.at..];
        self.at += rest.len() - rest.trim_start_matches(XML_SPACE).len();
    }

    fn only_space_left(&mut self) -> bool {
        self.skip_space();
        self.at == self.s.len()
    }

    fn next(&mut self) -> Option<Token<'a>> {
        let rest = &self.s[self.at..];
        if !rest.starts_with('<') {
            let end = rest.find('<')?;
            let text = &rest[..end];
            if !is_char_data(text) {
                return None;
            }
            self.at += end;
            return Some(Token::Text(text));
        }
        let bytes = rest.as_bytes();
        match bytes.get(1)? {
            // Comments, CDATA, DOCTYPE, processing instructions: the SDK's to read.
            b'!' | b'?' => None,
            b'/' => {
                // Only ever compared with the name of an open element, which was checked.
                let end = rest.find('>')?;
                self.at += end + 1;
                Some(Token::Close(rest[2..end].trim_end_matches(XML_SPACE)))
            }
            _ => {
                // '<' Name (S Attribute)* S? ('>' | '/>'). A name with a prefix (`s3:Key`,
                // which the SDK would match as `Key`) ends at its `:`, and is refused below.
                let name_end = rest[1..].find(|c: char| !is_name_char(c)).map_or(rest.len(), |n| n + 1);
                let name = &rest[1..name_end];
                if !starts_name(name) {
                    return None;
                }
                let mut at = name_end;
                loop {
                    let spaced = bytes.get(at).is_some_and(|b| is_space(*b));
                    while bytes.get(at).is_some_and(|b| is_space(*b)) {
                        at += 1;
                    }
                    let empty = match bytes.get(at)? {
                        b'>' => false,
                        b'/' if bytes.get(at + 1) == Some(&b'>') => {
                            at += 1;
                            true
                        }
                        // Attributes are spaced apart, and from the name.
                        _ if spaced => {
                            at = attribute(rest, at)?;
                            continue;
                        }
                        _ => return None,
                    };
                    self.at += at + 1;
                    self.opened = name;
                    return Some(Token::Open { name, empty });
                }
            }
        }
    }

    /// The text of the element just opened, through its end tag: entities replaced, nothing
    /// trimmed (keys keep their spaces).
    fn text(&mut self, empty: bool) -> Option<String> {
        if empty {
            return Some(String::new());
        }
        let element = self.opened;
        let mut text = String::new();
        loop {
            match self.next()? {
                Token::Text(raw) => unescape_into(raw, &mut text)?,
                Token::Close(name) => return (name == element).then_some(text),
                Token::Open { .. } => return None,
            }
        }
    }

    /// Past the end of an element this parser does not read.
    fn skip(&mut self, name: &str, empty: bool) -> Option<()> {
        if empty {
            return Some(());
        }
        let mut open = vec![name];
        while let Some(innermost) = open.last().copied() {
            match self.next()? {
                Token::Text(_) => {}
                Token::Open { name, empty: false } => open.push(name),
                Token::Open { empty: true, .. } => {}
                Token::Close(name) if name == innermost => {
                    open.pop();
                }
                Token::Close(_) => return None,
            }
        }
        Some(())
    }
}

/// XML's whitespace (the SDK's tokenizer knows no other).
const XML_SPACE: [char; 4] = [' ', '\t', '\r', '\n'];

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The ASCII characters of XML names but `:` (names beyond ASCII are valid XML, S3 writes
/// none, and they are left to the SDK).
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Whether `name` (of [`is_name_char`]s) is a name: not empty, not starting with a digit, `-`
/// or `.`.
fn starts_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

/// The offset in the start tag `tag` just past the attribute (`name = "value"`, either quote)
/// that begins at `at`, or `None` for one the SDK's tokenizer refuses or whose value the SDK
/// could not unescape (it would then stop reading the element's parent there). Its name may
/// have a prefix (`xmlns:xsi`); its value holds no `<` and only XML characters.
fn attribute(tag: &str, at: usize) -> Option<usize> {
    let rest = &tag[at..];
    let name_len = rest.find(|c: char| !(is_name_char(c) || c == ':')).unwrap_or(rest.len());
    let (prefix, local) = rest[..name_len].split_once(':').unwrap_or(("", &rest[..name_len]));
    if !(prefix.is_empty() || starts_name(prefix)) || !starts_name(local) || local.contains(':') {
        return None;
    }
    let eq = rest[name_len..].trim_start_matches(XML_SPACE).strip_prefix('=')?;
    let quoted = eq.trim_start_matches(XML_SPACE);
    let quote = quoted.chars().next().filter(|c| matches!(c, '"' | '\''))?;
    let (value, _) = quoted[1..].split_once(quote)?;
    if value.contains('<') || !is_char_data(value) || (value.contains('&') && unescape_into(value, &mut String::new()).is_none()) {
        return None;
    }
    // Past the opening quote, the value and the closing quote (both one byte).
    Some(tag.len() - quoted.len() + value.len() + 2)
}

/// Whether `text` is character data as the SDK's tokenizer takes it: only XML's characters (no
/// control character but tab, newline and carriage return; no U+FFFE, U+FFFF) and no `]]>`.
fn is_char_data(text: &str) -> bool {
    let bytes = text.as_bytes();
    let chars_ok = bytes.iter().enumerate().all(|(i, &b)| match b {
        b'\t' | b'\n' | b'\r' => true,
        0..=0x1F => false,
        // U+FFFE and U+FFFF are EF BF BE and EF BF BF.
        0xEF => !(bytes.get(i + 1) == Some(&0xBF) && matches!(bytes.get(i + 2), Some(0xBE | 0xBF))),
        _ => true,
    });
    chars_ok && !text.contains("]]>")
}

/// The inside of an XML declaration (`version="1.0" encoding="UTF-8"`, between `<?xml ` and
/// `?>`) by the grammar the SDK's tokenizer holds it to: a version `1.` and digits, then an
/// encoding name and `standalone` (`yes` or `no`), each optional, in that order, spaced apart.
fn declaration(mut decl: &str) -> Option<()> {
    let spaced = |d: &str| d.is_empty() || d.starts_with(XML_SPACE);
    let version = pseudo_attribute(&mut decl, "version")?;
    if !version.strip_prefix("1.")?.bytes().all(|b| b.is_ascii_digit()) || !spaced(decl) {
        return None;
    }
    decl = decl.trim_start_matches(XML_SPACE);
    if decl.starts_with("encoding") {
        let encoding = pseudo_attribute(&mut decl, "encoding")?;
        if !encoding.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) || !spaced(decl) {
            return None;
        }
        decl = decl.trim_start_matches(XML_SPACE);
    }
    if decl.starts_with("standalone") && !matches!(pseudo_attribute(&mut decl, "standalone")?, "yes" | "no") {
        return None;
    }
    decl.trim_start_matches(XML_SPACE).is_empty().then_some(())
}

/// The value of `name = "value"` (either quote) at the start of `decl`, past any whitespace;
/// `decl` is left just after it.
fn pseudo_attribute<'a>(decl: &mut &'a str, name: &str) -> Option<&'a str> {
    let rest = decl.trim_start_matches(XML_SPACE).strip_prefix(name)?;
    let rest = rest.trim_start_matches(XML_SPACE).strip_prefix('=')?.trim_start_matches(XML_SPACE);
    let quote = rest.chars().next().filter(|c| matches!(c, '"' | '\''))?;
    let (value, after) = rest[1..].split_once(quote)?;
    *decl = after;
    Some(value)
}

/// `raw` with XML's five entities and character references replaced, appended to `out`.
fn unescape_into(raw: &str, out: &mut String) -> Option<()> {
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let end = rest[amp..].find(';')? + amp;
        let entity = &rest[amp + 1..end];
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                // As the SDK reads them: `#x` in lowercase only (`&#X41;` is its error).
                let code = match entity.strip_prefix("#x") {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => entity.strip_prefix('#')?.parse::<u32>().ok()?,
                };
                // Only the characters XML allows (no NUL, no lone surrogates).
                char::from_u32(code).filter(|&c| matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}'))?
            }
        };
        out.push(c);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_sdk_s3::config::Region;
    use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn};
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers the hand parser took (the tests of the SDK's path must see it not take them).
    pub(super) static TAKEN: AtomicUsize = AtomicUsize::new(0);

    /// Answers every request with one body.
    #[derive(Debug, Clone)]
    struct Answer(u16, String);

    impl HttpConnector for Answer {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            let mut response = HttpResponse::new(StatusCode::try_from(self.0).unwrap(), SdkBody::from(self.1.clone()));
            response.headers_mut().insert("content-length", self.1.len().to_string());
            HttpConnectorFuture::ready(Ok(response))
        }
    }

    fn client(status: u16, body: &str) -> aws_sdk_s3::Client {
        let connector = SharedHttpConnector::new(Answer(status, body.to_string()));
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .http_client(http_client_fn(move |_, _| connector.clone()))
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// What the SDK reads of `body`, and what it reads with the hand parser in front: both
    /// outputs, or both errors' texts.
    fn both(status: u16, body: &str) -> (Result<ListObjectsV2Output, String>, Result<ListObjectsV2Output, String>) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let client = client(status, body);
            let sdk = client.list_objects_v2().bucket("b").send().await.map_err(|e| format!("{}", aws_smithy_types::error::display::DisplayErrorContext(e)));
            let hand = client
                .list_objects_v2()
                .bucket("b")
                .customize()
                .interceptor(HandParsedListing)
                .send()
                .await
                .map_err(|e| format!("{}", aws_smithy_types::error::display::DisplayErrorContext(e)));
            (sdk, hand)
        })
    }

    const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

    fn page(contents: &str) -> String {
        format!(
            "{DECLARATION}<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><Prefix>p/</Prefix>\
             <KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>\
             <ContinuationToken>t0</ContinuationToken><NextContinuationToken>1/abc+=</NextContinuationToken>{contents}</ListBucketResult>"
        )
    }

    const OBJECT: &str = "<Contents><Key>p/a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#13;&#x1F600; ü</Key>\
        <LastModified>2024-05-01T10:20:30.000Z</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>\
        <ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm><ChecksumAlgorithm>CRC32</ChecksumAlgorithm><ChecksumType>FULL_OBJECT</ChecksumType>\
        <Size>12345678901</Size><Owner><ID>abc</ID><DisplayName>me</DisplayName></Owner><StorageClass>GLACIER_IR</StorageClass>\
        <RestoreStatus><IsRestoreInProgress>false</IsRestoreInProgress><RestoreExpiryDate>2024-06-01T00:00:00Z</RestoreExpiryDate></RestoreStatus></Contents>";

    #[test]
    fn pages_read_by_hand_equal_what_the_sdk_reads() {
        let pretty = OBJECT.replace("><", ">\n   <");
        let cases = [
            page(OBJECT),
            page(&format!("{OBJECT}<Contents><Key>  spaced  </Key><Size>0</Size><StorageClass>NEW_CLASS</StorageClass></Contents>")),
            page(&pretty),
            page("<Contents><Key/><Size>1</Size></Contents><Contents/>"),
            page("<CommonPrefixes><Prefix>p/a/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>p/b c/</Prefix></CommonPrefixes><Delimiter>/</Delimiter><EncodingType>url</EncodingType>"),
            page("<Unknown a=\"x>y\"><Nested><Key>not a key</Key></Nested><Empty/></Unknown><Contents><Key>k</Key><Future><Key>x</Key></Future></Contents><StartAfter>s</StartAfter>"),
            format!("{DECLARATION}<ListBucketResult><Name>b</Name><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>\n"),
            "<ListBucketResult/>".to_string(),
        ];
        for body in &cases {
            assert!(parse_list_objects_v2(body.as_bytes()).is_some(), "the hand parser takes {body}");
            let taken = TAKEN.load(Ordering::SeqCst);
            let (sdk, hand) = both(200, body);
            assert!(TAKEN.load(Ordering::SeqCst) > taken, "the request went through the hand parser: {body}");
            assert_eq!(hand, sdk, "{body}");
            assert!(sdk.is_ok(), "{body}: {sdk:?}");
        }
    }

    #[test]
    fn what_the_hand_parser_does_not_take_the_sdk_reads_as_before() {
        let cases = [
            (200, format!("{DECLARATION}<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>")),
            (200, page("<!-- a comment --><Contents><Key>k</Key></Contents>")),
            (200, page("<Contents><Key><![CDATA[k]]></Key></Contents>")),
            (200, page("<Contents><Key>a &nbsp; b</Key></Contents>")),
            (200, page("<Contents><Size>big</Size></Contents>")),
            (200, page("<Contents><LastModified>yesterday</LastModified></Contents>")),
            (200, page("<IsTruncated>yes</IsTruncated>")),
            (200, page("<s3:Contents><s3:Key>k</s3:Key></s3:Contents>")),
            (200, page("<Contents><Key>k</Key>")),
            (200, "<ListBucketResult><Name>b</Name></ListBucketResult><Trailing/>".to_string()),
            (200, "not xml".to_string()),
            // What the SDK's tokenizer refuses, and so stops reading at (keeping what it had):
            // a declaration after whitespace or of another grammar, an uppercase `&#X`, an
            // attribute without a value or whose value it cannot unescape, characters XML does
            // not allow, `]]>` in text, a broken empty tag, a name starting with a digit.
            (200, format!(" {}", page(""))),
            (200, page("").replacen("version=\"1.0\"", "version=\"2.0\"", 1)),
            (200, page("").replacen("encoding=\"UTF-8\"", "encoding=\"UTF 8\"", 1)),
            (200, page("<Contents><Key>&#X41;</Key></Contents>")),
            (200, page("<Unknown attribute><Key>x</Key></Unknown><Contents><Key>k</Key></Contents>")),
            (200, page("<Unknown a=\"&bad;\"/><Contents><Key>k</Key></Contents>")),
            (200, page("<Unknown a=\"1\"b=\"2\"/><Contents><Key>k</Key></Contents>")),
            (200, page("<Contents><Key>a\u{1}b</Key></Contents><Contents><Key>k</Key></Contents>")),
            (200, page("<Contents><Key>a]]>b</Key></Contents>")),
            (200, page("<Contents><Key/ ><Size>1</Size></Contents>")),
            (200, page("<Contents><1Key>k</1Key></Contents>")),
            (404, format!("{DECLARATION}<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>")),
            (301, format!("{DECLARATION}<Error><Code>PermanentRedirect</Code><Endpoint>b.s3.eu-west-1.amazonaws.com</Endpoint></Error>")),
        ];
        for (status, body) in &cases {
            if *status == 200 {
                assert!(parse_list_objects_v2(body.as_bytes()).is_none(), "the hand parser leaves {body}");
            }
            let (sdk, hand) = both(*status, body);
            assert_eq!(hand, sdk, "{status} {body}");
        }
    }

    fn answer(charged: &[&str], body: &str) -> HttpResponse {
        let mut response = HttpResponse::new(StatusCode::try_from(200).unwrap(), SdkBody::from(body));
        for value in charged {
            response.headers_mut().append("x-amz-request-charged", value.to_string());
        }
        response
    }

    #[test]
    fn request_charged_is_read_as_the_sdk_reads_it() {
        let body = page(OBJECT);
        for charged in [&[][..], &["requester"], &[" requester\t"], &["other"], &[""]] {
            let response = answer(charged, &body);
            assert_eq!(read_by_hand(&response).as_ref(), read_by_sdk(&response).as_ref().ok(), "{charged:?}");
        }
        // Two values are the SDK's error, and so not the hand parser's to answer.
        let twice = answer(&["requester", "requester"], &body);
        assert!(read_by_sdk(&twice).is_err());
        assert_eq!(read_by_hand(&twice), None);
    }

    #[test]
    fn declarations_are_held_to_the_sdk_tokenizers_grammar() {
        let root = "<ListBucketResult><Name>b</Name></ListBucketResult>";
        for declaration in ["", "<?xml version=\"1.0\"?>", "<?xml version='1.1' encoding='utf-8' standalone='yes'?>", "<?xml  version = \"1.0\"  standalone=\"no\" ?>\n"] {
            let body = format!("{declaration}{root}");
            let response = answer(&[], &body);
            assert!(read_by_hand(&response).is_some(), "{body}");
            assert_eq!(read_by_hand(&response).as_ref(), read_by_sdk(&response).as_ref().ok(), "{body}");
        }
        for declaration in ["<?xml?>", "<?xml version=\"1\"?>", "<?xml encoding=\"UTF-8\"?>", "<?xml version=\"1.0\"encoding=\"UTF-8\"?>", "<?xml version=\"1.0\" standalone=\"maybe\"?>", "<?xml version=\"1.0\" standalone=\"yes\" encoding=\"UTF-8\"?>"] {
            let body = format!("{declaration}{root}");
            assert!(parse_list_objects_v2(body.as_bytes()).is_none(), "{body}");
        }
    }

    #[test]
    fn the_scanner_refuses_what_is_not_well_formed() {
        for body in ["<ListBucketResult", "<ListBucketResult><Name>b</Name", "<ListBucketResult><Name>b</Wrong></ListBucketResult>", "<>", "<ListBucketResult><Name>a<b</Name></ListBucketResult>"] {
            assert!(parse_list_objects_v2(body.as_bytes()).is_none(), "{body}");
        }
        assert!(parse_list_objects_v2(&[0x3c, 0xff, 0x3e]).is_none());
        let mut text = String::new();
        assert_eq!(unescape_into("&#0;", &mut text), None);
        assert_eq!(unescape_into("&#xD800;", &mut text), None);
        assert_eq!(unescape_into("a & b", &mut text), None);
    }
}
