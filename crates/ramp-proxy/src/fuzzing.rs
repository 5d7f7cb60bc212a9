//! Entry points for the coverage-guided fuzzers of `fuzz/` (targets `h1` and `admin`), and
//! the replay of their seed corpora in this crate's tests.
//!
//! The HTTP/1.1 codec (`h1`) is private to the crate, so its fuzzer can only reach it from
//! here. Each function takes the bytes a fuzzer generated, feeds them to the code that reads
//! them in production and checks what that code promises besides not panicking; a broken
//! promise is a panic, which the fuzzer records as a crash. Hidden from the documentation
//! because it is a test harness, not an API; compiled into every build so that the fuzzers (a
//! separate workspace) and the replay tests call the very same code (see
//! `docs/reliability.md`).

use crate::admin::{NewFault, SetWeights};
use crate::config::{bp_to_percent, percent_to_bp};
use crate::h1::{self, ChunkedDecoder, Decoded, Framing, ResponseHead};
use crate::routing::FaultAction;
use bytes::BytesMut;
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method, StatusCode, Version};
use std::time::Duration;

/// Fuzzes what an upstream sends back: a stream of response heads and a body, read as the
/// upstream pool reads it (`h1::parse_response`, interim 1xx heads skipped, then the body by
/// its framing, chunked bodies with `h1::ChunkedDecoder`).
///
/// The stream is read as the answer to a GET, a HEAD and a CONNECT. Checked besides the
/// absence of panics: a head is consumed only whole and only from the front, never beyond
/// `MAX_HEAD`, and no shorter prefix of it parses (so how the socket splits the bytes cannot
/// change where a head ends); the framing follows RFC 9112 §6.3 (a Content-Length framing
/// only from one agreeing decimal value, a connection kept alive only when the body is
/// self-delimited and no `Connection: close`); and a chunked body decodes to the same data,
/// trailers and leftover bytes however it is split into reads, never yields more data than
/// it was given, and reads back unchanged after the proxy's own chunked encoding.
pub fn h1_response(data: &[u8]) {
    for method in [Method::GET, Method::HEAD, Method::CONNECT] {
        response(data, &method);
    }
}

/// Reads `data` as the answer to a `method` request, as the pool does.
fn response(data: &[u8], method: &Method) {
    let mut buf = BytesMut::from(data);
    loop {
        let offset = data.len() - buf.len();
        let before = buf.len();
        let head = match h1::parse_response(&mut buf, method) {
            Ok(None) => {
                assert_eq!(buf.len(), before, "an incomplete head consumed bytes");
                assert!(
                    before <= h1::MAX_HEAD,
                    "a head longer than MAX_HEAD is pending"
                );
                return;
            }
            Err(_) => {
                assert_eq!(buf.len(), before, "a refused head consumed bytes");
                return;
            }
            Ok(Some(head)) => head,
        };
        let used = before - buf.len();
        assert!(used > 0 && used <= h1::MAX_HEAD, "a head of {used} bytes");
        assert_eq!(
            &buf[..],
            &data[offset + used..],
            "not a prefix was consumed"
        );
        check_prefixes(&data[offset..offset + used], method);
        check_head(&head, method);
        let status = head.parts.status;
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            continue;
        }
        if head.framing == Framing::Chunked {
            chunked(&buf);
        }
        return;
    }
}

/// Checks that no proper prefix of a complete head parses (a head ends at one place).
fn check_prefixes(head: &[u8], method: &Method) {
    for cut in [0, head.len() / 2, head.len() - 1] {
        let mut buf = BytesMut::from(&head[..cut]);
        match h1::parse_response(&mut buf, method) {
            Ok(None) => assert_eq!(buf.len(), cut),
            other => panic!("a {cut}-byte prefix of a complete head gave {other:?}"),
        }
    }
}

/// Checks a parsed head's framing and keep-alive against RFC 9112 §6.3.
fn check_head(head: &ResponseHead, method: &Method) {
    let parts = &head.parts;
    assert!(parts.version == Version::HTTP_10 || parts.version == Version::HTTP_11);
    let status = parts.status;
    let tunnel = *method == Method::CONNECT && status.is_success();
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || *method == Method::HEAD;
    let has_token = |token: &str| {
        parts.headers.get_all(CONNECTION).iter().any(|v| {
            v.as_bytes()
                .split(|&b| b == b',')
                .any(|e| e.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    // An interim head's keep-alive means nothing (the pool reads the final head next).
    if head.keep_alive && !status.is_informational() {
        assert!(!tunnel);
        assert!(!has_token("close"), "kept alive despite Connection: close");
        assert!(parts.version == Version::HTTP_11 || has_token("keep-alive"));
    }
    match head.framing {
        Framing::Empty => assert!(bodiless && !tunnel, "no body for a {status}"),
        Framing::UntilClose => assert!(!head.keep_alive, "no end but the close"),
        Framing::Chunked => {
            assert!(!bodiless && !tunnel);
            assert!(parts.headers.contains_key(TRANSFER_ENCODING));
        }
        Framing::Length(n) => {
            assert!(!bodiless && !tunnel);
            assert!(!parts.headers.contains_key(TRANSFER_ENCODING));
            let mut values = 0;
            for value in parts.headers.get_all(CONTENT_LENGTH) {
                for element in value.as_bytes().split(|&b| b == b',') {
                    let digits = element.trim_ascii();
                    assert!(!digits.is_empty() && digits.iter().all(u8::is_ascii_digit));
                    let text = std::str::from_utf8(digits).expect("ASCII digits");
                    assert_eq!(text.parse::<u64>().ok(), Some(n), "Content-Length {text}");
                    values += 1;
                }
            }
            assert!(values > 0, "a length without a Content-Length");
        }
    }
    if tunnel || status == StatusCode::SWITCHING_PROTOCOLS {
        assert!(!head.keep_alive, "a {status} connection cannot be reused");
    }
}

/// What decoding a chunked body came to.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// The body ended: its data, its trailers, and what followed it.
    Done {
        /// The decoded data.
        data: Vec<u8>,
        /// The trailers, if the section was not empty.
        trailers: Option<HeaderMap>,
        /// The bytes after the body.
        rest: Vec<u8>,
    },
    /// The input ended inside the body.
    NeedMore {
        /// The data decoded so far.
        data: Vec<u8>,
    },
    /// The framing was refused.
    Failed {
        /// The data decoded before the error.
        data: Vec<u8>,
        /// The error, as `Debug` shows it.
        error: String,
    },
}

/// Checks a chunked body (see [`h1_response`]).
fn chunked(body: &[u8]) {
    let whole = decode(body, body.len().max(1));
    assert_eq!(decode(body, (body.len() / 7).max(1)), whole, "split in 7");
    if body.len() <= 512 {
        assert_eq!(decode(body, 1), whole, "fed one byte at a time");
    }
    if let Outcome::Done {
        data,
        trailers,
        rest,
    } = &whole
    {
        assert!(data.len() + rest.len() <= body.len());
        assert!(body.ends_with(rest));
        let mut out = BytesMut::new();
        // Chunks of several sizes, as a client's body arrives.
        for piece in data.chunks(1000) {
            h1::encode_chunk_size(piece.len(), &mut out);
            out.extend_from_slice(piece);
            out.extend_from_slice(h1::CHUNK_END);
        }
        h1::encode_last_chunk(trailers.as_ref(), &mut out);
        let expected = Outcome::Done {
            data: data.clone(),
            trailers: trailers.clone(),
            rest: Vec::new(),
        };
        assert_eq!(
            decode(&out, out.len()),
            expected,
            "the encoding does not read back"
        );
    }
}

/// Decodes `input` fed in reads of `step` bytes, with every read's checks.
fn decode(input: &[u8], step: usize) -> Outcome {
    let mut decoder = ChunkedDecoder::new();
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut data = Vec::new();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Decoded::Data(bytes)) => {
                assert!(!bytes.is_empty(), "empty data");
                data.extend_from_slice(&bytes);
                assert!(data.len() <= fed, "more data than input");
            }
            Ok(Decoded::NeedMore) if fed == input.len() => return Outcome::NeedMore { data },
            Ok(Decoded::NeedMore) => {
                let end = (fed + step).min(input.len());
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
            Ok(Decoded::Done(trailers)) => {
                let left = buf.len();
                let again = decoder
                    .decode(&mut buf)
                    .expect("a finished decoder stays done");
                assert_eq!(again, Decoded::Done(None));
                assert_eq!(buf.len(), left, "a finished decoder consumed bytes");
                buf.extend_from_slice(&input[fed..]);
                return Outcome::Done {
                    data,
                    trailers,
                    rest: buf.to_vec(),
                };
            }
            Err(e) => {
                return Outcome::Failed {
                    data,
                    error: format!("{e:?}"),
                }
            }
        }
    }
}

/// Fuzzes the admin API's request bodies: `PUT /weights` and `POST /faults`, deserialized as
/// the handler deserializes them and checked by the same functions.
///
/// An accepted weight must be within 0..=100 % and within half a basis point of what was
/// asked; an accepted fault must have a fraction within 0..=1, a duration above zero and at
/// most a day that can be added to the clock, and a delay of at most five minutes or an
/// abort status within 400..=599.
pub fn admin_body(data: &[u8]) {
    if let Ok(set) = serde_json::from_slice::<SetWeights>(data) {
        match percent_to_bp(set.canary) {
            Some(bp) => {
                assert!(
                    bp <= ramp_flags::BASIS_POINTS,
                    "{} % gave {bp} bp",
                    set.canary
                );
                let off = (bp_to_percent(bp) - set.canary).abs();
                assert!(off <= 0.005 + 1e-9, "{} % gave {bp} bp", set.canary);
            }
            None => assert!(!(0.0..=100.0).contains(&set.canary), "{} %", set.canary),
        }
    }
    if let Ok(new) = serde_json::from_slice::<NewFault>(data) {
        match new.check() {
            Ok(spec) => {
                assert!((0.0..=1.0).contains(&spec.fraction));
                assert!(spec.duration > Duration::ZERO);
                assert!(spec.duration <= Duration::from_secs(86_400));
                match spec.action {
                    FaultAction::Delay(d) => assert!(d <= Duration::from_secs(300)),
                    FaultAction::Abort(s) => assert!((400..=599).contains(&s.as_u16())),
                }
                let _expires = crate::clock::now() + spec.duration;
            }
            Err(why) => assert!(!why.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Runs every seed of one target's corpus through its entry point.
    fn replay(target: &str, entry: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target);
        let mut seeds = 0;
        for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            entry(&std::fs::read(file.unwrap().path()).unwrap());
            seeds += 1;
        }
        assert!(seeds > 0, "{} has no seeds", dir.display());
    }

    #[test]
    fn replays_the_h1_corpus() {
        replay("h1", super::h1_response);
    }

    #[test]
    fn replays_the_admin_corpus() {
        replay("admin", super::admin_body);
    }
}
