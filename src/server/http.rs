//! The HTTP/1.1 subset the AWS SDKs speak to DynamoDB: one request at a
//! time per connection, keep-alive, bodies framed by `Content-Length` or
//! `chunked`, `Expect: 100-continue`. It owns parsing and framing only; it
//! never interprets a body.
//!
//! Every read is bounded (request line and headers by
//! [`HEADER_BYTES_MAX`], bodies by the server's body limit), so a client
//! cannot make the server buffer without limit.

use std::io::{self, BufRead, Read, Write};

/// The most bytes of request line plus headers.
pub const HEADER_BYTES_MAX: usize = 64 * 1024;

/// The most headers in one request.
pub const HEADERS_MAX: usize = 100;

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Whether the client asked to close the connection after the answer.
    pub close: bool,
}

impl Request {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The connection closed (or timed out) between requests: not an error.
    Closed,
    /// The bytes are not HTTP/1.1; answer 400 and close.
    Malformed(&'static str),
    /// The body is over the limit; answer 413 and close.
    TooLarge {
        /// The limit in bytes.
        limit_bytes: usize,
    },
    /// The socket failed (or timed out) mid-request; nothing can be
    /// answered.
    Io(io::ErrorKind),
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> Self {
        Self::Io(error.kind())
    }
}

/// Reads one line (CRLF or LF) without its terminator, charging `budget`.
fn read_line(reader: &mut impl BufRead, budget: &mut usize) -> Result<String, ReadError> {
    let mut line = Vec::new();
    let limit = (*budget as u64).saturating_add(1);
    let read = reader.by_ref().take(limit).read_until(b'\n', &mut line)?;
    if read == 0 {
        return Err(ReadError::Closed);
    }
    if read > *budget || line.last() != Some(&b'\n') {
        return Err(if read > *budget {
            ReadError::Malformed("request header fields too large")
        } else {
            ReadError::Malformed("truncated request head")
        });
    }
    *budget -= read;
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| ReadError::Malformed("request head is not UTF-8"))
}

/// Reads the next request from `reader`. `continue_to` receives the interim
/// `100 Continue` when the client waits for it. Bodies over
/// `body_bytes_max` are refused before they are read.
pub fn read_request(
    reader: &mut impl BufRead,
    continue_to: &mut impl Write,
    body_bytes_max: usize,
) -> Result<Request, ReadError> {
    let mut budget = HEADER_BYTES_MAX;
    let mut request_line = read_line(reader, &mut budget)?;
    // RFC 9112 §2.2: a server should ignore empty lines before a request.
    while request_line.is_empty() {
        request_line = read_line(reader, &mut budget)?;
    }
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Malformed("bad request line"));
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(ReadError::Malformed("unsupported HTTP version"));
    }
    let mut headers = Vec::new();
    loop {
        let line = match read_line(reader, &mut budget) {
            Err(ReadError::Closed) => return Err(ReadError::Malformed("truncated request head")),
            other => other?,
        };
        if line.is_empty() {
            break;
        }
        if headers.len() == HEADERS_MAX {
            return Err(ReadError::Malformed("too many headers"));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Malformed("header without a colon"));
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let mut request = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body: Vec::new(),
        close: version == "HTTP/1.0",
    };
    if let Some(connection) = request.header("connection") {
        if connection.eq_ignore_ascii_case("close") {
            request.close = true;
        } else if connection.eq_ignore_ascii_case("keep-alive") {
            request.close = false;
        }
    }
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = match request.header("content-length") {
        Some(text) => Some(
            text.parse::<usize>()
                .map_err(|_| ReadError::Malformed("bad Content-Length"))?,
        ),
        None => None,
    };
    if length.is_some_and(|n| n > body_bytes_max) {
        return Err(ReadError::TooLarge {
            limit_bytes: body_bytes_max,
        });
    }
    if (chunked || length.is_some_and(|n| n > 0))
        && request
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        continue_to.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        continue_to.flush()?;
    }
    request.body = if chunked {
        read_chunked(reader, body_bytes_max)?
    } else {
        let mut body = vec![0; length.unwrap_or(0)];
        reader.read_exact(&mut body).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => ReadError::Malformed("truncated body"),
            kind => ReadError::Io(kind),
        })?;
        body
    };
    Ok(request)
}

/// Reads a `chunked` body (trailers are read and dropped).
fn read_chunked(reader: &mut impl BufRead, body_bytes_max: usize) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    let mut budget = HEADER_BYTES_MAX;
    loop {
        let line = read_line(reader, &mut budget)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| ReadError::Malformed("bad chunk size"))?;
        if size == 0 {
            while !read_line(reader, &mut budget)?.is_empty() {}
            return Ok(body);
        }
        if body.len().saturating_add(size) > body_bytes_max {
            return Err(ReadError::TooLarge {
                limit_bytes: body_bytes_max,
            });
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader
            .read_exact(&mut body[start..])
            .map_err(|_| ReadError::Malformed("truncated chunk"))?;
        if !read_line(reader, &mut budget)?.is_empty() {
            return Err(ReadError::Malformed("chunk not followed by CRLF"));
        }
    }
}

/// One response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers besides `Content-Length` and `Connection`.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The reason phrase of the statuses the server sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes `response` in one `write` call (head and body together, so a
/// small answer is one TCP segment).
pub fn write_response(writer: &mut impl Write, response: &Response, close: bool) -> io::Result<()> {
    let mut out = Vec::with_capacity(256 + response.body.len());
    write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    )?;
    for (name, value) in &response.headers {
        write!(out, "{name}: {value}\r\n")?;
    }
    write!(out, "Content-Length: {}\r\n", response.body.len())?;
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&response.body);
    writer.write_all(&out)?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8], limit: usize) -> (Result<Request, ReadError>, Vec<u8>) {
        let mut interim = Vec::new();
        let result = read_request(&mut &bytes[..], &mut interim, limit);
        (result, interim)
    }

    #[test]
    fn content_length_body_is_read_exactly() {
        let (request, _) = parse(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcdEXTRA",
            100,
        );
        let request = request.unwrap();
        assert_eq!(request.body, b"abcd");
        assert_eq!(request.header("HOST"), Some("x"));
        assert!(!request.close);
    }

    #[test]
    fn chunked_body_is_reassembled() {
        let (request, _) = parse(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            100,
        );
        assert_eq!(request.unwrap().body, b"abcde");
    }

    #[test]
    fn oversized_body_is_refused_before_reading() {
        let (result, _) = parse(b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 100);
        assert!(matches!(
            result,
            Err(ReadError::TooLarge { limit_bytes: 100 })
        ));
    }

    #[test]
    fn expect_continue_gets_interim_answer() {
        let (request, interim) = parse(
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
            100,
        );
        assert_eq!(request.unwrap().body, b"x");
        assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn garbage_is_malformed_and_eof_is_closed() {
        assert!(matches!(
            parse(b"hello\r\n\r\n", 10).0,
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(parse(b"", 10).0, Err(ReadError::Closed)));
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: zz\r\n\r\n", 10).0,
            Err(ReadError::Malformed(_))
        ));
    }

    #[test]
    fn endless_header_is_bounded() {
        let mut bytes = b"POST / HTTP/1.1\r\nX: ".to_vec();
        bytes.extend(std::iter::repeat_n(b'a', HEADER_BYTES_MAX + 10));
        assert!(matches!(parse(&bytes, 10).0, Err(ReadError::Malformed(_))));
    }

    #[test]
    fn response_has_length_and_close() {
        let mut out = Vec::new();
        let response = Response {
            status: 400,
            headers: vec![("X-A", "1".into())],
            body: b"{}".to_vec(),
        };
        write_response(&mut out, &response, true).unwrap();
        assert_eq!(
            out,
            b"HTTP/1.1 400 Bad Request\r\nX-A: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        );
    }
}
