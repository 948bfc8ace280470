//! Load generator of the S3 endpoint, in process, on loopback: 2 client
//! threads, each on one keep-alive connection, measure
//!
//! - 4 KiB PUT and GET requests/s (distinct keys per thread), and
//! - 64 MiB PUT and GET throughput (MB/s over both threads) and the
//!   process's CPU time per byte (the rate all cores would give, on a
//!   machine shared with other work),
//! - and, as the ceiling of a large PUT, the object store's own 64 MiB
//!   put (2 threads, in process, no HTTP, same MD5-ETag bucket),
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

/// The CPU time this process has used (user + system), in seconds: on a
/// machine shared with other work, CPU per byte is the figure that does
/// not depend on how much of the machine the run got.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // The fields after the command name (which may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of stat(5), 11 and 12 here.
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// Each thread moves one 64 MiB object; returns MB/s over both and the
/// process's CPU nanoseconds per byte moved (client threads included).
fn large_rate(address: SocketAddr, method: &'static str, body: &[u8]) -> (f64, f64) {
    let start = Instant::now();
    let cpu_start = cpu_seconds();
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
    let cpu_ns_per_byte = (cpu_seconds() - cpu_start) * 1e9 / moved as f64;
    (
        moved as f64 / start.elapsed().as_secs_f64() / 1e6,
        cpu_ns_per_byte,
    )
}

/// Each thread puts one 64 MiB object straight into the store (what the
/// endpoint's PUT costs without HTTP); returns MB/s over both and CPU ns
/// per byte.
fn store_rate(db: &Database, body: &bytes::Bytes) -> (f64, f64) {
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            scope.spawn(move || {
                db.objects()
                    .put_object("bench", format!("store-{thread}"))
                    .body(body.clone())
                    .send()
                    .unwrap();
            });
        }
    });
    let moved = (THREADS * body.len()) as f64;
    (
        moved / start.elapsed().as_secs_f64() / 1e6,
        (cpu_seconds() - cpu_start) * 1e9 / moved,
    )
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
    let mut store_put = Vec::new();
    let mut store_put_cpu = Vec::new();
    let mut large_put_cpu = Vec::new();
    let mut large_get_cpu = Vec::new();
    let large_bytes = bytes::Bytes::from(large.clone());
    // Every key the GETs may ask for exists, however few PUTs a loaded
    // machine manages in a repetition.
    let mut setup = Connection::open(address);
    for thread in 0..THREADS {
        for i in 0..1000 {
            let (status, _) = setup.send("PUT", &format!("/bench/small-{thread}-{i}"), &small);
            assert_eq!(status, 200);
        }
    }
    for _ in 0..REPETITIONS {
        let (rate, cpu) = store_rate(&db, &large_bytes);
        store_put.push(rate);
        store_put_cpu.push(cpu);
        small_put.push(small_rate(address, seconds, "PUT", &small, 1000));
        small_get.push(small_rate(address, seconds, "GET", &[], 1000));
        let (rate, cpu) = large_rate(address, "PUT", &large);
        large_put.push(rate);
        large_put_cpu.push(cpu);
        let (rate, cpu) = large_rate(address, "GET", &[]);
        large_get.push(rate);
        large_get_cpu.push(cpu);
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
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    for (name, rates, cpu) in [
        ("PUT", large_put, large_put_cpu),
        ("GET", large_get, large_get_cpu),
    ] {
        let cpu = median(cpu);
        println!(
            "64 MiB {name}  {:>10.0} MB/s; CPU {cpu:.2} ns/byte (all {cores} cores busy: {:.0} MB/s)",
            median(rates),
            cores / cpu * 1e3
        );
    }
    let cpu = median(store_put_cpu);
    println!(
        "64 MiB put, store alone (no HTTP) {:>6.0} MB/s; CPU {cpu:.2} ns/byte (all {cores} cores busy: {:.0} MB/s)",
        median(store_put),
        cores / cpu * 1e3
    );
    server.shutdown();
    db.close().unwrap();
}
