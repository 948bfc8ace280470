//! The endpoint's protocol behaviour over raw HTTP: routing by
//! `X-Amz-Target`, DynamoDB's error answers (status, `__type`, message,
//! headers), bad requests answered without a crash, keep-alive and
//! concurrency, SigV4 verification and graceful shutdown.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

mod server_client;

use std::collections::BTreeMap;
use std::io::{BufReader, Write};

use nimbus::Database;
use nimbus::server::ServerOptions;
use nimbus::server::signing::{Request, sign};
use serde_json::json;
use server_client::{Client, create_table, read_answer};

#[test]
fn every_answer_carries_request_id_crc32_and_json_type() {
    let mut client = Client::start();
    let answer = client.call("ListTables", json!({}));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), json!({"TableNames": []}));
    assert_eq!(
        answer.header("Content-Type"),
        Some("application/x-amz-json-1.0")
    );
    let id = answer.header("x-amzn-RequestId").unwrap();
    assert_eq!(id.len(), 52);
    assert!(
        id.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    );
    let crc: u32 = answer.header("x-amz-crc32").unwrap().parse().unwrap();
    assert_eq!(crc, crc32fast::hash(&answer.body));
    let second = client.call("ListTables", json!({}));
    assert_ne!(second.header("x-amzn-RequestId"), Some(id));
}

#[test]
fn unknown_operation_is_400_coral_unknown_operation() {
    let mut client = Client::start();
    for target in [
        "DynamoDB_20120810.NoSuchThing",
        "DynamoDB_20120810.ExecuteStatement",
        "DynamoDBStreams_20120810.GetItem",
        "Other_1.GetItem",
    ] {
        let answer = client.post(&[("X-Amz-Target", target)], b"{}");
        assert_eq!(answer.status, 400);
        assert_eq!(
            answer.json(),
            json!({"__type": "com.amazon.coral.service#UnknownOperationException"})
        );
    }
    let answer = client.post(&[], b"{}");
    assert_eq!(answer.error_name(), "UnknownOperationException");
}

#[test]
fn malformed_json_is_serialization_exception() {
    let mut client = Client::start();
    let answer = client.post(
        &[("X-Amz-Target", "DynamoDB_20120810.ListTables")],
        b"{not json",
    );
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.json()["__type"],
        "com.amazon.coral.service#SerializationException"
    );
    // A member of the wrong JSON type is a serialization error too.
    let answer = client.call("ListTables", json!({"Limit": "ten"}));
    assert_eq!(answer.error_name(), "SerializationException");
    // The connection is still usable.
    assert_eq!(client.call("ListTables", json!({})).status, 200);
}

#[test]
fn validation_errors_come_before_the_table_lookup() {
    let mut client = Client::start();
    let message = client.fails(
        "GetItem",
        json!({"TableName": "ab", "Key": {}}),
        "ValidationException",
    );
    assert_eq!(
        message,
        "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: \
         Member must have length greater than or equal to 3"
    );
    let message = client.fails(
        "GetItem",
        json!({"TableName": "missing"}),
        "ValidationException",
    );
    assert!(message.contains("Value null at 'key'"), "{message}");
    let message = client.fails(
        "PutItem",
        json!({"TableName": "missing", "Item": {"pk": {"S": "a"}}, "ReturnValues": "SOME"}),
        "ValidationException",
    );
    assert!(
        message.contains("Member must satisfy enum value set"),
        "{message}"
    );
    let answer = client.call(
        "GetItem",
        json!({"TableName": "missing", "Key": {"pk": {"S": "a"}}}),
    );
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.json(),
        json!({
            "__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
            "message": "Requested resource not found"
        })
    );
}

#[test]
fn validation_exception_uses_the_coral_validate_namespace() {
    let mut client = Client::start();
    create_table(&mut client, "things", false);
    let answer = client.call(
        "PutItem",
        json!({"TableName": "things", "Item": {"other": {"S": "x"}}}),
    );
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.json(),
        json!({
            "__type": "com.amazon.coral.validate#ValidationException",
            "message": "One or more parameter values were invalid: Missing the key pk in the item"
        })
    );
}

#[test]
fn oversized_body_is_413_and_never_read() {
    let db = Database::memory().unwrap();
    let options = ServerOptions {
        body_bytes_max: 1024,
        ..ServerOptions::default()
    };
    let mut client = Client::start_with(db, options);
    let answer = client.raw(
        b"POST / HTTP/1.1\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Length: 1000000\r\n\r\n",
    );
    assert_eq!(answer.status, 413);
    assert_eq!(answer.header("Connection"), Some("close"));
    assert!(
        answer.json()["__type"]
            .as_str()
            .unwrap()
            .ends_with("#RequestEntityTooLarge")
    );
}

#[test]
fn garbage_bytes_get_a_json_400() {
    let mut client = Client::start();
    let answer = client.raw(b"\x16\x03\x01 not http at all\r\n\r\n");
    assert_eq!(answer.status, 400);
    assert_eq!(answer.error_name(), "SerializationException");
    // The server is still up for new connections.
    let mut other = BufReader::new(client.connect());
    other
        .get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let answer = read_answer(&mut other);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"healthy: nimbus");
}

#[test]
fn chunked_and_expect_continue_requests_are_served() {
    let mut client = Client::start();
    let answer = client.raw(
        b"POST / HTTP/1.1\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\n\r\n",
    );
    assert_eq!(answer.status, 200);
    let mut stream = BufReader::new(client.connect());
    stream
        .get_mut()
        .write_all(b"POST / HTTP/1.1\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        .unwrap();
    let interim = read_answer(&mut stream);
    assert_eq!(interim.status, 100);
    stream.get_mut().write_all(b"{}").unwrap();
    assert_eq!(read_answer(&mut stream).status, 200);
}

#[test]
fn concurrent_connections_are_served() {
    let client = Client::start();
    let address = client.server.as_ref().unwrap().local_addr();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut stream = BufReader::new(std::net::TcpStream::connect(address).unwrap());
                for i in 0..20 {
                    let body = format!("{{\"Limit\": {}}}", 1 + (t + i) % 100);
                    let request = format!(
                        "POST / HTTP/1.1\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    stream.get_mut().write_all(request.as_bytes()).unwrap();
                    assert_eq!(read_answer(&mut stream).status, 200);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

fn signed_call(
    client: &mut Client,
    access_key: &str,
    secret: &str,
    skew_seconds: i64,
) -> server_client::Answer {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut request = Request {
        method: "POST".into(),
        target: "/".into(),
        headers: vec![
            ("Host".into(), "localhost".into()),
            ("X-Amz-Target".into(), "DynamoDB_20120810.ListTables".into()),
        ],
        body: b"{}".to_vec(),
        close: false,
    };
    sign(
        &mut request,
        access_key,
        secret,
        "us-east-1",
        now + skew_seconds,
    );
    let headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .filter(|(n, _)| n != "Host")
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    client.post(&headers, &request.body)
}

#[test]
fn sigv4_is_verified_when_keys_are_configured() {
    let options = ServerOptions {
        credentials: BTreeMap::from([("AKIDNIMBUS".to_owned(), "s3cret".to_owned())]),
        ..ServerOptions::default()
    };
    let mut client = Client::start_with(Database::memory().unwrap(), options);
    assert_eq!(
        signed_call(&mut client, "AKIDNIMBUS", "s3cret", 0).status,
        200
    );
    assert_eq!(
        signed_call(&mut client, "OTHER", "s3cret", 0).error_name(),
        "UnrecognizedClientException"
    );
    let wrong = signed_call(&mut client, "AKIDNIMBUS", "wrong", 0);
    assert_eq!(wrong.status, 400);
    assert_eq!(
        wrong.json()["__type"],
        "com.amazon.coral.service#InvalidSignatureException"
    );
    let skewed = signed_call(&mut client, "AKIDNIMBUS", "s3cret", -3600);
    assert_eq!(skewed.error_name(), "InvalidSignatureException");
    assert!(
        skewed.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("Signature expired")
    );
    assert_eq!(
        client.call("ListTables", json!({})).error_name(),
        "MissingAuthenticationTokenException"
    );
}

#[test]
fn any_credentials_are_accepted_by_default() {
    let mut client = Client::start();
    assert_eq!(
        signed_call(&mut client, "anything", "whatever", -86_400).status,
        200
    );
}

#[test]
fn shutdown_closes_idle_connections_and_keeps_data() {
    let db = Database::memory().unwrap();
    let mut client = Client::start_with(db.clone(), ServerOptions::default());
    create_table(&mut client, "kept", false);
    let idle = client.connect();
    client.server.take().unwrap().shutdown();
    // The idle connection was closed by the server.
    let mut buffer = [0u8; 1];
    assert_eq!(std::io::Read::read(&mut &idle, &mut buffer).unwrap_or(0), 0);
    assert_eq!(db.list_tables().send().unwrap().table_names, vec!["kept"]);
}

#[test]
fn describe_endpoints_and_limits() {
    let mut client = Client::start();
    let address = client.server.as_ref().unwrap().local_addr().to_string();
    let endpoints = client.ok("DescribeEndpoints", json!({}));
    assert_eq!(endpoints["Endpoints"][0]["Address"], address);
    let limits = client.ok("DescribeLimits", json!({}));
    assert_eq!(limits["TableMaxReadCapacityUnits"], 40_000);
}

#[test]
fn connections_over_the_limit_get_503_and_close_honours_connection_close() {
    let options = ServerOptions {
        connections_max: 1,
        ..ServerOptions::default()
    };
    let mut client = Client::start_with(Database::memory().unwrap(), options);
    // The first connection is registered once it has been served.
    assert_eq!(client.call("ListTables", json!({})).status, 200);
    let mut second = BufReader::new(client.connect());
    second
        .get_mut()
        .write_all(b"POST / HTTP/1.1\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Length: 2\r\n\r\n{}")
        .unwrap();
    let refused = read_answer(&mut second);
    assert_eq!(refused.status, 503);
    assert!(
        refused.json()["__type"]
            .as_str()
            .unwrap()
            .ends_with("#ServiceUnavailable")
    );

    let answer = client.post(
        &[
            ("X-Amz-Target", "DynamoDB_20120810.ListTables"),
            ("Connection", "close"),
        ],
        b"{}",
    );
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("Connection"), Some("close"));
}
