//! The SigV4 date fields a request carries — the credential scope
//! (`<key>/<YYYYMMDD>/<region>/<service>/aws4_request`) and the request
//! time (`YYYYMMDD'T'HHMMSS'Z'`) — checked before the request reaches
//! s3s.
//!
//! Why: s3s 0.14.1 parses their digits with `c - b'0'` evaluated before it
//! checks `c.is_ascii_digit()` (utils/parser.rs), so a byte below `'0'` in
//! a date position overflows — a panic in every build with overflow checks
//! (debug builds, the fuzzer's). Found by the `s3_request` fuzz target with
//! a presigned URL's `X-Amz-Credential`. Every field s3s parses that way is
//! checked here, exactly where s3s would look, and a malformed one gets the
//! answer S3 gives:
//!
//! - presigned URL (`X-Amz-Signature` in the query): `X-Amz-Credential`
//!   and `X-Amz-Date` → 400 `AuthorizationQueryParametersError`;
//! - `Authorization: AWS4-HMAC-SHA256 Credential=...` → 400
//!   `AuthorizationHeaderMalformed`; its `x-amz-date` header → 403
//!   `AccessDenied`;
//! - a browser POST form (`multipart/form-data`): its `x-amz-credential`
//!   and `x-amz-date` fields → 400 `InvalidArgument`. `transport` reads
//!   the form's first [`FORM_SCAN_BYTES`] (all s3s reads fields from) and
//!   hands them, then the rest, to s3s.
//!
//! The checks are stricter than s3s (the whole scope's shape, not only its
//! date), never looser, so nothing s3s would parse is let through
//! unchecked.

use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{HeaderMap, Method};

/// How much of a POST form is read for its fields: s3s's limit on the
/// bytes before the file (`form_max_fields_size`, 20 MiB by default), so
/// every field s3s can parse lies inside.
pub(super) const FORM_SCAN_BYTES: usize = 20 << 20;

/// An answer that ends a request before s3s: S3's status, code and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rejection {
    /// HTTP status.
    pub(super) status: u16,
    /// S3 error code.
    pub(super) code: &'static str,
    /// S3's message (static text: nothing of the request is echoed).
    pub(super) message: &'static str,
}

impl Rejection {
    /// The S3 XML error body.
    pub(super) fn xml(&self) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <Error><Code>{}</Code><Message>{}</Message></Error>",
            self.code, self.message
        )
    }
}

const QUERY_CREDENTIAL: Rejection = Rejection {
    status: 400,
    code: "AuthorizationQueryParametersError",
    message: "X-Amz-Credential must be &lt;access key&gt;/&lt;YYYYMMDD&gt;/&lt;region&gt;/&lt;service&gt;/aws4_request.",
};

const QUERY_DATE: Rejection = Rejection {
    status: 400,
    code: "AuthorizationQueryParametersError",
    message: "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\".",
};

const HEADER_CREDENTIAL: Rejection = Rejection {
    status: 400,
    code: "AuthorizationHeaderMalformed",
    message: "The authorization header is malformed; the Credential is mal-formed; \
              expecting \"&lt;YOUR-AKID&gt;/YYYYMMDD/REGION/SERVICE/aws4_request\".",
};

const HEADER_DATE: Rejection = Rejection {
    status: 403,
    code: "AccessDenied",
    message: "AWS authentication requires a valid Date or x-amz-date header.",
};

/// A POST form's malformed credential or date field (S3 answers a POST
/// policy's bad fields with 400 InvalidArgument).
pub(super) const FORM_FIELD: Rejection = Rejection {
    status: 400,
    code: "InvalidArgument",
    message: "x-amz-credential must be &lt;access key&gt;/&lt;YYYYMMDD&gt;/&lt;region&gt;/\
              &lt;service&gt;/aws4_request and x-amz-date yyyyMMdd'T'HHmmss'Z'.",
};

/// Whether `scope` is `<key>/<YYYYMMDD>/<region>/<service>/aws4_request`
/// with every part non-empty and the date 8 ASCII digits.
pub(super) fn credential_ok(scope: &str) -> bool {
    let parts: Vec<&str> = scope.split('/').collect();
    matches!(parts.as_slice(), [key, date, region, service, "aws4_request"]
        if !key.is_empty() && !region.is_empty() && !service.is_empty() && digits(date, 8))
}

/// Whether `time` is `YYYYMMDD'T'HHMMSS'Z'` (16 bytes, digits where digits go).
pub(super) fn amz_date_ok(time: &str) -> bool {
    let bytes = time.as_bytes();
    bytes.len() == 16
        && bytes[8] == b'T'
        && bytes[15] == b'Z'
        && bytes[..8].iter().all(u8::is_ascii_digit)
        && bytes[9..15].iter().all(u8::is_ascii_digit)
}

fn digits(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_digit())
}

/// Checks a request's query and headers (see the module doc).
pub(super) fn check(query: Option<&str>, headers: &HeaderMap) -> Result<(), Rejection> {
    if let Some(query) = query {
        check_query(query)?;
    }
    check_headers(headers)
}

/// A presigned URL's fields, decoded as s3s decodes them
/// (`application/x-www-form-urlencoded`: `+` is a space, `%XX` a byte).
fn check_query(query: &str) -> Result<(), Rejection> {
    let pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(name), form_decode(value))
        })
        .collect();
    if !pairs.iter().any(|(name, _)| name == "X-Amz-Signature") {
        return Ok(());
    }
    for (name, value) in &pairs {
        match name.as_str() {
            "X-Amz-Credential" if !credential_ok(value) => return Err(QUERY_CREDENTIAL),
            "X-Amz-Date" if !amz_date_ok(value) => return Err(QUERY_DATE),
            _ => {}
        }
    }
    Ok(())
}

/// The `Authorization` header's credential (as s3s finds it: after the
/// algorithm and white space, `Credential=` up to the `,`) and the
/// `x-amz-date` headers of a SigV4-signed request.
fn check_headers(headers: &HeaderMap) -> Result<(), Rejection> {
    let mut signed_v4 = false;
    for value in headers.get_all(AUTHORIZATION) {
        let Ok(value) = std::str::from_utf8(value.as_bytes()) else {
            continue;
        };
        if value
            .strip_prefix("AWS ")
            .is_some_and(|rest| rest.contains(':'))
        {
            continue; // SigV2 (s3s's test for it): no date of it is parsed.
        }
        signed_v4 = true;
        let Some((_, rest)) = value.split_once(|c: char| c.is_ascii_whitespace()) else {
            continue;
        };
        let Some(credential) = rest.trim_start().strip_prefix("Credential=") else {
            continue; // s3s fails to parse the header before any date.
        };
        let scope = credential.split(',').next().unwrap_or_default();
        if !credential_ok(scope) {
            return Err(HEADER_CREDENTIAL);
        }
    }
    if signed_v4 {
        for value in headers.get_all("x-amz-date") {
            if let Ok(value) = std::str::from_utf8(value.as_bytes())
                && !amz_date_ok(value)
            {
                return Err(HEADER_DATE);
            }
        }
    }
    Ok(())
}

/// Whether s3s may take the request for a POST form upload (any
/// `multipart` content type: looser than s3s's `multipart/form-data`).
pub(super) fn is_form_post(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::POST
        && headers.get_all(CONTENT_TYPE).iter().any(|value| {
            value
                .as_bytes()
                .windows(9)
                .any(|w| w.eq_ignore_ascii_case(b"multipart"))
        })
}

/// Checks every `x-amz-credential` and `x-amz-date` field in the first
/// bytes of a POST form. Each part's `Content-Disposition` carries
/// `name="<field>"` (the name compared without case, as s3s does); its
/// value starts after the part's headers (the first empty line, `\r\n` or
/// `\n` ended as httparse allows) and is taken up to the next line end —
/// s3s's value up to the boundary, or a prefix of it, which holds the
/// scope's date whenever the check passes.
pub(super) fn check_form_fields(form: &[u8]) -> Result<(), Rejection> {
    const NAME: &[u8] = b"name=\"";
    let mut at = 0;
    while let Some(found) = find(&form[at..], NAME) {
        at += found + NAME.len();
        let rest = &form[at..];
        let check: fn(&str) -> bool = if starts_with_ignore_case(rest, b"x-amz-credential\"") {
            credential_ok
        } else if starts_with_ignore_case(rest, b"x-amz-date\"") {
            amz_date_ok
        } else {
            continue;
        };
        // No end of the part's headers in these bytes: s3s cannot have
        // parsed this field either.
        let Some(value) = field_value(rest) else {
            continue;
        };
        if !std::str::from_utf8(value).is_ok_and(check) {
            return Err(FORM_FIELD);
        }
    }
    Ok(())
}

/// The first line after the first empty line of `rest` (its trailing
/// `\r` dropped; to the end of `rest` when no line end follows).
fn field_value(rest: &[u8]) -> Option<&[u8]> {
    let mut lines = rest.split(|&b| b == b'\n');
    lines.next(); // the rest of the Content-Disposition line
    let blank = lines.position(|line| line.is_empty() || line == b"\r");
    blank?;
    let value = lines.next()?;
    Some(value.strip_suffix(b"\r").unwrap_or(value))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn starts_with_ignore_case(text: &[u8], prefix: &[u8]) -> bool {
    text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a
/// byte (a `%` not followed by two hex digits stays), invalid UTF-8 is
/// replaced — what `form_urlencoded`, under s3s's query parser, does.
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    const GOOD_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Credential=AKID%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
        &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
        &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

    #[test]
    fn scopes_and_dates() {
        assert!(credential_ok("AKID/20130524/us-east-1/s3/aws4_request"));
        for bad in [
            "AKID/2013-524/us-east-1/s3/aws4_request",
            "AKID/2013052/us-east-1/s3/aws4_request",
            "AKID/201305245/us-east-1/s3/aws4_request",
            "AKID/ 0130524/us-east-1/s3/aws4_request",
            "/20130524/us-east-1/s3/aws4_request",
            "AKID/20130524//s3/aws4_request",
            "AKID/20130524/us-east-1/s3/aws4_request/",
            "AKID/20130524/us-east-1/s3/aws5_request",
            "AKID/20130524",
            "",
        ] {
            assert!(!credential_ok(bad), "{bad:?}");
        }
        assert!(amz_date_ok("20130524T000000Z"));
        for bad in [
            "20130524T00000Z",
            "2013052/T000000Z",
            "20130524 000000Z",
            "20130524T000000z",
            "20130524T0000-0Z",
        ] {
            assert!(!amz_date_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn presigned_query_fields_are_decoded_then_checked() {
        assert_eq!(check(Some(GOOD_QUERY), &HeaderMap::new()), Ok(()));
        let bad_date = GOOD_QUERY.replace("20130524%2F", "2013%2C524%2F");
        assert_eq!(
            check(Some(&bad_date), &HeaderMap::new()),
            Err(QUERY_CREDENTIAL)
        );
        // Encoded and `+` forms of the same bad bytes are caught too.
        let plus = GOOD_QUERY.replace("20130524%2F", "2013+524%2F");
        assert_eq!(check(Some(&plus), &HeaderMap::new()), Err(QUERY_CREDENTIAL));
        let name = GOOD_QUERY.replace("X-Amz-Date=20130524T", "X-Amz-%44ate=2013%2F524T");
        assert_eq!(check(Some(&name), &HeaderMap::new()), Err(QUERY_DATE));
        // Without a signature s3s parses none of it.
        let unsigned = bad_date.replace("&X-Amz-Signature", "&Other");
        assert_eq!(check(Some(&unsigned), &HeaderMap::new()), Ok(()));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn authorization_header_and_its_date() {
        let good = "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, \
                    SignedHeaders=host;x-amz-date, Signature=abc";
        let ok = headers(&[("authorization", good), ("x-amz-date", "20130524T000000Z")]);
        assert_eq!(check(None, &ok), Ok(()));
        let bad = good.replace("20130524/", "2013.524/");
        assert_eq!(
            check(None, &headers(&[("authorization", &bad)])),
            Err(HEADER_CREDENTIAL)
        );
        let bad_time = headers(&[("authorization", good), ("x-amz-date", "2013052!T000000Z")]);
        assert_eq!(check(None, &bad_time), Err(HEADER_DATE));
        // "AWS " without a colon is not SigV2 to s3s: it is parsed as SigV4.
        let not_v2 = headers(&[(
            "authorization",
            "AWS Credential=AKID/2013 524/r/s3/aws4_request,",
        )]);
        assert_eq!(check(None, &not_v2), Err(HEADER_CREDENTIAL));
        // SigV2 and unsigned requests keep whatever x-amz-date they have.
        let v2 = headers(&[
            ("authorization", "AWS AKID:sig"),
            ("x-amz-date", "yesterday"),
        ]);
        assert_eq!(check(None, &v2), Ok(()));
        assert_eq!(check(None, &headers(&[("x-amz-date", "soon")])), Ok(()));
    }

    fn form(credential: &str, date: &str) -> Vec<u8> {
        format!(
            "--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n\
             --b\r\nContent-Disposition: form-data; name=\"X-Amz-Credential\"\r\n\r\n{credential}\r\n\
             --b\nContent-Disposition: form-data; name=\"x-amz-date\"\n\n{date}\n\
             --b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nbody\r\n--b--\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn post_form_fields() {
        let scope = "AKID/20130524/us-east-1/s3/aws4_request";
        assert_eq!(check_form_fields(&form(scope, "20130524T000000Z")), Ok(()));
        let bad_scope = form(
            "AKID/2013 524/us-east-1/s3/aws4_request",
            "20130524T000000Z",
        );
        assert_eq!(check_form_fields(&bad_scope), Err(FORM_FIELD));
        assert_eq!(
            check_form_fields(&form(scope, "2013/524T000000Z")),
            Err(FORM_FIELD)
        );
        // A value cut by the end of the scanned bytes is checked as far as
        // it goes; a part whose headers do not end there is not a field.
        let whole = form("AKID/2013.524/us-east-1/s3/aws4_request", "x");
        let cut = find(&whole, b"2013.5").unwrap() + 6;
        assert_eq!(check_form_fields(&whole[..cut]), Err(FORM_FIELD));
        let headers_cut = find(&whole, b"Credential").unwrap() + 12;
        assert_eq!(check_form_fields(&whole[..headers_cut]), Ok(()));
        assert_eq!(check_form_fields(b""), Ok(()));
    }

    #[test]
    fn form_posts_are_recognized() {
        let form = headers(&[("content-type", "Multipart/Form-Data; boundary=b")]);
        assert!(is_form_post(&Method::POST, &form));
        assert!(!is_form_post(&Method::PUT, &form));
        let xml = headers(&[("content-type", "application/xml")]);
        assert!(!is_form_post(&Method::POST, &xml));
    }

    #[test]
    fn form_decoding_matches_form_urlencoded() {
        assert_eq!(form_decode("a+b%2Fc%zz%4"), "a b/c%zz%4");
        assert_eq!(form_decode("%41%4a%4A"), "AJJ");
        assert_eq!(form_decode("%FF"), "\u{FFFD}");
    }
}
