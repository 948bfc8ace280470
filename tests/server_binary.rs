//! The `nimbus serve` command: it prints where it listens, serves a data
//! directory, shuts down gracefully on SIGTERM (exit status 0, data kept
//! for the next start) and rejects bad arguments with its usage.
#![cfg(all(feature = "server", unix))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

mod server_client;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use serde_json::json;
use server_client::read_answer;

fn serve(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nimbus"))
        .args(["serve", "--port", "0"])
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut banner = String::new();
    stderr.read_line(&mut banner).unwrap();
    let address = banner
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("banner {banner:?}"))
        .to_owned();
    // Drain the request log so the child never blocks on the pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, address)
}

fn call(address: &str, operation: &str, input: serde_json::Value) -> (u16, serde_json::Value) {
    let mut stream = BufReader::new(TcpStream::connect(address).unwrap());
    let body = input.to_string();
    let request = format!(
        "POST / HTTP/1.1\r\nX-Amz-Target: DynamoDB_20120810.{operation}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.get_mut().write_all(request.as_bytes()).unwrap();
    let answer = read_answer(&mut stream);
    (answer.status, answer.json())
}

fn terminate(mut child: Child) -> std::process::ExitStatus {
    assert!(
        Command::new("kill")
            .arg(child.id().to_string())
            .status()
            .unwrap()
            .success()
    );
    child.wait().unwrap()
}

#[test]
fn sigterm_shuts_down_cleanly_and_data_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let (child, address) = serve(&["--data", path]);
    let (status, _) = call(
        &address,
        "CreateTable",
        json!({
            "TableName": "kept",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
    assert_eq!(status, 200);
    let (status, _) = call(
        &address,
        "PutItem",
        json!({"TableName": "kept", "Item": {"pk": {"S": "a"}, "v": {"N": "7"}}}),
    );
    assert_eq!(status, 200);
    assert!(terminate(child).success());

    let (child, address) = serve(&["--data", path, "--quiet"]);
    let (status, body) = call(
        &address,
        "GetItem",
        json!({"TableName": "kept", "Key": {"pk": {"S": "a"}}}),
    );
    assert_eq!(status, 200);
    assert_eq!(body["Item"]["v"], json!({"N": "7"}));
    assert!(terminate(child).success());
}

#[test]
fn bad_arguments_print_usage_and_fail() {
    let output = Command::new(env!("CARGO_BIN_EXE_nimbus"))
        .args(["serve", "--port", "not-a-port"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--port"), "{stderr}");
    assert!(stderr.contains("usage: nimbus serve"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_nimbus")).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}
