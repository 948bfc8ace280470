//! The body of the `s3_request` fuzz target: arbitrary bytes sent, as they
//! are, down an in-memory connection to the S3 endpoint's full stack —
//! hyper's HTTP/1.1 parser, s3s's routing, SigV4 and XML, and this
//! module's operations over an in-memory database. Whatever a client
//! sends (one request or several pipelined, truncated bodies included),
//! nothing panics (the fuzzer aborts on a panic in any thread, including
//! the blocking pool's) and no answer is a 500 Internal Error, which here
//! would mean a bug rather than a failing disk.
//!
//! The first byte chooses the endpoint: even, one without access keys
//! (every request acts as the owner, so the operations are reached);
//! odd, one with a key (signatures and anonymous access are checked).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use hyper::StatusCode;
use hyper::service::service_fn;
use parking_lot::Mutex;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::runtime::Runtime;

use super::access::{Access, Keys, S3User, VirtualHosts};
use super::service::NimbusS3;
use super::transport;
use crate::Database;

/// The one user of the keyed endpoint.
const FUZZ_USER: &str = "AKIDFUZZ:fuzz-secret:fuzzer";

/// The runtime and the two endpoints, built once per process.
struct Endpoints {
    runtime: Runtime,
    open: S3Service,
    keyed: S3Service,
}

fn endpoint(db: Database, users: &[S3User]) -> S3Service {
    let keys = Keys::new(users);
    let s3 = NimbusS3::new(db.clone(), keys.clone(), "us-east-1".to_owned());
    let mut builder = S3ServiceBuilder::new(s3);
    if let Ok(hosts) = VirtualHosts::new(&["localhost".to_owned()]) {
        builder.set_host(hosts);
    }
    if !keys.is_empty() {
        builder.set_auth(keys.clone());
        builder.set_access(Access::new(db, keys));
    }
    builder.build()
}

fn endpoints() -> &'static Endpoints {
    static ENDPOINTS: OnceLock<Endpoints> = OnceLock::new();
    ENDPOINTS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("fuzz runtime: {e}"));
        let db = Database::memory().unwrap_or_else(|e| panic!("in-memory database: {e}"));
        // A bucket with an object, so reads and copies find something.
        let objects = db.objects();
        let _ = objects.create_bucket("fuzz").md5_e_tags(true).send();
        let _ = objects.put_object("fuzz", "key").body("fuzz body").send();
        let user = S3User::parse(FUZZ_USER).unwrap_or_else(|e| panic!("fuzz user: {e}"));
        Endpoints {
            runtime,
            open: endpoint(db.clone(), &[]),
            keyed: endpoint(db, &[user]),
        }
    })
}

/// A connection whose client side is a fixed byte string: reads return
/// it and then end; writes are kept.
struct Wire {
    input: Vec<u8>,
    position: usize,
    written: usize,
}

impl hyper::rt::Read for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let rest = &this.input[this.position..];
        let len = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..len]);
        this.position += len;
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().written += buf.len();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Serves `data` (see the module doc) and returns the status of every
/// answer the endpoint gave.
#[doc(hidden)]
pub fn fuzz_s3_request(data: &[u8]) -> Vec<u16> {
    let Some((&mode, request)) = data.split_first() else {
        return Vec::new();
    };
    let endpoints = endpoints();
    let service = if mode % 2 == 0 {
        endpoints.open.clone()
    } else {
        endpoints.keyed.clone()
    };
    let statuses: Arc<Mutex<Vec<u16>>> = Arc::default();
    let seen = statuses.clone();
    let recording = service_fn(move |request| {
        let service = service.clone();
        let seen = seen.clone();
        async move {
            let answer = transport::serve(&service, request).await;
            if let Ok(answer) = &answer {
                seen.lock().push(answer.status().as_u16());
            }
            answer
        }
    });
    let wire = Wire {
        input: request.to_vec(),
        position: 0,
        written: 0,
    };
    endpoints.runtime.block_on(async move {
        // The wire ends (a half-close) right after the last byte: the
        // requests read by then are still answered. A malformed request
        // ends the connection with an error: fine.
        let _ = hyper::server::conn::http1::Builder::new()
            .half_close(true)
            .serve_connection(wire, recording)
            .await;
    });
    let statuses = std::mem::take(&mut *statuses.lock());
    for status in &statuses {
        assert_ne!(
            *status,
            StatusCode::INTERNAL_SERVER_ERROR.as_u16(),
            "an internal error for client bytes"
        );
    }
    statuses
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(request: &str) -> Vec<u16> {
        let mut data = vec![0u8];
        data.extend_from_slice(request.as_bytes());
        fuzz_s3_request(&data)
    }

    #[test]
    fn requests_reach_the_operations() {
        assert_eq!(
            run("GET /fuzz/key HTTP/1.1\r\nHost: localhost\r\n\r\n"),
            [200]
        );
        assert_eq!(
            run("PUT /fuzz/new HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc"),
            [200]
        );
        assert_eq!(
            run("GET /fuzz/missing HTTP/1.1\r\nHost: localhost\r\n\r\n\
                 GET /fuzz?list-type=2 HTTP/1.1\r\nHost: localhost\r\n\r\n"),
            [404, 200],
            "pipelined requests are each answered"
        );
    }

    #[test]
    fn the_keyed_endpoint_refuses_anonymous_writes() {
        let mut data = vec![1u8];
        data.extend_from_slice(
            b"PUT /fuzz/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(fuzz_s3_request(&data), [403]);
    }

    #[test]
    fn a_malformed_chunked_body_is_a_client_error() {
        // Found by the fuzzer: a trailer line that is not a header failed
        // s3s's own read of an XML body, which it reports as a 500.
        let statuses = run("PUT /fuzz?lifecycle HTTP/1.1\r\nHost: localhost\r\n\
             Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\
             x-amz-checksum- c2c3r:NSRBwg==\r\n\r\n");
        assert_eq!(statuses, [400]);
    }

    #[test]
    fn malformed_sigv4_dates_are_client_errors() {
        // Found by the fuzzer: s3s 0.14.1 computes `c - b'0'` before it
        // checks for a digit, so a byte below '0' in a SigV4 date
        // overflowed (a panic with overflow checks) — in a presigned URL's
        // credential scope, and likewise in its X-Amz-Date, an
        // Authorization header's scope, its x-amz-date, a POST form's.
        let signature = "0".repeat(64);
        let presigned = format!(
            "GET /fuzz/key?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIDFUZZ%2F2026%21101%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host\
             &X-Amz-Signature={signature} HTTP/1.1\r\nHost: localhost\r\n\r\n"
        );
        let header = format!(
            "GET /fuzz/key HTTP/1.1\r\nHost: localhost\r\nx-amz-date: 2026\t101T000000Z\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=AKIDFUZZ/20260101/us-east-1/s3/aws4_request, \
             SignedHeaders=host, Signature={signature}\r\n\r\n"
        );
        let form = "--b\r\nContent-Disposition: form-data; name=\"x-amz-credential\"\r\n\r\n\
                    AKIDFUZZ/2026 101/us-east-1/s3/aws4_request\r\n--b\r\n\
                    Content-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--b--\r\n";
        let post = format!(
            "POST /fuzz HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        );
        for (request, status) in [(presigned, 400), (header, 403), (post, 400)] {
            for mode in [0u8, 1] {
                let mut data = vec![mode];
                data.extend_from_slice(request.as_bytes());
                assert_eq!(fuzz_s3_request(&data), [status], "{request}");
            }
        }
    }

    #[test]
    fn truncated_and_garbled_requests_are_survived() {
        run("PUT /fuzz/short HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nabc");
        run("POST /fuzz?delete HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\n<Dele");
        run("\u{0}\u{1}GARBAGE\r\n\r\n");
        assert!(fuzz_s3_request(&[]).is_empty());
    }
}
