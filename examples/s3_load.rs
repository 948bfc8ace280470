//! Load generator of the S3 endpoint, in process, on loopback: 2 client
//! threads, each on one keep-alive connection, measure
//!
//! - 4 KiB PUT and GET requests/s (distinct keys per thread), and
//! - 64 MiB PUT and GET throughput (MB/s over both threads),
//!
//! over a data directory with `Buffered` durability (5 repetitions,
//! median). The endpoint runs without access keys, so no signature is
//! computed or checked: the figures are the endpoint's and the store's.
//!
//! `cargo run --release --example s3_load` (`NIMBUS_LOAD_SECONDS` sets the
//! length of a small-object repetition, default 2).

// A measuring harness: any failure must stop the run loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use nimbus::server::s3::{S3Server, S3ServerOptions};
use nimbus::storage::Durability;
use nimbus::{Database, DatabaseOptions};

const THREADS: usize = 2;
const REPETITIONS: usize = 5;
const SMALL_BYTES: usize = 4 * 1024;
const LARGE_BYTES: usize = 64 << 20;

struct Connection {
    reader: BufReader<TcpStream>,
    host: String,
}

impl Connection {
    fn open(address: SocketAddr) -> Self {
        let stream = TcpStream::connect(address).unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            reader: BufReader::with_capacity(1 << 20, stream),
            host: address.to_string(),
        }
    }

    /// Sends one request; returns the status and the body length read.
    fn send(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, usize) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut sink = vec![0u8; 1 << 20];
        let mut left = length;
        while left > 0 {
            let n = self.reader.read(&mut sink[..left.min(1 << 20)]).unwrap();
            assert!(n > 0, "the connection closed mid-body");
            left -= n;
        }
        (status, length)
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs `op(thread, i)` on THREADS threads for `seconds`; returns ops/s.
fn small_rate(
    address: SocketAddr,
    seconds: f64,
    method: &'static str,
    body: &[u8],
    keys: usize,
) -> f64 {
    let start = Instant::now();
    let total: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                scope.spawn(move || {
                    let mut connection = Connection::open(address);
                    let mut done = 0usize;
                    while start.elapsed().as_secs_f64() < seconds {
                        let path = format!("/bench/small-{thread}-{}", done % keys);
                        let (status, _) = connection.send(method, &path, body);
                        assert_eq!(status, 200, "{method} {path}");
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

/// Each thread moves one 64 MiB object; returns MB/s over both.
fn large_rate(address: SocketAddr, method: &'static str, body: &[u8]) -> f64 {
    let start = Instant::now();
    let moved: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                scope.spawn(move || {
                    let mut connection = Connection::open(address);
                    let (status, length) =
                        connection.send(method, &format!("/bench/large-{thread}"), body);
                    assert_eq!(status, 200);
                    if method == "GET" { length } else { body.len() }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    moved as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn main() {
    let seconds: f64 = std::env::var("NIMBUS_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_with(
        dir.path(),
        DatabaseOptions::default().durability(Durability::Buffered),
    )
    .unwrap();
    let server = S3Server::start(
        db.clone(),
        S3ServerOptions {
            address: "127.0.0.1:0".parse().unwrap(),
            ..S3ServerOptions::default()
        },
    )
    .unwrap();
    let address = server.local_addr();
    let (status, _) = Connection::open(address).send("PUT", "/bench", b"");
    assert_eq!(status, 200);

    let small: Vec<u8> = (0..SMALL_BYTES).map(|i| (i * 7 % 251) as u8).collect();
    let large: Vec<u8> = (0..LARGE_BYTES)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut small_put = Vec::new();
    let mut small_get = Vec::new();
    let mut large_put = Vec::new();
    let mut large_get = Vec::new();
    for _ in 0..REPETITIONS {
        small_put.push(small_rate(address, seconds, "PUT", &small, 1000));
        small_get.push(small_rate(address, seconds, "GET", &[], 1000));
        large_put.push(large_rate(address, "PUT", &large));
        large_get.push(large_rate(address, "GET", &[]));
    }
    println!(
        "machine: {} cores; {THREADS} client threads on loopback, Buffered durability, no signatures",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "4 KiB PUT   {:>10.0} ops/s (median of {REPETITIONS})",
        median(small_put)
    );
    println!("4 KiB GET   {:>10.0} ops/s", median(small_get));
    println!("64 MiB PUT  {:>10.0} MB/s", median(large_put));
    println!("64 MiB GET  {:>10.0} MB/s", median(large_get));
    server.shutdown();
    db.close().unwrap();
}
