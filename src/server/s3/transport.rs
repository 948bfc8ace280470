//! One request from hyper to the s3s service, with the one correction the
//! wire needs: s3s reports a request body that fails to arrive (a
//! malformed chunked encoding or trailer, a connection cut mid-body) as
//! `500 InternalError` when it reads the body itself (XML configurations,
//! DeleteObjects). That is the client's fault, so such an answer becomes
//! `400 IncompleteBody`. Found by the `s3_request` fuzz target.
//!
//! Before s3s sees a request, `scope` checks the SigV4 date fields s3s
//! would panic on (see there); for a POST form, whose fields are in the
//! body, the body's first bytes are read ahead for it and then replayed.
//!
//! A request sent with `Expect: 100-continue` and answered before its body
//! arrived whole (a refused signature, a failed precondition) gets
//! `Connection: close`: the client may not have seen `100 Continue` before
//! the answer and then does not send the body (boto3 does not), and a
//! connection kept open would read the next request's first bytes as the
//! announced body (seen as `SignatureDoesNotMatch` on boto3's next call).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode};
use s3s::HttpError;
use s3s::service::S3Service;

use super::scope;

/// A request body that records whether reading it failed. Its first
/// frames may have been read already (a POST form's fields, checked by
/// `scope`): they are replayed first, as they came.
struct WatchedBody {
    /// Frames read before s3s got the body, in order.
    replay: VecDeque<Frame<Bytes>>,
    /// The rest of the body (`None`: it ended while being read ahead).
    inner: Option<Incoming>,
    failed: Arc<AtomicBool>,
    /// Set once the body has arrived whole (hyper knows where the next
    /// request starts).
    arrived: Arc<AtomicBool>,
}

impl WatchedBody {
    /// Records in `arrived` whether the rest of the body is known to be empty.
    fn note_arrival(&self) {
        if self.inner.as_ref().is_none_or(Incoming::is_end_stream) {
            self.arrived.store(true, Ordering::Relaxed);
        }
    }
}

impl Body for WatchedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(frame) = this.replay.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Err(_))) => this.failed.store(true, Ordering::Relaxed),
            Poll::Ready(None) => this.arrived.store(true, Ordering::Relaxed),
            _ => this.note_arrival(),
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.replay.is_empty() && self.inner.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let replayed: u64 = self
            .replay
            .iter()
            .filter_map(Frame::data_ref)
            .map(|data| data.len() as u64)
            .sum();
        let rest = self
            .inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Incoming::size_hint);
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(replayed));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(replayed));
        }
        hint
    }
}

/// The size of the pieces a read-ahead form is replayed in (zero-copy
/// slices of what was read).
const REPLAY_PIECE: usize = 64 << 10;

/// Reads up to [`scope::FORM_SCAN_BYTES`] of a POST form (or all of a
/// shorter one), queues them in `body.replay` (in [`REPLAY_PIECE`]s, then
/// trailers if the body ended with some) and returns them. `Err`: the body broke while
/// being read.
async fn read_ahead(body: &mut WatchedBody) -> Result<Bytes, ()> {
    let mut seen = Vec::new();
    let mut trailers = None;
    while seen.len() < scope::FORM_SCAN_BYTES {
        let Some(inner) = body.inner.as_mut() else {
            break;
        };
        match std::future::poll_fn(|cx| Pin::new(&mut *inner).poll_frame(cx)).await {
            None => body.inner = None,
            Some(Err(_)) => return Err(()),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => seen.extend_from_slice(&data),
                Err(other) => {
                    // Trailers end a body.
                    trailers = Some(other);
                    body.inner = None;
                }
            },
        }
    }
    let seen = Bytes::from(seen);
    // Replayed in pieces the size of a network read, not as one frame:
    // s3s refuses a form whose first frame alone exceeds its field limit.
    for start in (0..seen.len()).step_by(REPLAY_PIECE) {
        let end = seen.len().min(start + REPLAY_PIECE);
        body.replay.push_back(Frame::data(seen.slice(start..end)));
    }
    body.replay.extend(trailers);
    body.note_arrival();
    Ok(seen)
}

/// The S3 error body of a request whose body did not arrive whole.
const INCOMPLETE_BODY_XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<Error><Code>IncompleteBody</Code>\
<Message>The request body could not be read (malformed or cut short).</Message></Error>";

/// Serves `request` with `service` (see the module doc).
pub(super) async fn serve(
    service: &S3Service,
    request: Request<Incoming>,
) -> Result<Response<s3s::Body>, HttpError> {
    let expects_continue = request
        .headers()
        .get(hyper::header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let arrived = Arc::new(AtomicBool::new(false));
    let mut response = answer(service, request, arrived.clone()).await?;
    if expects_continue && !arrived.load(Ordering::Relaxed) {
        response.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    Ok(response)
}

/// The answer to `request`; `arrived` is set once its body is read whole.
async fn answer(
    service: &S3Service,
    request: Request<Incoming>,
    arrived: Arc<AtomicBool>,
) -> Result<Response<s3s::Body>, HttpError> {
    if let Err(rejection) = scope::check(request.uri().query(), request.headers()) {
        return Ok(error_response(rejection.status, rejection.xml()));
    }
    let failed = Arc::new(AtomicBool::new(false));
    let (head, inner) = request.into_parts();
    let mut body = WatchedBody {
        replay: VecDeque::new(),
        inner: Some(inner),
        failed: failed.clone(),
        arrived,
    };
    body.note_arrival();
    if scope::is_form_post(&head.method, &head.headers) {
        let Ok(form) = read_ahead(&mut body).await else {
            return Ok(error_response(400, INCOMPLETE_BODY_XML.to_owned()));
        };
        if let Err(rejection) = scope::check_form_fields(&form) {
            return Ok(error_response(rejection.status, rejection.xml()));
        }
    }
    let request = Request::from_parts(head, s3s::Body::http_body(body));
    let response = service.call(request).await?;
    if response.status() == StatusCode::INTERNAL_SERVER_ERROR && failed.load(Ordering::Relaxed) {
        return Ok(error_response(400, INCOMPLETE_BODY_XML.to_owned()));
    }
    Ok(response)
}

/// An S3 error answer of `status` with the XML body `xml`.
fn error_response(status: u16, xml: String) -> Response<s3s::Body> {
    let mut response = Response::new(s3s::Body::from(xml));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/xml"),
    );
    response
}
