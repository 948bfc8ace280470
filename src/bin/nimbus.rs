//! The `nimbus` command: `nimbus serve` runs the DynamoDB-compatible
//! endpoint over a database directory (or in memory) until SIGINT or
//! SIGTERM, then shuts down gracefully (running requests answer, the
//! database closes cleanly). With `--s3-port` it also serves the
//! S3-compatible endpoint over the same database, on its own port: the two
//! protocols cannot share one (DynamoDB's `POST /` is S3's PostObject), and
//! a port is what every S3 client's `endpoint_url` expects.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nimbus::server::s3::{S3Server, S3ServerOptions, S3User};
use nimbus::server::{Server, ServerOptions};
use nimbus::storage::Durability;
use nimbus::{Database, DatabaseOptions};

const USAGE: &str = "\
usage: nimbus serve [--data DIR [--durability sync|buffered] | --memory]
                    [--port PORT] [--host ADDR]
                    [--credentials ACCESS_KEY:SECRET]... [--max-body BYTES]
                    [--max-connections N] [--quiet]
                    [--s3-port PORT [--s3-access-key KEY:SECRET[:OWNER]]...
                     [--s3-domain DOMAIN]...]

  --data DIR        serve the database in DIR (created if missing)
  --durability D    sync (default): a write is acknowledged after fsync;
                    buffered: after write(2), fsynced in the background
  --memory          serve an in-memory database (the default without --data)
  --port PORT       TCP port (default 8000; 0 picks a free one)
  --host ADDR       address to bind (default 127.0.0.1; 0.0.0.0 for all)
  --credentials K:S verify SigV4 signatures against this key (repeatable);
                    without it any credentials are accepted
  --max-body BYTES  largest request body (default 17 MiB)
  --max-connections N  most open connections (default 1024)
  --quiet           do not log one line per request to stderr
  --s3-port PORT    also serve the S3 API on PORT (same host)
  --s3-access-key K:S[:OWNER]  an S3 user (repeatable; OWNER defaults to
                    K); without one no signature is checked
  --s3-domain D     virtual-host addressing under D (default localhost)
";

/// Set by the signal handler; the main thread polls it.
static STOP: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
fn install_signal_handlers() {
    extern "C" fn on_signal(_signal: i32) {
        STOP.store(true, Ordering::SeqCst);
    }
    unsafe extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    }
    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;
    // SAFETY: `signal` is the C library's; the handler only stores to an
    // atomic, which is async-signal-safe.
    unsafe {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
    }
}

#[cfg(not(unix))]
fn install_signal_handlers() {}

struct Arguments {
    data: Option<String>,
    durability: Durability,
    options: ServerOptions,
    s3: Option<S3ServerOptions>,
}

fn parse_arguments(mut args: impl Iterator<Item = String>) -> Result<Arguments, String> {
    if args.next().as_deref() != Some("serve") {
        return Err("expected the `serve` subcommand".into());
    }
    let mut data = None;
    let mut durability = Durability::Sync;
    let mut host: IpAddr = Ipv4Addr::LOCALHOST.into();
    let mut port = 8000u16;
    let mut options = ServerOptions {
        log_requests: true,
        ..ServerOptions::default()
    };
    let mut credentials = BTreeMap::new();
    let mut s3_port: Option<u16> = None;
    let mut s3 = S3ServerOptions::default();
    let mut s3_domains = Vec::new();
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--data" => data = Some(value("--data")?),
            "--memory" => data = None,
            "--durability" => {
                durability = match value("--durability")?.as_str() {
                    "sync" => Durability::Sync,
                    "buffered" => Durability::Buffered,
                    other => return Err(format!("--durability: {other} is not sync or buffered")),
                };
            }
            "--port" => {
                port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--host" => {
                host = value("--host")?
                    .parse()
                    .map_err(|e| format!("--host: {e}"))?
            }
            "--credentials" => {
                let pair = value("--credentials")?;
                let (key, secret) = pair
                    .split_once(':')
                    .ok_or("--credentials takes ACCESS_KEY:SECRET")?;
                credentials.insert(key.to_owned(), secret.to_owned());
            }
            "--max-body" => {
                options.body_bytes_max = value("--max-body")?
                    .parse()
                    .map_err(|e| format!("--max-body: {e}"))?;
            }
            "--max-connections" => {
                options.connections_max = value("--max-connections")?
                    .parse()
                    .map_err(|e| format!("--max-connections: {e}"))?;
            }
            "--quiet" => options.log_requests = false,
            "--s3-port" => {
                s3_port = Some(
                    value("--s3-port")?
                        .parse()
                        .map_err(|e| format!("--s3-port: {e}"))?,
                )
            }
            "--s3-access-key" => {
                let user = S3User::parse(&value("--s3-access-key")?)
                    .map_err(|e| format!("--s3-access-key: {e}"))?;
                s3.users.push(user);
            }
            "--s3-domain" => s3_domains.push(value("--s3-domain")?),
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    options.address = SocketAddr::new(host, port);
    options.credentials = credentials;
    if !s3_domains.is_empty() {
        s3.virtual_host_domains = s3_domains;
    }
    let s3 = match s3_port {
        Some(port) => Some(S3ServerOptions {
            address: SocketAddr::new(host, port),
            ..s3
        }),
        None if !s3.users.is_empty() => return Err("--s3-access-key needs --s3-port".into()),
        None => None,
    };
    Ok(Arguments {
        data,
        durability,
        options,
        s3,
    })
}

fn main() -> ExitCode {
    let started = Instant::now();
    let arguments = match parse_arguments(std::env::args().skip(1)) {
        Ok(arguments) => arguments,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("nimbus: {message}");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let db = match &arguments.data {
        Some(dir) => Database::open_with(
            dir,
            DatabaseOptions::default().durability(arguments.durability),
        ),
        None => Database::memory(),
    };
    let db = match db {
        Ok(db) => db,
        Err(error) => {
            eprintln!("nimbus: cannot open the database: {error}");
            return ExitCode::FAILURE;
        }
    };
    install_signal_handlers();
    let s3_server = match arguments.s3.clone().map(|o| S3Server::start(db.clone(), o)) {
        None => None,
        Some(Ok(server)) => Some(server),
        Some(Err(error)) => {
            eprintln!("nimbus: cannot listen for S3: {error}");
            return ExitCode::FAILURE;
        }
    };
    let server = match Server::start(db.clone(), arguments.options) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("nimbus: cannot listen: {error}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "nimbus: serving DynamoDB on http://{} ({}) in {} ms",
        server.local_addr(),
        arguments.data.as_deref().unwrap_or("in memory"),
        started.elapsed().as_millis()
    );
    if let Some(s3_server) = &s3_server {
        eprintln!("nimbus: serving S3 on http://{}", s3_server.local_addr());
    }
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("nimbus: shutting down");
    if let Some(s3_server) = s3_server {
        s3_server.shutdown();
    }
    server.shutdown();
    if let Err(error) = db.close() {
        eprintln!("nimbus: closing the database failed: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Arguments, String> {
        parse_arguments(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn serve_defaults_to_memory_on_localhost_8000() {
        let arguments = parse(&["serve"]).unwrap();
        assert_eq!(arguments.data, None);
        assert_eq!(arguments.options.address, "127.0.0.1:8000".parse().unwrap());
        assert!(arguments.options.log_requests);
        assert!(arguments.options.credentials.is_empty());
        assert_eq!(arguments.durability, Durability::Sync);
    }

    #[test]
    fn every_option_is_read() {
        let arguments = parse(&[
            "serve",
            "--data",
            "/tmp/x",
            "--durability",
            "buffered",
            "--port",
            "0",
            "--host",
            "0.0.0.0",
            "--credentials",
            "AK:secret:with:colons",
            "--max-body",
            "1024",
            "--max-connections",
            "7",
            "--quiet",
        ])
        .unwrap();
        assert_eq!(arguments.data.as_deref(), Some("/tmp/x"));
        assert_eq!(arguments.durability, Durability::Buffered);
        assert_eq!(arguments.options.address, "0.0.0.0:0".parse().unwrap());
        assert_eq!(arguments.options.credentials["AK"], "secret:with:colons");
        assert_eq!(arguments.options.body_bytes_max, 1024);
        assert_eq!(arguments.options.connections_max, 7);
        assert!(!arguments.options.log_requests);
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["run"]).is_err());
        assert!(parse(&["serve", "--port"]).is_err());
        assert!(parse(&["serve", "--port", "70000"]).is_err());
        assert!(parse(&["serve", "--durability", "maybe"]).is_err());
        assert!(parse(&["serve", "--credentials", "nocolon"]).is_err());
        assert!(parse(&["serve", "--bogus"]).is_err());
        assert!(parse(&["serve", "--s3-access-key", "AK:S"]).is_err());
        assert!(parse(&["serve", "--s3-port", "1", "--s3-access-key", "AK"]).is_err());
    }

    #[test]
    fn s3_options_are_read() {
        let arguments = parse(&["serve"]).unwrap();
        assert!(arguments.s3.is_none());
        let arguments = parse(&[
            "serve",
            "--s3-port",
            "9000",
            "--s3-access-key",
            "AK:SK:alice",
            "--s3-domain",
            "s3.local",
        ])
        .unwrap();
        let s3 = arguments.s3.unwrap();
        assert_eq!(s3.address, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(s3.users[0].owner_id, "alice");
        assert_eq!(s3.virtual_host_domains, vec!["s3.local".to_owned()]);
    }
}
