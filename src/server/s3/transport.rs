//! One request from hyper to the s3s service, with the one correction the
//! wire needs: s3s reports a request body that fails to arrive (a
//! malformed chunked encoding or trailer, a connection cut mid-body) as
//! `500 InternalError` when it reads the body itself (XML configurations,
//! DeleteObjects). That is the client's fault, so such an answer becomes
//! `400 IncompleteBody`. Found by the `s3_request` fuzz target.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode};
use s3s::HttpError;
use s3s::service::S3Service;

/// A request body that records whether reading it failed.
struct WatchedBody {
    inner: Incoming,
    failed: Arc<AtomicBool>,
}

impl Body for WatchedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &polled {
            this.failed.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
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
    let failed = Arc::new(AtomicBool::new(false));
    let watched = failed.clone();
    let request = request.map(|inner| {
        s3s::Body::http_body(WatchedBody {
            inner,
            failed: watched,
        })
    });
    let response = service.call(request).await?;
    if response.status() == StatusCode::INTERNAL_SERVER_ERROR && failed.load(Ordering::Relaxed) {
        let mut corrected = Response::new(s3s::Body::from(INCOMPLETE_BODY_XML.to_owned()));
        *corrected.status_mut() = StatusCode::BAD_REQUEST;
        corrected.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/xml"),
        );
        return Ok(corrected);
    }
    Ok(response)
}
