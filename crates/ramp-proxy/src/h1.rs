//! The HTTP/1.1 client-side codec of the proxy's upstream connections.
//!
//! The proxy drives each upstream HTTP/1.1 connection inside the task of the request that
//! uses it: there is no connection task and no channel between the request and its
//! connection, so a request costs no task spawn, no wake-up of another task and no message
//! passing. That code needs a codec it can call between its own reads and writes, and this
//! module is that codec: it is pure and sans-I/O (no socket, no runtime, no clock). The
//! caller owns a [`BytesMut`] read buffer that it fills from the socket and a [`BytesMut`]
//! output buffer that it writes to the socket; the functions here only look at and consume
//! the front of the one, and append to the other.
//!
//! Response heads and trailer sections are parsed with `httparse` (the parser hyper uses),
//! into `http`'s types, and the body's framing is decided as RFC 9112 §6.3 says for
//! responses. Request heads, chunk-size lines and the last chunk are written directly into
//! the output buffer. Body bytes are never copied: decoded chunk data and content are split
//! off the read buffer.
//!
//! Every function is total: any input, however hostile, gives a value or an [`H1Error`],
//! never a panic, and every buffered part of a message is bounded ([`MAX_HEAD`],
//! [`MAX_HEADERS`], and a chunk-size line's length).

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

/// Most bytes a response head (status line + headers) or a trailer section may take.
///
/// A head is buffered whole before it is parsed, so this bounds the memory one upstream
/// response can pin before its body starts; it is the limit nginx's and hyper's defaults are
/// in the range of, and far above what real servers send.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// Most header fields a response head or trailer section may have.
///
/// The fields are parsed into an array of this many slots on the stack, so the parser never
/// allocates for them; a head with more is refused rather than truncated.
pub(crate) const MAX_HEADERS: usize = 128;

/// Most bytes a chunk-size line (digits and extensions, without its CRLF) may take.
///
/// Chunk extensions are ignored, so they must not be a way to make the proxy read an
/// unbounded amount of data that produces no body bytes.
const MAX_SIZE_LINE: usize = 4096;

/// Most hex digits of a chunk size: sixteen fill a `u64`, so a seventeenth would overflow.
const MAX_SIZE_DIGITS: u8 = 16;

/// Why an upstream's response could not be read.
///
/// Every variant means the upstream sent something that is not valid HTTP/1.1 (or that is
/// beyond the proxy's limits), so the connection cannot be trusted any more: the caller
/// reports an upstream protocol error and closes it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum H1Error {
    /// httparse rejected the head (bad status line, bad header syntax...) or it has more than MAX_HEADERS fields.
    #[error("malformed response head: {0}")]
    Parse(httparse::Error),
    /// The head (or trailers) did not end within MAX_HEAD bytes.
    #[error("response head larger than {} bytes", MAX_HEAD)]
    HeadTooLarge,
    /// Content-Length is not a valid decimal number, or several differ.
    #[error("invalid content-length")]
    ContentLength,
    /// A header name or value http's types refuse.
    #[error("invalid header field")]
    Header,
    /// The chunked framing is broken (bad size line, missing CRLF, size overflow, line too long...). The &'static str says what.
    #[error("malformed chunked body: {0}")]
    Chunked(&'static str),
}

/// How a message body is delimited (RFC 9112 §6).
///
/// The caller needs it to know where a body ends, which is also where the connection
/// becomes free for the next request (or, for [`Framing::UntilClose`], never does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body at all.
    Empty,
    /// Exactly this many bytes (Length(0) is allowed and means no body bytes).
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// A parsed response head.
///
/// It carries, besides the head itself, the two facts about the connection that the head
/// decides, so the caller never has to re-read the headers to know them.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    /// Status, version (HTTP/1.0 or HTTP/1.1) and every header field exactly as received (names lowercased by http's HeaderName, repeated fields kept as repeated entries, order of values per name kept). Hop-by-hop fields are NOT removed here; the caller does that.
    pub(crate) parts: http::response::Parts,
    /// How the body that follows is delimited.
    pub(crate) framing: Framing,
    /// Whether the connection may carry another request after this response's body.
    ///
    /// It is false whenever the response or its framing forbids reuse (`Connection: close`,
    /// an HTTP/1.0 server without `keep-alive`, a body delimited by the close, a 101 or a
    /// CONNECT tunnel, or a framing that looks like an attempt at response smuggling), so the
    /// caller returns the connection to its pool only when this is true.
    pub(crate) keep_alive: bool,
}

/// Parses a response head at the start of `buf`.
///
/// Ok(None): incomplete, nothing consumed (the caller reads more; if buf.len() > MAX_HEAD
/// with no complete head, this returns Err(HeadTooLarge) instead). Ok(Some(head)): the head's
/// bytes were removed from the front of `buf`, leaving the body bytes that followed.
/// `method` is the request's method, which the framing depends on: HEAD responses have no
/// body, and a 2xx answer to CONNECT turns the connection into a tunnel
/// ([`Framing::UntilClose`] with `keep_alive` false, even for a 204).
///
/// The rules are RFC 9112 §6.3's, with one conservative addition: a response that has both
/// `Transfer-Encoding: chunked` and `Content-Length`, or `Transfer-Encoding` in an HTTP/1.0
/// response, is framed as chunked but not kept alive, as §6.1 and §6.3 advise for messages
/// that may be smuggling attempts.
pub(crate) fn parse_response(
    buf: &mut BytesMut,
    method: &Method,
) -> Result<Option<ResponseHead>, H1Error> {
    // Parse no more than MAX_HEAD bytes: a head that does not end within them is refused.
    let window = &buf[..buf.len().min(MAX_HEAD)];
    // Left uninitialised: httparse fills only as many as the head has, and initialising
    // MAX_HEADERS fields per response would cost more than parsing a typical head.
    let mut fields =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        window,
        &mut fields,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(H1Error::HeadTooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(H1Error::Parse(e)),
    };
    let version = match response.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => return Err(H1Error::Parse(httparse::Error::Version)),
    };
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or(H1Error::Parse(httparse::Error::Status))?;
    let headers = header_map(response.headers)?;
    let (framing, keep_alive) = framing(method, status, version, &headers)?;
    buf.advance(len);

    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = status;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(ResponseHead {
        parts,
        framing,
        keep_alive,
    }))
}

/// Converts httparse's fields into a header map, keeping repeated fields in order.
fn header_map(fields: &[httparse::Header<'_>]) -> Result<HeaderMap, H1Error> {
    let mut map = HeaderMap::with_capacity(fields.len());
    for field in fields {
        let name = HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| H1Error::Header)?;
        let value = HeaderValue::from_bytes(field.value).map_err(|_| H1Error::Header)?;
        map.append(name, value);
    }
    Ok(map)
}

/// Decides a response body's framing and whether the connection stays reusable after it
/// (RFC 9112 §6.3, in that order).
fn framing(
    method: &Method,
    status: StatusCode,
    version: Version,
    headers: &HeaderMap,
) -> Result<(Framing, bool), H1Error> {
    if *method == Method::CONNECT && status.is_success() {
        // The connection is a tunnel from the end of the head on.
        return Ok((Framing::UntilClose, false));
    }
    if status.is_informational() {
        return Ok((Framing::Empty, status != StatusCode::SWITCHING_PROTOCOLS));
    }
    if status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || *method == Method::HEAD
    {
        return Ok((Framing::Empty, persistent(version, headers)));
    }
    if let Some(coding) = headers.get_all(TRANSFER_ENCODING).iter().next_back() {
        let last = coding
            .as_bytes()
            .rsplit(|&b| b == b',')
            .next()
            .map(trim_ows)
            .unwrap_or_default();
        if !last.eq_ignore_ascii_case(b"chunked") {
            return Ok((Framing::UntilClose, false));
        }
        let suspicious = headers.contains_key(CONTENT_LENGTH) || version == Version::HTTP_10;
        return Ok((
            Framing::Chunked,
            !suspicious && persistent(version, headers),
        ));
    }
    match content_length(headers)? {
        Some(n) => Ok((Framing::Length(n), persistent(version, headers))),
        None => Ok((Framing::UntilClose, false)),
    }
}

/// Whether the connection persists after a response whose body is self-delimited: HTTP/1.1
/// unless `Connection: close`, HTTP/1.0 only with `Connection: keep-alive` (and no `close`).
fn persistent(version: Version, headers: &HeaderMap) -> bool {
    let close = has_token(headers, &CONNECTION, b"close");
    if version == Version::HTTP_11 {
        !close
    } else {
        !close && has_token(headers, &CONNECTION, b"keep-alive")
    }
}

/// Whether any field `name` lists `token` (case-insensitive, in comma-separated lists).
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &[u8]) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|element| trim_ows(element).eq_ignore_ascii_case(token))
    })
}

/// The Content-Length of a response, if it has one: every element of every field must be
/// the same decimal number (RFC 9110 §8.6 allows a repeated identical value).
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, H1Error> {
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for element in value.as_bytes().split(|&b| b == b',') {
            let n = parse_decimal(trim_ows(element)).ok_or(H1Error::ContentLength)?;
            if length.is_some_and(|previous| previous != n) {
                return Err(H1Error::ContentLength);
            }
            length = Some(n);
        }
    }
    Ok(length)
}

/// Parses a non-empty run of ASCII digits (no sign, no spaces) that fits a `u64`.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Removes optional whitespace (spaces and tabs) around a list element.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// Room reserved for a request head before encoding it.
const HEAD_RESERVE: usize = 1024;

/// Writes a request head for an HTTP/1.1 upstream.
///
/// The head is "METHOD SP target SP HTTP/1.1\r\n", every header of `parts.headers` as
/// "name: value\r\n" (all values of repeated names, in order) except Content-Length and
/// Transfer-Encoding, the `added` fields (the proxy's own, written here rather than inserted
/// into the map), then the framing's own field: "transfer-encoding: chunked\r\n" for
/// Chunked, "content-length: n\r\n" for Length(n), none otherwise; then "\r\n". The
/// target is the URI's authority for CONNECT (authority-form) and its path and query
/// otherwise (origin-form), "/" when the URI has none. `parts.version` is ignored: upstreams
/// are always spoken to in HTTP/1.1. The caller removes hop-by-hop fields.
pub(crate) fn encode_request_head(
    parts: &http::request::Parts,
    added: &[(&HeaderName, &HeaderValue)],
    framing: Framing,
    out: &mut BytesMut,
) {
    // One reservation for a typical head: the buffer is reused from request to request, so
    // this is normally free.
    out.reserve(HEAD_RESERVE);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.extend_from_slice(b" ");
    let authority = parts.uri.authority().map(|a| a.as_str());
    match authority {
        Some(authority) if parts.method == Method::CONNECT => {
            out.extend_from_slice(authority.as_bytes());
        }
        _ => {
            let target = parts.uri.path_and_query().map_or("", |pq| pq.as_str());
            if !target.starts_with('/') && target != "*" {
                out.extend_from_slice(b"/");
            }
            out.extend_from_slice(target.as_bytes());
        }
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &parts.headers {
        // The body's framing is this function's alone (below): a client's Content-Length
        // next to the chunked coding, or a list such as "5, 5", must never reach the
        // upstream, where a disagreement about the body's end is request smuggling.
        if name != CONTENT_LENGTH && name != TRANSFER_ENCODING {
            put_field(name, value, out);
        }
    }
    for (name, value) in added {
        put_field(name, value, out);
    }
    match framing {
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            put_number(n, 10, out);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Empty | Framing::UntilClose => {}
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes one header field line.
fn put_field(name: &HeaderName, value: &HeaderValue, out: &mut BytesMut) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Writes `n` in base `radix` (10 or 16, lowercase digits) without going through `fmt`.
fn put_number(mut n: u64, radix: u64, out: &mut BytesMut) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // u64::MAX has 20 decimal digits, and fewer in any larger base.
    let mut text = [0u8; 20];
    let mut start = text.len();
    while start > 0 {
        start -= 1;
        // `n % radix` is below 16, so the index is in bounds.
        text[start] = DIGITS[(n % radix) as usize];
        n /= radix;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&text[start..]);
}

/// Writes a chunk-size line for a chunk of `len` bytes ("{len:x}\r\n"); the caller then writes
/// the data and CHUNK_END. `len` must be positive: a zero size would end the body (the peer
/// would read the data that follows as trailers), which only [`encode_last_chunk`] may do.
pub(crate) fn encode_chunk_size(len: usize, out: &mut BytesMut) {
    put_number(len as u64, 16, out);
    out.extend_from_slice(b"\r\n");
}

/// What ends each chunk's data; the caller writes it after the bytes announced by
/// [`encode_chunk_size`].
pub(crate) const CHUNK_END: &[u8] = b"\r\n";

/// Writes the last chunk and the trailer section: "0\r\n", each trailer as "name: value\r\n",
/// "\r\n". This is what ends a chunked request body, with the client's trailers if any.
pub(crate) fn encode_last_chunk(trailers: Option<&HeaderMap>, out: &mut BytesMut) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        put_field(name, value, out);
    }
    out.extend_from_slice(b"\r\n");
}

/// Where a [`ChunkedDecoder`] is in the chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk size's hex digits.
    Size {
        /// The size read so far.
        size: u64,
        /// How many digits were read, to refuse more than [`MAX_SIZE_DIGITS`].
        digits: u8,
        /// Bytes of the line read so far, to refuse more than [`MAX_SIZE_LINE`].
        line: usize,
    },
    /// After the digits: whitespace before an extension, an extension, or the line's CR.
    SizeRest {
        /// The chunk's size.
        size: u64,
        /// Whether a `;` was seen, after which every byte but CR and LF is ignored.
        extension: bool,
        /// Bytes of the line read so far, to refuse more than [`MAX_SIZE_LINE`].
        line: usize,
    },
    /// After the size line's CR, expecting its LF.
    SizeLf {
        /// The chunk's size.
        size: u64,
    },
    /// Inside a chunk's data.
    Data {
        /// Data bytes of the chunk not yet returned; never zero.
        remaining: u64,
    },
    /// After a chunk's data, expecting its CR.
    DataCr,
    /// After a chunk's data and CR, expecting its LF.
    DataLf,
    /// After the last chunk's size line: the trailer section.
    Trailers,
    /// The body and its trailers were consumed.
    Done,
}

/// Decodes a chunked body incrementally.
///
/// It keeps the position in the chunked framing between calls, so the caller can feed it
/// whatever the socket returned, however the body is split into reads, and gets the body's
/// data without copies. Only CRLF line endings are accepted in size lines and after chunk
/// data: a bare LF there is an error (RFC 9112 §7.1 requires CRLF; being strict leaves no
/// room for framing disagreements with other parsers). The trailer section is parsed by
/// httparse, which also accepts bare LFs there.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    /// Where the decoder is in the body; partial size lines live here, not in the buffer.
    state: State,
}

/// What ChunkedDecoder::decode found.
#[derive(Debug, PartialEq)]
pub(crate) enum Decoded {
    /// Body bytes: split off the front of `buf` with no copy; at most what remains of the
    /// current chunk; never empty.
    Data(Bytes),
    /// `buf` holds no complete next step; read more and call again (nothing is lost: partial
    /// size lines are kept in the decoder's state, partial trailer sections stay in `buf`).
    NeedMore,
    /// The last chunk and the trailer section were consumed; the trailers if there were any
    /// (None if the section was empty). Bytes after it stay in `buf`.
    Done(Option<HeaderMap>),
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body, before the first size line.
    pub(crate) fn new() -> Self {
        Self {
            state: State::Size {
                size: 0,
                digits: 0,
                line: 0,
            },
        }
    }

    /// Decodes as far as the next piece of data (or the end) from the front of `buf`,
    /// consuming what it used. Once it has returned `Done`, it returns `Done(None)` again
    /// without consuming anything.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, H1Error> {
        loop {
            match self.state {
                State::Data { remaining } => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { remaining: left }
                    };
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                State::Trailers => return self.trailers(buf),
                State::Done => return Ok(Decoded::Done(None)),
                _ => {
                    // The framing bytes between data: consume them one at a time.
                    let Some(&byte) = buf.first() else {
                        return Ok(Decoded::NeedMore);
                    };
                    self.state = next_state(self.state, byte)?;
                    buf.advance(1);
                }
            }
        }
    }

    /// Parses the trailer section after the last chunk, if it is all in `buf`.
    fn trailers(&mut self, buf: &mut BytesMut) -> Result<Decoded, H1Error> {
        let window = &buf[..buf.len().min(MAX_HEAD)];
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let (len, trailers) = match httparse::parse_headers(window, &mut fields) {
            Ok(httparse::Status::Complete((len, fields))) => (len, header_map(fields)?),
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err(H1Error::HeadTooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(Decoded::NeedMore),
            Err(e) => return Err(H1Error::Parse(e)),
        };
        buf.advance(len);
        self.state = State::Done;
        Ok(Decoded::Done((!trailers.is_empty()).then_some(trailers)))
    }
}

/// The state after one more byte of a size line or of the CRLF after chunk data, in
/// `state`; the data, trailer and end states are left as they are.
fn next_state(state: State, byte: u8) -> Result<State, H1Error> {
    let next = match state {
        State::Size { size, digits, line } => match hex_value(byte) {
            Some(value) => {
                if digits == MAX_SIZE_DIGITS {
                    return Err(H1Error::Chunked("chunk size overflow"));
                }
                State::Size {
                    size: (size << 4) | u64::from(value),
                    digits: digits + 1,
                    line: line + 1,
                }
            }
            None if digits == 0 => return Err(H1Error::Chunked("invalid chunk size")),
            // The digits ended: the byte belongs to the rest of the line.
            None => {
                let rest = State::SizeRest {
                    size,
                    extension: false,
                    line,
                };
                return next_state(rest, byte);
            }
        },
        State::SizeRest {
            size,
            extension,
            line,
        } => match byte {
            b'\r' => State::SizeLf { size },
            b'\n' => return Err(H1Error::Chunked("bare LF in chunk size line")),
            b';' | b' ' | b'\t' if !extension => State::SizeRest {
                size,
                extension: byte == b';',
                line: line + 1,
            },
            _ if extension => State::SizeRest {
                size,
                extension,
                line: line + 1,
            },
            _ => return Err(H1Error::Chunked("invalid chunk size")),
        },
        State::SizeLf { size } => match (byte, size) {
            (b'\n', 0) => State::Trailers,
            (b'\n', remaining) => State::Data { remaining },
            _ => return Err(H1Error::Chunked("missing LF after chunk size")),
        },
        State::DataCr => match byte {
            b'\r' => State::DataLf,
            _ => return Err(H1Error::Chunked("missing CRLF after chunk data")),
        },
        State::DataLf => match byte {
            b'\n' => ChunkedDecoder::new().state,
            _ => return Err(H1Error::Chunked("missing CRLF after chunk data")),
        },
        State::Data { .. } | State::Trailers | State::Done => state,
    };
    match next {
        State::Size { line, .. } | State::SizeRest { line, .. } if line > MAX_SIZE_LINE => {
            Err(H1Error::Chunked("size line too long"))
        }
        next => Ok(next),
    }
}

/// The value of a hex digit, if `byte` is one.
fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `head` whole and expects a complete head.
    fn parse(head: &str, method: &Method) -> ResponseHead {
        let mut buf = BytesMut::from(head);
        match parse_response(&mut buf, method) {
            Ok(Some(head)) => head,
            other => panic!("expected a head from {head:?}, got {other:?}"),
        }
    }

    /// Parses `head` whole for a GET and returns its framing and keep-alive.
    fn framing_of(head: &str) -> (Framing, bool) {
        let head = parse(head, &Method::GET);
        (head.framing, head.keep_alive)
    }

    /// Parses `head` whole for a GET and returns its error.
    fn error_of(head: &str) -> H1Error {
        let mut buf = BytesMut::from(head);
        match parse_response(&mut buf, &Method::GET) {
            Err(e) => e,
            other => panic!("expected an error from {head:?}, got {other:?}"),
        }
    }

    #[test]
    fn simple_response_leaves_body_in_buffer() {
        let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello");
        let head = parse_response(&mut buf, &Method::GET).unwrap().unwrap();
        assert_eq!(head.parts.status, StatusCode::OK);
        assert_eq!(head.parts.version, Version::HTTP_11);
        assert_eq!(head.parts.headers["content-length"], "5");
        assert_eq!(head.parts.headers["x-a"], "b");
        assert_eq!(head.framing, Framing::Length(5));
        assert!(head.keep_alive);
        assert_eq!(&buf[..], b"hello");
    }

    #[test]
    fn incomplete_head_consumes_nothing_at_every_split_point() {
        let full = b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nServer: x\r\n\r\n";
        for end in 0..full.len() {
            let mut buf = BytesMut::from(&full[..end]);
            assert!(
                parse_response(&mut buf, &Method::GET).unwrap().is_none(),
                "prefix of {end} bytes"
            );
            assert_eq!(&buf[..], &full[..end], "prefix of {end} bytes was consumed");
        }
        let mut buf = BytesMut::from(&full[..]);
        let head = parse_response(&mut buf, &Method::GET).unwrap().unwrap();
        assert_eq!(head.parts.status, StatusCode::NOT_FOUND);
        assert!(buf.is_empty());
    }

    #[test]
    fn responses_without_body() {
        let head = parse(
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
            &Method::HEAD,
        );
        assert_eq!((head.framing, head.keep_alive), (Framing::Empty, true));
        for status in [204, 304] {
            let head = format!("HTTP/1.1 {status} X\r\nContent-Length: 10\r\n\r\n");
            assert_eq!(framing_of(&head), (Framing::Empty, true), "{status}");
        }
        assert_eq!(
            framing_of("HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n"),
            (Framing::Empty, false)
        );
    }

    #[test]
    fn informational_responses() {
        for status in [100, 102, 103] {
            let head = format!("HTTP/1.1 {status} X\r\n\r\n");
            assert_eq!(framing_of(&head), (Framing::Empty, true), "{status}");
        }
        let head = parse(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            &Method::GET,
        );
        assert_eq!(head.parts.status, StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!((head.framing, head.keep_alive), (Framing::Empty, false));
    }

    #[test]
    fn chunked_framing() {
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (Framing::Chunked, true)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked \r\n\r\n"),
            (Framing::Chunked, true)
        );
        assert_eq!(
            framing_of(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            (Framing::Chunked, true)
        );
    }

    #[test]
    fn chunked_overrides_content_length_without_keep_alive() {
        assert_eq!(
            framing_of(
                "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            (Framing::Chunked, false)
        );
        // Even an invalid Content-Length is ignored.
        assert_eq!(
            framing_of(
                "HTTP/1.1 200 OK\r\nContent-Length: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            (Framing::Chunked, false)
        );
        // Transfer-Encoding in HTTP/1.0 is suspicious too.
        assert_eq!(
            framing_of(
                "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            (Framing::Chunked, false)
        );
    }

    #[test]
    fn transfer_coding_other_than_chunked_reads_until_close() {
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n"),
            (Framing::UntilClose, false)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            (Framing::UntilClose, false)
        );
    }

    #[test]
    fn no_length_reads_until_close() {
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n"),
            (Framing::UntilClose, false)
        );
        assert_eq!(
            framing_of("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n"),
            (Framing::UntilClose, false)
        );
    }

    #[test]
    fn connect_success_is_a_tunnel() {
        let head = parse(
            "HTTP/1.1 200 Connection Established\r\n\r\nrest",
            &Method::CONNECT,
        );
        assert_eq!(
            (head.framing, head.keep_alive),
            (Framing::UntilClose, false)
        );
        // A refused CONNECT is an ordinary response.
        let head = parse(
            "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
            &Method::CONNECT,
        );
        assert_eq!((head.framing, head.keep_alive), (Framing::Length(0), true));
    }

    #[test]
    fn equal_content_lengths_are_accepted() {
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n"),
            (Framing::Length(5), true)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            (Framing::Length(5), true)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            (Framing::Length(0), true)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n"),
            (Framing::Length(u64::MAX), true)
        );
    }

    #[test]
    fn different_content_lengths_are_rejected() {
        for head in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        ] {
            assert!(matches!(error_of(head), H1Error::ContentLength), "{head:?}");
        }
    }

    #[test]
    fn malformed_content_lengths_are_rejected() {
        for value in ["-1", "", "1 2", "+5", "5,", "0x5", "18446744073709551616"] {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\n");
            assert!(
                matches!(error_of(&head), H1Error::ContentLength),
                "{value:?}"
            );
        }
    }

    #[test]
    fn keep_alive_rules() {
        let cases = [
            ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", true),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: Close\r\n\r\n",
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: foo, close\r\n\r\n",
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: closed\r\n\r\n",
                true,
            ),
            ("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: Keep-Alive\r\n\r\n",
                true,
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: x\r\nConnection: keep-alive\r\n\r\n",
                true,
            ),
            (
                "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n",
                false,
            ),
        ];
        for (head, keep_alive) in cases {
            let parsed = parse(head, &Method::GET);
            assert_eq!(parsed.keep_alive, keep_alive, "{head:?}");
        }
        assert_eq!(
            parse("HTTP/1.0 200 OK\r\n\r\n", &Method::GET).parts.version,
            Version::HTTP_10
        );
    }

    #[test]
    fn head_too_large() {
        // One field whose value never ends.
        let mut head = b"HTTP/1.1 200 OK\r\nx-filler: ".to_vec();
        head.resize(MAX_HEAD + 1, b'a');
        let mut buf = BytesMut::from(&head[..]);
        assert!(matches!(
            parse_response(&mut buf, &Method::GET),
            Err(H1Error::HeadTooLarge)
        ));
        // Exactly MAX_HEAD bytes without an end is still only incomplete.
        let mut buf = BytesMut::from(&head[..MAX_HEAD]);
        assert!(parse_response(&mut buf, &Method::GET).unwrap().is_none());
    }

    #[test]
    fn too_many_headers() {
        let mut head = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..MAX_HEADERS {
            head.push_str(&format!("x-h{i}: v\r\n"));
        }
        let mut ok = head.clone();
        ok.push_str("\r\n");
        assert_eq!(parse(&ok, &Method::GET).parts.headers.len(), MAX_HEADERS);
        head.push_str("x-one-more: v\r\n\r\n");
        assert!(matches!(
            error_of(&head),
            H1Error::Parse(httparse::Error::TooManyHeaders)
        ));
    }

    #[test]
    fn malformed_heads_are_rejected() {
        assert!(matches!(
            error_of("HTTP/1.1 2x0 OK\r\n\r\n"),
            H1Error::Parse(_)
        ));
        assert!(matches!(
            error_of("HTTP/2.0 200 OK\r\n\r\n"),
            H1Error::Parse(_)
        ));
        assert!(matches!(
            error_of("HTTP/1.1 099 X\r\n\r\n"),
            H1Error::Parse(_)
        ));
        assert!(matches!(
            error_of("HTTP/1.1 200 OK\r\nbad name: v\r\n\r\n"),
            H1Error::Parse(_)
        ));
    }

    #[test]
    fn repeated_headers_keep_their_order() {
        let head = parse(
            "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nContent-Length: 0\r\nSet-Cookie: b=2\r\nset-cookie: c=3\r\n\r\n",
            &Method::GET,
        );
        let cookies: Vec<_> = head.parts.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2", "c=3"]);
    }

    #[test]
    fn obsolete_reason_phrase_is_accepted() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 \xe9t\xe9\r\nContent-Length: 0\r\n\r\n"[..]);
        let head = parse_response(&mut buf, &Method::GET).unwrap().unwrap();
        assert_eq!(head.parts.status, StatusCode::OK);
    }

    /// Encodes a request head built from `request`.
    fn encode(request: http::Request<()>, framing: Framing) -> String {
        let (parts, ()) = request.into_parts();
        let mut out = BytesMut::new();
        encode_request_head(&parts, &[], framing, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn encodes_bodiless_get() {
        let request = http::Request::get("http://example.com/a/b?x=1&y")
            .version(Version::HTTP_2)
            .header("host", "example.com")
            .header("accept", "*/*")
            .body(())
            .unwrap();
        assert_eq!(
            encode(request, Framing::Empty),
            "GET /a/b?x=1&y HTTP/1.1\r\nhost: example.com\r\naccept: */*\r\n\r\n"
        );
        let request = http::Request::get("http://example.com").body(()).unwrap();
        assert_eq!(encode(request, Framing::Empty), "GET / HTTP/1.1\r\n\r\n");
        let request = http::Request::options("*").body(()).unwrap();
        assert_eq!(
            encode(request, Framing::Empty),
            "OPTIONS * HTTP/1.1\r\n\r\n"
        );
    }

    #[test]
    fn encodes_post_with_length() {
        let request = http::Request::post("/submit")
            .header("host", "h")
            .body(())
            .unwrap();
        assert_eq!(
            encode(request, Framing::Length(1234567890)),
            "POST /submit HTTP/1.1\r\nhost: h\r\ncontent-length: 1234567890\r\n\r\n"
        );
        // The client's content-length fields are replaced by the framing's one field.
        let request = http::Request::post("/submit")
            .header("content-length", "3")
            .body(())
            .unwrap();
        assert_eq!(
            encode(request, Framing::Length(3)),
            "POST /submit HTTP/1.1\r\ncontent-length: 3\r\n\r\n"
        );
        let request = http::Request::post("/submit")
            .header("content-length", "5, 5")
            .header("content-length", "5")
            .body(())
            .unwrap();
        assert_eq!(
            encode(request, Framing::Length(5)),
            "POST /submit HTTP/1.1\r\ncontent-length: 5\r\n\r\n"
        );
        let request = http::Request::post("/").body(()).unwrap();
        assert_eq!(
            encode(request, Framing::Length(0)),
            "POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n"
        );
    }

    #[test]
    fn encodes_post_chunked() {
        let request = http::Request::post("/up")
            .header("host", "h")
            .body(())
            .unwrap();
        assert_eq!(
            encode(request, Framing::Chunked),
            "POST /up HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        // Never a content-length next to the chunked coding, and only the framing's own
        // transfer-encoding field.
        let request = http::Request::post("/up")
            .header("content-length", "5, 5")
            .header("transfer-encoding", "chunked")
            .body(())
            .unwrap();
        assert_eq!(
            encode(request, Framing::Chunked),
            "POST /up HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn encodes_connect_in_authority_form() {
        let request = http::Request::connect("example.com:443")
            .header("host", "example.com:443")
            .body(())
            .unwrap();
        assert_eq!(
            encode(request, Framing::Empty),
            "CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n"
        );
    }

    #[test]
    fn encodes_repeated_header_values_in_order() {
        let request = http::Request::get("/")
            .header("x-a", "1")
            .header("x-b", "2")
            .header("x-a", "3")
            .body(())
            .unwrap();
        assert_eq!(
            encode(request, Framing::Empty),
            "GET / HTTP/1.1\r\nx-a: 1\r\nx-a: 3\r\nx-b: 2\r\n\r\n"
        );
    }

    /// A chunked body with extensions and trailers, followed by the next response's bytes.
    const CHUNKED: &[u8] = b"5;name=value\r\nhello\r\n1B ; ext\r\n, this is chunked data!!!!!\r\n000\r\nX-Checksum: abc\r\nX-Other: 1\r\nx-checksum: def\r\n\r\nHTTP/1.1";
    /// The data of [`CHUNKED`].
    const PAYLOAD: &[u8] = b"hello, this is chunked data!!!!!";
    /// What follows [`CHUNKED`]'s body.
    const AFTER: &[u8] = b"HTTP/1.1";

    /// Feeds `input` to a new decoder in pieces of `step` bytes; returns the data, the
    /// trailers and what is left in the buffer after Done.
    fn decode_in_steps(input: &[u8], step: usize) -> (Vec<u8>, Option<HeaderMap>, BytesMut) {
        let mut decoder = ChunkedDecoder::new();
        let mut buf = BytesMut::new();
        let mut fed = 0;
        let mut data = Vec::new();
        loop {
            match decoder.decode(&mut buf).unwrap() {
                Decoded::Data(bytes) => {
                    assert!(!bytes.is_empty());
                    data.extend_from_slice(&bytes);
                }
                Decoded::NeedMore => {
                    assert!(fed < input.len(), "decoder wants more than the whole input");
                    let end = (fed + step).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
                Decoded::Done(trailers) => {
                    buf.extend_from_slice(&input[fed..]);
                    return (data, trailers, buf);
                }
            }
        }
    }

    #[test]
    fn decodes_chunked_body_fed_whole() {
        let mut decoder = ChunkedDecoder::default();
        let mut buf = BytesMut::from(CHUNKED);
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from_static(b"hello"))
        );
        let (data, trailers, rest) = decode_in_steps(CHUNKED, CHUNKED.len());
        assert_eq!(data, PAYLOAD);
        let trailers = trailers.unwrap();
        let checksums: Vec<_> = trailers.get_all("x-checksum").iter().collect();
        assert_eq!(checksums, ["abc", "def"]);
        assert_eq!(trailers["x-other"], "1");
        assert_eq!(&rest[..], AFTER);
    }

    #[test]
    fn decodes_chunked_body_fed_one_byte_at_a_time() {
        let (data, trailers, rest) = decode_in_steps(CHUNKED, 1);
        assert_eq!(data, PAYLOAD);
        let trailers = trailers.unwrap();
        assert_eq!(trailers.len(), 3);
        assert_eq!(trailers["x-other"], "1");
        assert_eq!(&rest[..], AFTER);
        for step in [2, 3, 7, 13] {
            let (data, trailers, rest) = decode_in_steps(CHUNKED, step);
            assert_eq!(data, PAYLOAD, "step {step}");
            assert_eq!(trailers.unwrap().len(), 3, "step {step}");
            assert_eq!(&rest[..], AFTER, "step {step}");
        }
    }

    #[test]
    fn decodes_empty_chunked_body_without_trailers() {
        let mut decoder = ChunkedDecoder::new();
        let mut buf = BytesMut::from("0\r\n\r\nnext");
        assert_eq!(decoder.decode(&mut buf).unwrap(), Decoded::Done(None));
        assert_eq!(&buf[..], b"next");
        assert_eq!(decoder.decode(&mut buf).unwrap(), Decoded::Done(None));
        assert_eq!(&buf[..], b"next");
    }

    /// Decodes `input` whole and returns the first error.
    fn chunked_error(input: &[u8]) -> H1Error {
        let mut decoder = ChunkedDecoder::new();
        let mut buf = BytesMut::from(input);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Decoded::Data(_)) => {}
                Ok(other) => panic!("expected an error from {input:?}, got {other:?}"),
                Err(e) => return e,
            }
        }
    }

    #[test]
    fn rejects_broken_chunked_framing() {
        let cases: &[(&[u8], &str)] = &[
            (b"g\r\n", "invalid chunk size"),
            (b"\r\n", "invalid chunk size"),
            (b";ext\r\n", "invalid chunk size"),
            (b"5x\r\n", "invalid chunk size"),
            (b"-5\r\n", "invalid chunk size"),
            (b"5\n", "bare LF in chunk size line"),
            (b"5\r\r", "missing LF after chunk size"),
            (b"3\r\nabcX\r\n", "missing CRLF after chunk data"),
            (b"3\r\nabc\rX", "missing CRLF after chunk data"),
            (b"3\r\nabc\n", "missing CRLF after chunk data"),
            (b"10000000000000000\r\n", "chunk size overflow"),
            (b"00000000000000001\r\n", "chunk size overflow"),
        ];
        for (input, what) in cases {
            match chunked_error(input) {
                H1Error::Chunked(found) => assert_eq!(found, *what, "{input:?}"),
                other => panic!("{input:?}: {other:?}"),
            }
        }
        // Sixteen digits are fine.
        let mut buf = BytesMut::from("ffffffffffffffff\r\nab");
        assert_eq!(
            ChunkedDecoder::new().decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from_static(b"ab"))
        );
    }

    #[test]
    fn rejects_too_long_size_line() {
        let mut line = b"5;".to_vec();
        line.resize(MAX_SIZE_LINE, b'x');
        let mut decoder = ChunkedDecoder::new();
        let mut buf = BytesMut::from(&line[..]);
        assert_eq!(decoder.decode(&mut buf).unwrap(), Decoded::NeedMore);
        buf.extend_from_slice(b"\r\nhello");
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from_static(b"hello"))
        );
        line.push(b'x');
        assert!(matches!(
            chunked_error(&line),
            H1Error::Chunked("size line too long")
        ));
        let spaces = [b' '; MAX_SIZE_LINE];
        let mut line = b"5".to_vec();
        line.extend_from_slice(&spaces);
        assert!(matches!(
            chunked_error(&line),
            H1Error::Chunked("size line too long")
        ));
    }

    #[test]
    fn rejects_oversized_trailers() {
        // One field whose value never ends.
        let mut input = b"0\r\nx-filler: ".to_vec();
        input.resize(MAX_HEAD + 4, b'a');
        assert!(matches!(chunked_error(&input), H1Error::HeadTooLarge));
        // Exactly MAX_HEAD bytes of trailers without an end are only incomplete.
        let mut decoder = ChunkedDecoder::new();
        let mut buf = BytesMut::from(&input[..MAX_HEAD + 3]);
        assert_eq!(decoder.decode(&mut buf).unwrap(), Decoded::NeedMore);
        assert_eq!(buf.len(), MAX_HEAD);
        assert!(matches!(
            chunked_error(&[&b"0\r\n"[..], &b"x-a: b\r\n".repeat(MAX_HEADERS + 1)].concat()),
            H1Error::Parse(httparse::Error::TooManyHeaders)
        ));
        assert!(matches!(
            chunked_error(b"0\r\nbad name: x\r\n\r\n"),
            H1Error::Parse(_)
        ));
    }

    #[test]
    fn encodes_chunk_framing() {
        let mut out = BytesMut::new();
        encode_chunk_size(1, &mut out);
        encode_chunk_size(0x1a, &mut out);
        encode_chunk_size(4096, &mut out);
        encode_chunk_size(usize::MAX, &mut out);
        let max = format!("{:x}\r\n", usize::MAX);
        assert_eq!(out, format!("1\r\n1a\r\n1000\r\n{max}").as_bytes());

        let mut out = BytesMut::new();
        encode_last_chunk(None, &mut out);
        assert_eq!(&out[..], b"0\r\n\r\n");
        let mut out = BytesMut::new();
        encode_last_chunk(Some(&HeaderMap::new()), &mut out);
        assert_eq!(&out[..], b"0\r\n\r\n");
        let mut trailers = HeaderMap::new();
        trailers.append("x-sum", HeaderValue::from_static("1"));
        trailers.append("grpc-status", HeaderValue::from_static("0"));
        trailers.append("x-sum", HeaderValue::from_static("2"));
        let mut out = BytesMut::new();
        encode_last_chunk(Some(&trailers), &mut out);
        assert_eq!(
            &out[..],
            b"0\r\nx-sum: 1\r\nx-sum: 2\r\ngrpc-status: 0\r\n\r\n"
        );
    }

    #[test]
    fn chunked_round_trip() {
        let chunks: [&[u8]; 4] = [b"a", b"0123456789abcdef0", &[0u8; 300], b"\r\n0\r\n\r\n"];
        let mut trailers = HeaderMap::new();
        trailers.append("x-trailer", HeaderValue::from_static("yes"));
        let mut out = BytesMut::new();
        let mut payload = Vec::new();
        for chunk in chunks {
            encode_chunk_size(chunk.len(), &mut out);
            out.extend_from_slice(chunk);
            out.extend_from_slice(CHUNK_END);
            payload.extend_from_slice(chunk);
        }
        encode_last_chunk(Some(&trailers), &mut out);
        for step in [1, 5, out.len()] {
            let (data, decoded_trailers, rest) = decode_in_steps(&out, step);
            assert_eq!(data, payload, "step {step}");
            assert_eq!(decoded_trailers.as_ref(), Some(&trailers), "step {step}");
            assert!(rest.is_empty(), "step {step}");
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        // A fixed xorshift sequence of inputs made of bytes that matter to the grammars.
        const ALPHABET: &[u8] = b"HTTP/1.0 2\r\n:;,aZf9\t\x00\xff";
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2000 {
            let len = (next() % 64) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            let mut buf = BytesMut::from(&input[..]);
            let _ = parse_response(&mut buf, &Method::GET);
            let mut buf = BytesMut::from(&input[..]);
            let mut decoder = ChunkedDecoder::new();
            while let Ok(Decoded::Data(_)) = decoder.decode(&mut buf) {}
        }
    }
}
