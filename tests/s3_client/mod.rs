//! A tiny raw-HTTP client of the S3 endpoint for the `s3_*` tests: starts
//! an endpoint on a loopback port with two users (alice and bob), signs
//! requests with SigV4 by hand (header, presigned URL, aws-chunked with a
//! trailer), and shows the tests exactly the bytes an SDK would see.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use nimbus::Database;
use nimbus::server::s3::{S3Server, S3ServerOptions, S3User};
use sha2::{Digest, Sha256};

pub const REGION: &str = "us-east-1";

/// A signing identity.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub access: &'static str,
    pub secret: &'static str,
}

pub const ALICE: Key = Key {
    access: "AKIDALICE",
    secret: "alice-secret",
};
pub const BOB: Key = Key {
    access: "AKIDBOB",
    secret: "bob-secret",
};

/// One answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Every text of `<tag>...</tag>` in the XML body, in order.
    pub fn xml_all(&self, tag: &str) -> Vec<String> {
        let text = self.text();
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        let mut out = Vec::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find(&open) {
            let after = &rest[start + open.len()..];
            let Some(end) = after.find(&close) else { break };
            out.push(after[..end].to_owned());
            rest = &after[end + close.len()..];
        }
        out
    }

    /// The first `<tag>` text of the XML body.
    pub fn xml(&self, tag: &str) -> Option<String> {
        self.xml_all(tag).into_iter().next()
    }

    /// The S3 error code of an error body.
    pub fn code(&self) -> String {
        self.xml("Code").unwrap_or_default()
    }

    /// The ETag header without quotes.
    pub fn e_tag(&self) -> String {
        self.header("etag")
            .unwrap_or("")
            .trim_matches('"')
            .to_owned()
    }
}

/// A request to send.
#[derive(Debug, Clone, Default)]
pub struct Call {
    pub method: String,
    /// The path, already percent-encoded (`/bucket/key`).
    pub path: String,
    /// Query parameters, unencoded.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The Host header (default: the server's address).
    pub host: Option<String>,
}

impl Call {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            ..Self::default()
        }
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn host(mut self, host: &str) -> Self {
        self.host = Some(host.to_owned());
        self
    }
}

/// An endpoint over an in-memory database, with alice and bob as users.
pub struct S3Test {
    pub db: Database,
    pub server: Option<S3Server>,
    pub address: SocketAddr,
}

impl S3Test {
    pub fn start() -> Self {
        Self::start_with(Database::memory().unwrap())
    }

    pub fn start_with(db: Database) -> Self {
        let options = S3ServerOptions {
            address: "127.0.0.1:0".parse().unwrap(),
            users: vec![
                S3User::parse(&format!("{}:{}:alice", ALICE.access, ALICE.secret)).unwrap(),
                S3User::parse(&format!("{}:{}:bob", BOB.access, BOB.secret)).unwrap(),
            ],
            ..S3ServerOptions::default()
        };
        let server = S3Server::start(db.clone(), options).unwrap();
        let address = server.local_addr();
        Self {
            db,
            server: Some(server),
            address,
        }
    }

    /// Sends `call` signed by `key` (anonymous with `None`).
    pub fn send(&self, key: Option<Key>, mut call: Call) -> Answer {
        let host = call
            .host
            .clone()
            .unwrap_or_else(|| self.address.to_string());
        if let Some(key) = key {
            let payload = call
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-content-sha256"))
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| hex(&Sha256::digest(&call.body)));
            sign_headers(&mut call, &host, key, &payload, now());
        }
        let target = format!("{}{}", call.path, query_string(&call.query));
        self.raw(&call.method, &target, &host, &call.headers, &call.body)
    }

    /// Alice's request (the usual case).
    pub fn alice(&self, call: Call) -> Answer {
        self.send(Some(ALICE), call)
    }

    /// A presigned URL target (path and query) for `method` on `path`.
    pub fn presign(&self, key: Key, method: &str, path: &str, expires_seconds: u64) -> String {
        let host = self.address.to_string();
        presigned_target(key, method, path, &host, expires_seconds, now())
    }

    /// Sends an unsigned request with an exact target (presigned URLs).
    pub fn get_target(&self, method: &str, target: &str) -> Answer {
        let host = self.address.to_string();
        self.raw(method, target, &host, &[], &[])
    }

    pub fn raw(
        &self,
        method: &str,
        target: &str,
        host: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Answer {
        let mut stream = TcpStream::connect(self.address).unwrap();
        let mut head =
            format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        read_answer(&mut BufReader::new(stream), method == "HEAD")
    }

    /// Creates a bucket owned by alice.
    pub fn bucket(&self, name: &str) {
        let answer = self.alice(Call::new("PUT", &format!("/{name}")));
        assert_eq!(answer.status, 200, "{}", answer.text());
    }

    /// Alice puts `body` at `/bucket/key`; returns the answer.
    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) -> Answer {
        self.alice(Call::new("PUT", &format!("/{bucket}/{key}")).body(body))
    }

    /// Alice gets `/bucket/key`.
    pub fn get(&self, bucket: &str, key: &str) -> Answer {
        self.alice(Call::new("GET", &format!("/{bucket}/{key}")))
    }
}

impl Drop for S3Test {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
    }
}

fn read_answer(reader: &mut BufReader<TcpStream>, head_only: bool) -> Answer {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':').unwrap();
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if !head_only && status != 204 && status != 304 {
        if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let size = usize::from_str_radix(line.trim(), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).unwrap();
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(length) = find("content-length") {
            body = vec![0; length.parse().unwrap()];
            reader.read_exact(&mut body).unwrap();
        } else {
            reader.read_to_end(&mut body).unwrap();
        }
    }
    Answer {
        status,
        headers,
        body,
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest as _;
    hex(&md5::Md5::digest(bytes))
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `yyyymmddThhmmssZ` of a Unix time (civil-from-days, no date crate).
pub fn amz_date(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// RFC 3986 encoding as SigV4 wants it (`/` encoded too).
pub fn uri_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn query_string(query: &[(String, String)]) -> String {
    if query.is_empty() {
        String::new()
    } else {
        format!("?{}", canonical_query(query))
    }
}

pub fn signature(key: Key, date: &str, string_to_sign: &str) -> String {
    let k = hmac(
        format!("AWS4{}", key.secret).as_bytes(),
        &date.as_bytes()[..8],
    );
    let k = hmac(&k, REGION.as_bytes());
    let k = hmac(&k, b"s3");
    let k = hmac(&k, b"aws4_request");
    hex(&hmac(&k, string_to_sign.as_bytes()))
}

fn string_to_sign(date: &str, canonical: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{date}\n{}/{REGION}/s3/aws4_request\n{}",
        &date[..8],
        hex(&Sha256::digest(canonical.as_bytes()))
    )
}

/// Adds `x-amz-date`, `x-amz-content-sha256` and `Authorization`.
pub fn sign_headers(call: &mut Call, host: &str, key: Key, payload: &str, now: u64) {
    let date = amz_date(now);
    call.headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("x-amz-content-sha256"));
    call.headers
        .push(("x-amz-content-sha256".into(), payload.to_owned()));
    call.headers.push(("x-amz-date".into(), date.clone()));
    let mut signed: Vec<(String, String)> = call
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    signed.push(("host".into(), host.to_owned()));
    signed.sort();
    let names = signed
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = signed.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{names}\n{payload}",
        call.method,
        call.path,
        canonical_query(&call.query)
    );
    let signature = signature(key, &date, &string_to_sign(&date, &canonical));
    call.headers.push((
        "Authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{}/{REGION}/s3/aws4_request, SignedHeaders={names}, Signature={signature}",
            key.access,
            &date[..8]
        ),
    ));
}

/// The head of a raw HTTP/1.1 request for `call`, sent as `target` (its
/// path and query as they go on the wire), signed by alice for
/// `UNSIGNED-PAYLOAD` so the body can follow piece by piece: the signed
/// headers, then `extra` (header lines, each ending in `\r\n`), then
/// `Content-Length: length`.
pub fn unsigned_payload_head(
    host: &str,
    mut call: Call,
    target: &str,
    extra: &str,
    length: usize,
) -> String {
    sign_headers(&mut call, host, ALICE, "UNSIGNED-PAYLOAD", now());
    let mut head = format!("{} {target} HTTP/1.1\r\nHost: {host}\r\n", call.method);
    for (name, value) in &call.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(extra);
    head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
    head
}

/// Reads one response head from `reader`: the status line, then each
/// header as (lowercased name, trimmed value). An interim `100 Continue`
/// before it is skipped.
pub fn read_response_head(reader: &mut impl BufRead) -> (String, Vec<(String, String)>) {
    loop {
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap_or((&line, ""));
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        if !status.contains(" 100 ") {
            return (status, headers);
        }
    }
}

/// The value of header `name` (lowercase) among `headers`.
pub fn head_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A presigned URL's path and query.
pub fn presigned_target(
    key: Key,
    method: &str,
    path: &str,
    host: &str,
    expires_seconds: u64,
    now: u64,
) -> String {
    let date = amz_date(now);
    let query = vec![
        ("X-Amz-Algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
        (
            "X-Amz-Credential".to_owned(),
            format!("{}/{}/{REGION}/s3/aws4_request", key.access, &date[..8]),
        ),
        ("X-Amz-Date".to_owned(), date.clone()),
        ("X-Amz-Expires".to_owned(), expires_seconds.to_string()),
        ("X-Amz-SignedHeaders".to_owned(), "host".to_owned()),
    ];
    let canonical = format!(
        "{method}\n{path}\n{}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD",
        canonical_query(&query)
    );
    let signature = signature(key, &date, &string_to_sign(&date, &canonical));
    format!(
        "{path}?{}&X-Amz-Signature={signature}",
        canonical_query(&query)
    )
}

/// An aws-chunked body (unsigned chunks) with one trailing header, as the
/// SDKs send by default since 2025.
pub fn chunked_with_trailer(data: &[u8], chunk: usize, trailer: (&str, &str)) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in data.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("0\r\n{}:{}\r\n\r\n", trailer.0, trailer.1).as_bytes());
    out
}

/// A PUT of `data` as aws-chunked with a checksum trailer.
pub fn chunked_put(path: &str, data: &[u8], trailer: (&str, &str)) -> Call {
    Call::new("PUT", path)
        .header("content-encoding", "aws-chunked")
        .header("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
        .header("x-amz-decoded-content-length", &data.len().to_string())
        .header("x-amz-trailer", trailer.0)
        .body(chunked_with_trailer(data, 64 * 1024, trailer))
}

/// The base64 CRC32 (big-endian) S3 uses.
pub fn crc32_b64(data: &[u8]) -> String {
    b64(&crc32fast::hash(data).to_be_bytes())
}

/// The base64 SHA-256 S3 uses.
pub fn sha256_b64(data: &[u8]) -> String {
    b64(&Sha256::digest(data))
}

/// Deterministic test bytes.
pub fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 8) as u8))
        .collect()
}
