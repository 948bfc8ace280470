//! The body of the `server_request` fuzz target: arbitrary bytes read as
//! an HTTP request and, when they parse, run as a DynamoDB operation on an
//! in-memory database. Whatever a client sends, the answer is JSON and its
//! status is a client error (4xx) or success — never a panic, never a 5xx.

use std::sync::OnceLock;

use super::http::{ReadError, read_request};
use super::ops::{Context, find};
use crate::{Database, ScalarType};

/// The body limit of the fuzzed server (small, so the limit is exercised).
const FUZZ_BODY_BYTES_MAX: usize = 64 * 1024;

fn context() -> &'static Context {
    static CONTEXT: OnceLock<Context> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        let db = Database::memory().unwrap_or_else(|e| panic!("in-memory database: {e}"));
        db.create_table("fuzz")
            .partition_key("pk", ScalarType::S)
            .sort_key("sk", ScalarType::N)
            .send()
            .unwrap_or_else(|e| panic!("fuzz table: {e}"));
        Context {
            db,
            endpoint: "127.0.0.1:8000".into(),
        }
    })
}

/// Parses `data` as one request and runs it (see the module doc).
#[doc(hidden)]
pub fn fuzz_request(data: &[u8]) {
    let mut interim = Vec::new();
    let request = match read_request(&mut &data[..], &mut interim, FUZZ_BODY_BYTES_MAX) {
        Ok(request) => request,
        Err(ReadError::Closed | ReadError::Malformed(_) | ReadError::TooLarge { .. }) => return,
        Err(ReadError::Io(kind)) => panic!("reading from a slice cannot fail: {kind}"),
    };
    let Some((operation, handler)) = request.header("x-amz-target").and_then(find) else {
        return;
    };
    match handler(context(), &request.body) {
        Ok(body) => {
            let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&body);
            assert!(parsed.is_ok(), "{operation} answered invalid JSON");
        }
        Err(error) => {
            assert!(
                (400..500).contains(&error.status),
                "{operation} answered {} {} for client bytes",
                error.status,
                error.type_name
            );
            let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&error.body());
            assert!(parsed.is_ok(), "{operation} error body is not JSON");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request(operation: &str, body: &str) -> Vec<u8> {
        format!(
            "POST / HTTP/1.1\r\nX-Amz-Target: DynamoDB_20120810.{operation}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    const SEEDS: &[(&str, &str)] = &[
        (
            "PutItem",
            r#"{"TableName":"fuzz","Item":{"pk":{"S":"a"},"sk":{"N":"1"}}}"#,
        ),
        (
            "GetItem",
            r#"{"TableName":"fuzz","Key":{"pk":{"S":"a"},"sk":{"N":"1"}}}"#,
        ),
        (
            "Query",
            r#"{"TableName":"fuzz","KeyConditions":{"pk":{"ComparisonOperator":"EQ"}}}"#,
        ),
        (
            "UpdateItem",
            r#"{"TableName":"fuzz","Key":{"pk":{"S":"a"},"sk":{"N":"1"}},"AttributeUpdates":{"x":{"Action":"ADD","Value":{"L":[]}}}}"#,
        ),
        (
            "Scan",
            r#"{"TableName":"fuzz","Segment":-1,"TotalSegments":99999999999}"#,
        ),
        ("BatchWriteItem", r#"{"RequestItems":{"fuzz":[{}]}}"#),
        (
            "TransactWriteItems",
            r#"{"TransactItems":[{"Put":{},"Delete":{}}]}"#,
        ),
        (
            "CreateTable",
            r#"{"TableName":"abc","KeySchema":[],"AttributeDefinitions":[]}"#,
        ),
        (
            "TagResource",
            r#"{"ResourceArn":"x:table/fuzz","Tags":[{"Key":"","Value":"v"}]}"#,
        ),
        ("ListTables", "[1,2,3]"),
    ];

    #[test]
    fn seeds_run_without_panicking() {
        for (operation, body) in SEEDS {
            fuzz_request(&request(operation, body));
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bodies_get_client_errors(body in "\\PC{0,200}", op in 0..super::super::ops::DYNAMODB_OPERATIONS.len()) {
            let operation = super::super::ops::DYNAMODB_OPERATIONS[op].0;
            fuzz_request(&request(operation, &body));
        }

        #[test]
        fn mutated_seeds_get_client_errors(
            seed in 0..SEEDS.len(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        ) {
            let (operation, body) = SEEDS[seed];
            let mut bytes = body.as_bytes().to_vec();
            for (position, byte) in edits {
                let position = position % bytes.len();
                // Printable ASCII keeps most mutations inside valid JSON
                // strings and members, where the operations' checks are.
                bytes[position] = b' ' + byte % 95;
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            fuzz_request(&request(operation, &text));
        }
    }
}
