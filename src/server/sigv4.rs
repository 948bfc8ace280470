//! AWS Signature Version 4 verification of a request, used when the server
//! is configured with access keys (by default any credentials are
//! accepted, as DynamoDB Local does). Errors are DynamoDB's:
//! no `Authorization` → `MissingAuthenticationTokenException`, a malformed
//! one → `IncompleteSignatureException`, an unknown key →
//! `UnrecognizedClientException`, a wrong signature or a date more than
//! [`SKEW_SECONDS_MAX`] from the server's clock →
//! `InvalidSignatureException`.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::error::WireError;
use super::http::Request;

/// How far a request's `X-Amz-Date` may be from the server's clock (AWS
/// allows 15 minutes either way).
pub const SKEW_SECONDS_MAX: i64 = 15 * 60;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The parts of an `Authorization` header.
struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(header: &str) -> Result<Authorization<'_>, WireError> {
    let incomplete = || {
        WireError::incomplete_signature(format!(
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' \
             parameters. Authorization={header}"
        ))
    };
    let rest = header.strip_prefix(ALGORITHM).ok_or_else(|| {
        WireError::incomplete_signature(format!(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
                 header. Unsupported algorithm in Authorization={header}"
        ))
    })?;
    let mut parts: BTreeMap<&str, &str> = BTreeMap::new();
    for part in rest.split(',') {
        if let Some((name, value)) = part.trim().split_once('=') {
            parts.insert(name.trim(), value.trim());
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (
        parts.get("Credential"),
        parts.get("SignedHeaders"),
        parts.get("Signature"),
    ) else {
        return Err(incomplete());
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = scope[..] else {
        return Err(incomplete());
    };
    Ok(Authorization {
        access_key,
        date,
        region,
        service,
        signed_headers: signed.split(';').collect(),
        signature,
    })
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Seconds since the epoch of an ISO 8601 basic time (`20130524T000000Z`).
fn parse_amz_date(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// The ISO 8601 basic form of `seconds` since the epoch.
fn format_amz_date(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let time = seconds.rem_euclid(86_400);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        time / 3600,
        time % 3600 / 60,
        time % 60
    )
}

/// The canonical request of `request` over `signed_headers`.
fn canonical_request(request: &Request, signed_headers: &[&str]) -> String {
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((request.target.as_str(), ""));
    let mut query_parts: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    query_parts.sort_unstable();
    let mut headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        headers.push_str(&format!(
            "{}:{}\n",
            name.to_ascii_lowercase(),
            values.join(",")
        ));
    }
    let payload_hash = match request.header("x-amz-content-sha256") {
        Some(hash) => hash.to_owned(),
        None => hex(&Sha256::digest(&request.body)),
    };
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        if path.is_empty() { "/" } else { path },
        query_parts.join("&"),
        headers,
        signed_headers.join(";"),
        payload_hash
    )
}

/// The signature of `request` made with `secret`.
fn signature(request: &Request, auth: &Authorization<'_>, amz_date: &str, secret: &str) -> String {
    let canonical = canonical_request(request, &auth.signed_headers);
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let key = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    let key = hmac(&key, auth.region.as_bytes());
    let key = hmac(&key, auth.service.as_bytes());
    let key = hmac(&key, b"aws4_request");
    hex(&hmac(&key, string_to_sign.as_bytes()))
}

/// Verifies `request`'s signature against `credentials` (access key ->
/// secret key) at `now_seconds` since the epoch.
pub fn verify(
    request: &Request,
    credentials: &BTreeMap<String, String>,
    now_seconds: i64,
) -> Result<(), WireError> {
    let header = request
        .header("authorization")
        .ok_or_else(WireError::missing_authentication_token)?;
    let auth = parse_authorization(header)?;
    let amz_date = request.header("x-amz-date").ok_or_else(|| {
        WireError::incomplete_signature(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        )
    })?;
    let signed_at = parse_amz_date(amz_date).ok_or_else(|| {
        WireError::incomplete_signature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'."
        ))
    })?;
    let secret = credentials
        .get(auth.access_key)
        .ok_or_else(WireError::unrecognized_client)?;
    if signed_at < now_seconds - SKEW_SECONDS_MAX {
        return Err(WireError::invalid_signature(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            format_amz_date(now_seconds - SKEW_SECONDS_MAX),
            format_amz_date(now_seconds)
        )));
    }
    if signed_at > now_seconds + SKEW_SECONDS_MAX {
        return Err(WireError::invalid_signature(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            format_amz_date(now_seconds + SKEW_SECONDS_MAX),
            format_amz_date(now_seconds)
        )));
    }
    let expected = signature(request, &auth, amz_date, secret);
    // Compare without an early exit, so timing does not reveal a prefix.
    let matches = expected.len() == auth.signature.len()
        && expected
            .bytes()
            .zip(auth.signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !matches {
        return Err(WireError::invalid_signature(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details.",
        ));
    }
    Ok(())
}

/// Signs `request` in place (adds `X-Amz-Date` and `Authorization`), as an
/// SDK would: used by tests and the load generator.
pub fn sign(request: &mut Request, access_key: &str, secret: &str, region: &str, now_seconds: i64) {
    let amz_date = format_amz_date(now_seconds);
    request.headers.retain(|(n, _)| {
        !n.eq_ignore_ascii_case("authorization") && !n.eq_ignore_ascii_case("x-amz-date")
    });
    request
        .headers
        .push(("X-Amz-Date".into(), amz_date.clone()));
    let mut signed: Vec<String> = request
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    signed.sort_unstable();
    signed.dedup();
    let signed_refs: Vec<&str> = signed.iter().map(String::as_str).collect();
    let auth = Authorization {
        access_key,
        date: &amz_date[..8],
        region,
        service: "dynamodb",
        signed_headers: signed_refs.clone(),
        signature: "",
    };
    let signature = signature(request, &auth, &amz_date, secret);
    let header = format!(
        "{ALGORITHM} Credential={access_key}/{}/{region}/dynamodb/aws4_request, SignedHeaders={}, Signature={signature}",
        &amz_date[..8],
        signed_refs.join(";")
    );
    request.headers.push(("Authorization".into(), header));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            method: "POST".into(),
            target: "/".into(),
            headers: vec![
                ("Host".into(), "localhost:8000".into()),
                ("X-Amz-Target".into(), "DynamoDB_20120810.ListTables".into()),
            ],
            body: b"{}".to_vec(),
            close: false,
        }
    }

    fn keys() -> BTreeMap<String, String> {
        BTreeMap::from([("AKID".to_owned(), "secret".to_owned())])
    }

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(format_amz_date(NOW), "20231114T221320Z");
        assert_eq!(parse_amz_date(&format_amz_date(NOW)), Some(NOW));
        assert_eq!(parse_amz_date("2023-11-14"), None);
    }

    #[test]
    fn aws_documentation_signing_key_example() {
        // The worked example of AWS's SigV4 documentation (iam service).
        let key = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20120215");
        let key = hmac(&key, b"us-east-1");
        let key = hmac(&key, b"iam");
        let key = hmac(&key, b"aws4_request");
        assert_eq!(
            hex(&key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn signed_request_verifies_and_tampering_fails() {
        let mut signed = request();
        sign(&mut signed, "AKID", "secret", "us-east-1", NOW);
        verify(&signed, &keys(), NOW + 60).unwrap();
        let mut tampered = signed.clone();
        tampered.body = b"{\"Limit\":1}".to_vec();
        assert_eq!(
            verify(&tampered, &keys(), NOW).unwrap_err().name(),
            "InvalidSignatureException"
        );
        let mut wrong_secret = request();
        sign(&mut wrong_secret, "AKID", "other", "us-east-1", NOW);
        assert_eq!(
            verify(&wrong_secret, &keys(), NOW).unwrap_err().name(),
            "InvalidSignatureException"
        );
    }

    #[test]
    fn unknown_key_missing_header_and_skew_are_rejected() {
        let mut unknown = request();
        sign(&mut unknown, "NOPE", "secret", "us-east-1", NOW);
        assert_eq!(
            verify(&unknown, &keys(), NOW).unwrap_err().name(),
            "UnrecognizedClientException"
        );
        assert_eq!(
            verify(&request(), &keys(), NOW).unwrap_err().name(),
            "MissingAuthenticationTokenException"
        );
        let mut old = request();
        sign(
            &mut old,
            "AKID",
            "secret",
            "us-east-1",
            NOW - SKEW_SECONDS_MAX - 1,
        );
        let error = verify(&old, &keys(), NOW).unwrap_err();
        assert_eq!(error.name(), "InvalidSignatureException");
        assert!(
            error.message.starts_with("Signature expired: "),
            "{}",
            error.message
        );
    }
}
