//! A tiny raw-HTTP client of the DynamoDB endpoint for the server tests:
//! starts a server on a loopback port and speaks HTTP/1.1 over one
//! keep-alive connection, so the tests see exactly the bytes an SDK sees.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use nimbus::Database;
use nimbus::server::{Server, ServerOptions};
use serde_json::Value;

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

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The short error name of `__type`.
    pub fn error_name(&self) -> String {
        let json = self.json();
        let full = json["__type"].as_str().unwrap_or("").to_owned();
        full.rsplit('#').next().unwrap_or("").to_owned()
    }
}

pub struct Client {
    pub server: Option<Server>,
    stream: BufReader<TcpStream>,
}

impl Client {
    /// A server over an in-memory database and a client connected to it.
    pub fn start() -> Self {
        Self::start_with(Database::memory().unwrap(), ServerOptions::default())
    }

    pub fn start_with(db: Database, options: ServerOptions) -> Self {
        let options = ServerOptions {
            address: "127.0.0.1:0".parse().unwrap(),
            ..options
        };
        let server = Server::start(db, options).unwrap();
        let stream = TcpStream::connect(server.local_addr()).unwrap();
        Self {
            server: Some(server),
            stream: BufReader::new(stream),
        }
    }

    /// Another connection to the same server.
    pub fn connect(&self) -> TcpStream {
        TcpStream::connect(self.server.as_ref().unwrap().local_addr()).unwrap()
    }

    /// Sends raw bytes and reads one answer.
    pub fn raw(&mut self, bytes: &[u8]) -> Answer {
        self.stream.get_mut().write_all(bytes).unwrap();
        read_answer(&mut self.stream)
    }

    /// POSTs `body` with `headers` (Host and Content-Length are added).
    pub fn post(&mut self, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let mut request = format!(
            "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.raw(&bytes)
    }

    /// Calls DynamoDB operation `operation` with `input` (another
    /// service's with a full target, `DynamoDBStreams_20120810.GetRecords`).
    pub fn call(&mut self, operation: &str, input: Value) -> Answer {
        let target = if operation.contains('.') {
            operation.to_owned()
        } else {
            format!("DynamoDB_20120810.{operation}")
        };
        self.post(
            &[
                ("X-Amz-Target", &target),
                ("Content-Type", "application/x-amz-json-1.0"),
            ],
            &serde_json::to_vec(&input).unwrap(),
        )
    }

    /// Calls `operation` and expects HTTP 200; returns the JSON.
    pub fn ok(&mut self, operation: &str, input: Value) -> Value {
        let answer = self.call(operation, input);
        assert_eq!(
            answer.status,
            200,
            "{operation} failed: {}",
            String::from_utf8_lossy(&answer.body)
        );
        answer.json()
    }

    /// Calls `operation`, expects HTTP 400 with error `name`; returns the
    /// message.
    pub fn fails(&mut self, operation: &str, input: Value, name: &str) -> String {
        let answer = self.call(operation, input);
        assert_eq!(
            answer.status,
            400,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(
            answer.error_name(),
            name,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        answer.json()["message"].as_str().unwrap_or("").to_owned()
    }
}

pub fn read_answer(stream: &mut impl BufRead) -> Answer {
    let mut status_line = String::new();
    stream.read_line(&mut status_line).unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"))
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

/// Creates table `name` with string key `pk` (and string sort key `sk`
/// when `sorted`).
pub fn create_table(client: &mut Client, name: &str, sorted: bool) {
    let mut schema = vec![serde_json::json!({"AttributeName": "pk", "KeyType": "HASH"})];
    let mut definitions = vec![serde_json::json!({"AttributeName": "pk", "AttributeType": "S"})];
    if sorted {
        schema.push(serde_json::json!({"AttributeName": "sk", "KeyType": "RANGE"}));
        definitions.push(serde_json::json!({"AttributeName": "sk", "AttributeType": "S"}));
    }
    client.ok(
        "CreateTable",
        serde_json::json!({
            "TableName": name,
            "KeySchema": schema,
            "AttributeDefinitions": definitions,
            "BillingMode": "PAY_PER_REQUEST",
        }),
    );
}
