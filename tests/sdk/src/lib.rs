//! The harness of nimbus's S3 endpoint against the official Rust SDK
//! (`aws-sdk-s3`): an endpoint over an in-memory database on a loopback
//! port, an SDK client configured for it (static credentials, path-style
//! addressing, plain HTTP), and a raw HTTP/1.1 request for presigned URLs
//! (what a browser or `curl` does with them).
//!
//! This is a crate of its own, outside nimbus's workspace, so that nimbus's
//! `cargo test` never builds the SDK. Run it with
//! `cargo test --manifest-path tests/sdk/Cargo.toml` (from the repository
//! root). The SDK is built without its default HTTPS client (no TLS is
//! needed on loopback), which keeps `aws-lc-sys` and its long C build out.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test harness fails loudly by design

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use md5::{Digest, Md5};
use nimbus::Database;
use nimbus::server::s3::{S3Server, S3ServerOptions, S3User};

/// The access key the SDK signs with.
pub const ACCESS_KEY: &str = "AKIDSDKTEST";
/// Its secret.
pub const SECRET_KEY: &str = "sdk-test-secret";
/// The endpoint's region.
pub const REGION: &str = "us-east-1";

/// A running endpoint and an SDK client of it.
pub struct Endpoint {
    /// The database behind the endpoint.
    pub db: Database,
    /// The endpoint (stopped on drop).
    pub server: S3Server,
    /// An SDK client signing as [`ACCESS_KEY`].
    pub client: Client,
}

impl Endpoint {
    /// Starts an endpoint over a fresh in-memory database with one user.
    pub fn start() -> Self {
        let db = Database::memory().unwrap();
        let options = S3ServerOptions {
            address: "127.0.0.1:0".parse().unwrap(),
            users: vec![S3User::parse(&format!("{ACCESS_KEY}:{SECRET_KEY}:sdk")).unwrap()],
            region: REGION.to_owned(),
            ..S3ServerOptions::default()
        };
        let server = S3Server::start(db.clone(), options).unwrap();
        let client = client(server.local_addr());
        Self { db, server, client }
    }

    /// The endpoint's address.
    pub fn address(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Creates `bucket` through the SDK.
    pub async fn bucket(&self, bucket: &str) {
        self.client
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
    }

    /// Creates `bucket` and enables versioning on it (PutBucketVersioning).
    pub async fn versioned_bucket(&self, bucket: &str) {
        self.bucket(bucket).await;
        self.client
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
}

/// An SDK client of the endpoint at `address`, configured the way an
/// application pointing the SDK at an S3-compatible store does.
pub fn client(address: SocketAddr) -> Client {
    // `build_http` (plain HTTP) is public but hidden in the docs: the
    // default client would bring TLS (aws-lc), which loopback needs not.
    let http = aws_smithy_http_client::Builder::new().build_http();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            None,
            None,
            "nimbus-test",
        ))
        .endpoint_url(format!("http://{address}"))
        .force_path_style(true)
        .http_client(http)
        .build();
    Client::from_conf(config)
}

/// A loopback TCP proxy in front of an endpoint that keeps every byte
/// clients sent through it, so a test can see what the SDK put on the wire
/// (aws-chunked encoding, trailer declarations).
pub struct Recorder {
    address: SocketAddr,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    /// Listens on a free loopback port and forwards to `target`. Its
    /// threads end with the connections (and the listener's with the test
    /// process).
    pub fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let sent: Arc<Mutex<Vec<u8>>> = Arc::default();
        let record = sent.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let server = TcpStream::connect(target).unwrap();
                let record = record.clone();
                let (mut from_client, mut to_server) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = from_client.read(&mut buf) {
                        if n == 0 || to_server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        record.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = to_server.shutdown(Shutdown::Write);
                });
                let (mut from_server, mut to_client) = (server, client);
                thread::spawn(move || {
                    let _ = std::io::copy(&mut from_server, &mut to_client);
                    let _ = to_client.shutdown(Shutdown::Write);
                });
            }
        });
        Self { address, sent }
    }

    /// The proxy's address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// How many bytes clients have sent so far (a mark for [`Self::sent_since`]).
    pub fn mark(&self) -> usize {
        self.sent.lock().unwrap().len()
    }

    /// What clients sent after `mark`, as text (bodies lossily), lowercased.
    pub fn sent_since(&self, mark: usize) -> String {
        String::from_utf8_lossy(&self.sent.lock().unwrap()[mark..]).to_ascii_lowercase()
    }
}

/// The status and S3 error code of a failed SDK call.
pub fn failure<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> (u16, String) {
    let status = error.raw_response().map_or(0, |r| r.status().as_u16());
    (status, error.code().unwrap_or_default().to_owned())
}

/// The lowercase hex MD5 of `data` (an S3 single-part ETag).
pub fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The base64 checksum of `data` with `algorithm`, by the SDK's own
/// implementation (the server computes its own and must agree).
pub fn checksum(algorithm: &str, data: &[u8]) -> String {
    let algorithm: aws_smithy_checksums::ChecksumAlgorithm = algorithm.parse().unwrap();
    let mut hasher = algorithm.into_impl();
    hasher.update(data);
    aws_smithy_types::base64::encode(hasher.finalize())
}

/// One raw HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `method uri` with `headers` and `body` over a fresh connection,
/// as a plain HTTP client does with a presigned URL. `uri` is absolute
/// (`http://host:port/path?query`); its authority is the `Host`.
pub fn http_request(method: &str, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let rest = uri.strip_prefix("http://").unwrap();
    let (authority, target) = rest.split_at(rest.find('/').unwrap());
    let mut stream = TcpStream::connect(authority).unwrap();
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("host") && !name.eq_ignore_ascii_case("content-length") {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    read_answer(BufReader::new(stream), method == "HEAD")
}

fn read_answer(mut reader: BufReader<TcpStream>, head_only: bool) -> Answer {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
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
    let mut answer = Answer {
        status,
        headers,
        body: Vec::new(),
    };
    if head_only {
        return answer;
    }
    let chunked = answer
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            answer.body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = answer.header("content-length") {
        let mut body = vec![0; length.parse().unwrap()];
        reader.read_exact(&mut body).unwrap();
        answer.body = body;
    } else {
        reader.read_to_end(&mut answer.body).unwrap();
    }
    answer
}

/// `len` deterministic bytes (a seeded xorshift), so bodies are not all
/// one byte and a misplaced chunk shows.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
