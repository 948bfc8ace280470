//! Load generator of the DynamoDB endpoint: starts `nimbus serve` as a
//! child process (the release binary, `NIMBUS_BIN` or
//! `target/release/nimbus`) and measures, on loopback:
//!
//! - startup: from spawning the process to the first answered request;
//! - idle RSS of the server after loading the table;
//! - GetItem and PutItem requests/s and p50/p99 latency with 2 client
//!   threads, each on one keep-alive connection (5 repetitions, median),
//!   in memory and over a data directory (`Buffered` and `Sync` durability).
//!
//! `cargo build --release --bin nimbus && cargo run --release --example server_load`
//! (`NIMBUS_LOAD_SECONDS` sets each repetition's length, default 2).

// A measuring harness: any failure must stop the run loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ITEMS: u64 = 10_000;
const THREADS: usize = 2;
const REPETITIONS: usize = 5;

/// xorshift64*: deterministic keys per thread.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(address: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(stream),
        })
    }

    /// One request; returns the status.
    fn call(&mut self, operation: &str, body: &str) -> std::io::Result<u16> {
        let request = format!(
            "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: DynamoDB_20120810.{operation}\r\n\
             Content-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.reader.get_mut().write_all(request.as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            if line.trim_end().is_empty() {
                break;
            }
            if let Some(value) = line
                .to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
            {
                length = value.parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(status)
    }
}

fn binary() -> String {
    std::env::var("NIMBUS_BIN").unwrap_or_else(|_| "target/release/nimbus".to_owned())
}

/// Spawns the server; returns it, its address and the time to the first
/// answered request.
fn spawn(extra: &[&str]) -> (Child, String, Duration) {
    let started = Instant::now();
    let mut child = Command::new(binary())
        .args(["serve", "--port", "0", "--quiet"])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (build it with --bin nimbus)",
                binary()
            )
        });
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("server banner");
    let address = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected banner {line:?}"))
        .to_owned();
    let mut connection = Connection::open(&address).expect("connect");
    assert_eq!(
        connection.call("ListTables", "{}").expect("first request"),
        200
    );
    let startup = started.elapsed();
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
    });
    (child, address, startup)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn item_json(key: u64, thread_salt: u64) -> String {
    format!(
        r#"{{"pk":{{"S":"key{key:08}"}},"v":{{"S":"{:0100}"}}}}"#,
        key.wrapping_mul(31).wrapping_add(thread_salt) % 1_000_000
    )
}

fn load(address: &str) {
    let mut connection = Connection::open(address).expect("connect");
    let create = r#"{"TableName":"bench","KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],
        "AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"BillingMode":"PAY_PER_REQUEST"}"#;
    assert_eq!(connection.call("CreateTable", create).expect("create"), 200);
    for chunk in (0..ITEMS).collect::<Vec<_>>().chunks(25) {
        let writes: Vec<String> = chunk
            .iter()
            .map(|&k| format!(r#"{{"PutRequest":{{"Item":{}}}}}"#, item_json(k, 0)))
            .collect();
        let body = format!(r#"{{"RequestItems":{{"bench":[{}]}}}}"#, writes.join(","));
        assert_eq!(connection.call("BatchWriteItem", &body).expect("load"), 200);
    }
}

/// Runs `operation` from 2 threads for `seconds`; returns (requests/s,
/// p50 µs, p99 µs).
fn run(address: &str, operation: &'static str, seconds: f64) -> (f64, f64, f64) {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let address = address.to_owned();
            std::thread::spawn(move || {
                let mut connection = Connection::open(&address).expect("connect");
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1));
                let mut latencies = Vec::with_capacity(200_000);
                while Instant::now() < deadline {
                    let key = rng.next() % ITEMS;
                    let body = if operation == "GetItem" {
                        format!(r#"{{"TableName":"bench","Key":{{"pk":{{"S":"key{key:08}"}}}}}}"#)
                    } else {
                        format!(
                            r#"{{"TableName":"bench","Item":{}}}"#,
                            item_json(key, t as u64 + 1)
                        )
                    };
                    let started = Instant::now();
                    let status = connection.call(operation, &body).expect("request");
                    latencies.push(started.elapsed().as_nanos() as u64);
                    assert_eq!(status, 200);
                }
                latencies
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client thread"))
        .collect();
    all.sort_unstable();
    let percentile =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1000.0;
    (
        all.len() as f64 / seconds,
        percentile(0.50),
        percentile(0.99),
    )
}

/// Stops the server with SIGTERM (its graceful shutdown closes the
/// database cleanly) and waits for it.
fn stop(mut child: Child) {
    let terminated = Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .is_ok_and(|s| s.success());
    if !terminated {
        let _ = child.kill();
    }
    let _ = child.wait();
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn measure(label: &str, extra: &[&str], seconds: f64) {
    let (child, address, startup) = spawn(extra);
    load(&address);
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss = rss_kib(child.id());
    println!(
        "{label}: startup to first answer {:.1} ms; idle RSS after loading {ITEMS} items {:.1} MiB",
        startup.as_secs_f64() * 1000.0,
        idle_rss as f64 / 1024.0
    );
    for operation in ["GetItem", "PutItem"] {
        let runs: Vec<(f64, f64, f64)> = (0..REPETITIONS)
            .map(|_| run(&address, operation, seconds))
            .collect();
        println!(
            "{label}: {operation:<7} {:>8.0} req/s  p50 {:>6.0} µs  p99 {:>6.0} µs  (median of {REPETITIONS} x {seconds} s, {THREADS} client threads)",
            median(runs.iter().map(|r| r.0).collect()),
            median(runs.iter().map(|r| r.1).collect()),
            median(runs.iter().map(|r| r.2).collect()),
        );
    }
    stop(child);
}

fn main() {
    let seconds: f64 = std::env::var("NIMBUS_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    // Startup and RSS of a bare server, before any table exists.
    let (child, _, startup) = spawn(&["--memory"]);
    std::thread::sleep(Duration::from_millis(200));
    println!(
        "empty server: startup to first answer {:.1} ms; idle RSS {:.1} MiB",
        startup.as_secs_f64() * 1000.0,
        rss_kib(child.id()) as f64 / 1024.0
    );
    stop(child);
    measure("memory", &["--memory"], seconds);
    for durability in ["buffered", "sync"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_string_lossy().into_owned();
        let arguments = ["--data", path.as_str(), "--durability", durability];
        measure(&format!("data dir, {durability}"), &arguments, seconds);
        // Reopening the loaded directory (its log is replayed).
        let (child, _, startup) = spawn(&arguments);
        println!(
            "data dir, {durability}: reopen to first answer {:.1} ms",
            startup.as_secs_f64() * 1000.0
        );
        stop(child);
    }
}
