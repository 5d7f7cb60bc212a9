//! The OFREP wire format: parsing evaluation requests, rendering responses, and the bulk
//! ETag. Pure functions, tested without a server.

use crate::flags::{EvalError, Resolution, Snapshot};
use serde::Deserialize;
use std::borrow::Cow;
use std::hash::{Hash, Hasher};

/// Why a request body is not an OFREP evaluation request (HTTP 400, `INVALID_CONTEXT`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

/// `{"context": {"targetingKey": …, …}}` for a single evaluation: only the targeting key is
/// kept (borrowed from the body when it has no escapes); the other attributes are checked to
/// be valid JSON and skipped, so parsing allocates nothing for them.
#[derive(Deserialize)]
struct SingleRequest<'a> {
    /// The evaluation context; absent or `null` is accepted as empty (flagd does the same).
    #[serde(borrow, default)]
    context: Option<SingleContext<'a>>,
}

/// The part of a context a single evaluation needs. Deserialized by hand so that only a
/// JSON object is accepted (serde's derive would also take an array as a struct).
struct SingleContext<'a> {
    /// The key users are bucketed by.
    targeting_key: Option<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for SingleContext<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ContextVisitor)
    }
}

/// Reads a context object, keeping `targetingKey` and skipping the rest.
struct ContextVisitor;

impl<'de> serde::de::Visitor<'de> for ContextVisitor {
    type Value = SingleContext<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object (the evaluation context)")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut targeting_key: Option<Option<Cow<'de, str>>> = None;
        while let Some(key) = map.next_key::<MaybeBorrowed<'de>>()? {
            if key.0 == "targetingKey" {
                if targeting_key.is_some() {
                    return Err(serde::de::Error::duplicate_field("targetingKey"));
                }
                let value: Option<MaybeBorrowed<'de>> = map.next_value()?;
                targeting_key = Some(value.map(|v| v.0));
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(SingleContext {
            targeting_key: targeting_key.flatten(),
        })
    }
}

/// A string borrowed from the body when it has no escapes, owned otherwise.
struct MaybeBorrowed<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for MaybeBorrowed<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor)
    }
}

/// Reads a string, borrowing when it can.
struct StrVisitor;

impl<'de> serde::de::Visitor<'de> for StrVisitor {
    type Value = MaybeBorrowed<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(MaybeBorrowed(Cow::Borrowed(v)))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(MaybeBorrowed(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(MaybeBorrowed(Cow::Owned(v)))
    }
}

/// Whether a body has nothing but whitespace (a request without a body is accepted, as
/// flagd does: the context is then empty).
fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// Explains a JSON error in one line.
fn bad(e: &serde_json::Error) -> BadRequest {
    BadRequest(format!(
        "the request body is not an OFREP evaluation request ({{\"context\": {{\"targetingKey\": \"…\", …}}}}): {e}"
    ))
}

/// Refuses a body whose top-level value is not an object or `null` (serde's derive would
/// take an array as a struct).
fn check_top_level(body: &[u8]) -> Result<(), BadRequest> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | Some(b'n') => Ok(()),
        _ => Err(BadRequest(
            "the request body must be a JSON object: {\"context\": {\"targetingKey\": \"…\", …}}"
                .to_string(),
        )),
    }
}

/// Parses a single-evaluation body; returns the targeting key, if any.
pub(crate) fn parse_single(body: &[u8]) -> Result<Option<Cow<'_, str>>, BadRequest> {
    if is_blank(body) {
        return Ok(None);
    }
    check_top_level(body)?;
    let req: Option<SingleRequest<'_>> = serde_json::from_slice(body).map_err(|e| bad(&e))?;
    Ok(req.and_then(|r| r.context).and_then(|c| c.targeting_key))
}

/// `{"context": {...}}` for a bulk evaluation: the whole context is kept, because the ETag
/// covers all of it.
#[derive(Deserialize)]
struct BulkRequest {
    /// The evaluation context; absent or `null` is accepted as empty.
    #[serde(default)]
    context: Option<StrictObject>,
}

/// A JSON object whose keys are unique (a repeated `targetingKey` would be ambiguous; the
/// single-evaluation path refuses it too).
struct StrictObject(serde_json::Map<String, serde_json::Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StrictObjectVisitor)
    }
}

/// Reads an object, refusing repeated keys.
struct StrictObjectVisitor;

impl<'de> serde::de::Visitor<'de> for StrictObjectVisitor {
    type Value = StrictObject;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object (the evaluation context)")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: serde_json::Value = map.next_value()?;
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the context has the attribute `{key}` twice"
                )));
            }
            out.insert(key, value);
        }
        Ok(StrictObject(out))
    }
}

/// A parsed bulk request: the context (empty when absent).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct BulkContext {
    /// The context's attributes.
    pub(crate) attributes: serde_json::Map<String, serde_json::Value>,
}

impl BulkContext {
    /// The targeting key, if the context has a string one; a non-string one is an error.
    pub(crate) fn targeting_key(&self) -> Result<Option<&str>, BadRequest> {
        match self.attributes.get("targetingKey") {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(BadRequest(format!(
                "`targetingKey` must be a string, found {}",
                json_kind(other)
            ))),
        }
    }
}

/// Names a JSON value's type.
fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Parses a bulk-evaluation body.
pub(crate) fn parse_bulk(body: &[u8]) -> Result<BulkContext, BadRequest> {
    if is_blank(body) {
        return Ok(BulkContext::default());
    }
    check_top_level(body)?;
    let req: Option<BulkRequest> = serde_json::from_slice(body).map_err(|e| bad(&e))?;
    let ctx = BulkContext {
        attributes: req.and_then(|r| r.context).map(|c| c.0).unwrap_or_default(),
    };
    // A non-string key is reported here, before any flag is evaluated.
    ctx.targeting_key()?;
    Ok(ctx)
}

/// Appends a string as a JSON string literal.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a str into a Vec cannot fail; keep the function total anyway.
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

/// Appends one success object: `{"key","value","reason","variant","metadata"}`, or, for a
/// disabled flag, `{"key","reason":"DISABLED","metadata"}` without value and variant (the
/// OFREP `codeDefaultFlag`: the client uses its code default).
fn push_success(out: &mut Vec<u8>, r: &Resolution<'_>) {
    out.extend_from_slice(b"{\"key\":");
    out.extend_from_slice(r.flag.key_json().as_bytes());
    if let Some(v) = r.variant {
        out.extend_from_slice(b",\"value\":");
        out.extend_from_slice(v.value_json().as_bytes());
    }
    out.extend_from_slice(b",\"reason\":\"");
    out.extend_from_slice(r.reason.as_str().as_bytes());
    out.push(b'"');
    if let Some(v) = r.variant {
        out.extend_from_slice(b",\"variant\":");
        out.extend_from_slice(v.name_json().as_bytes());
    }
    out.extend_from_slice(b",\"metadata\":");
    out.extend_from_slice(r.flag.metadata_json().as_bytes());
    out.push(b'}');
}

/// Appends one failure object: `{"key","errorCode","errorDetails"}`.
fn push_failure(out: &mut Vec<u8>, key: &str, e: &EvalError) {
    out.extend_from_slice(b"{\"key\":");
    push_json_str(out, key);
    out.extend_from_slice(b",\"errorCode\":\"");
    out.extend_from_slice(e.code().as_bytes());
    out.extend_from_slice(b"\",\"errorDetails\":");
    push_json_str(out, &e.to_string());
    out.push(b'}');
}

/// The body of a successful single evaluation, in one allocation sized up front.
pub(crate) fn success_body(r: &Resolution<'_>) -> Vec<u8> {
    let v = r.variant;
    let size = 64
        + r.flag.key_json().len()
        + r.flag.metadata_json().len()
        + v.map_or(0, |v| v.value_json().len() + v.name_json().len());
    let mut out = Vec::with_capacity(size);
    push_success(&mut out, r);
    out
}

/// The body of a failed single evaluation (`evaluationFailure` or `flagNotFound`).
pub(crate) fn failure_body(key: &str, e: &EvalError) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + key.len());
    push_failure(&mut out, key, e);
    out
}

/// The body of a request-level failure: `{"key"?, "errorCode", "errorDetails"}` (the key for
/// a single evaluation, none for a bulk one).
pub(crate) fn request_failure_body(key: Option<&str>, code: &str, details: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + details.len() + key.map_or(0, str::len));
    out.push(b'{');
    if let Some(key) = key {
        out.extend_from_slice(b"\"key\":");
        push_json_str(&mut out, key);
        out.push(b',');
    }
    out.extend_from_slice(b"\"errorCode\":");
    push_json_str(&mut out, code);
    out.extend_from_slice(b",\"errorDetails\":");
    push_json_str(&mut out, details);
    out.push(b'}');
    out
}

/// The body of a failure outside the evaluation endpoints (`generalErrorResponse`).
pub(crate) fn general_failure_body(details: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + details.len());
    out.extend_from_slice(b"{\"errorDetails\":");
    push_json_str(&mut out, details);
    out.push(b'}');
    out
}

/// The body of a successful bulk evaluation: every flag, sorted by key, each a success or a
/// failure (a flag that needs a targeting key the context lacks), and the configuration
/// version as metadata. `served` sees every successful resolution (the statistics count
/// them without evaluating twice).
pub(crate) fn bulk_body<'s>(
    snapshot: &'s Snapshot,
    targeting_key: Option<&str>,
    mut served: impl FnMut(&Resolution<'s>),
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + 128 * snapshot.flags().flags().len());
    out.extend_from_slice(b"{\"flags\":[");
    for (i, flag) in snapshot.flags().flags().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match flag.evaluate(snapshot.live(), targeting_key) {
            Ok(r) => {
                served(&r);
                push_success(&mut out, &r);
            }
            Err(e) => push_failure(&mut out, flag.key(), &e),
        }
    }
    out.extend_from_slice(b"],\"metadata\":{\"version\":");
    out.extend_from_slice(snapshot.version().to_string().as_bytes());
    out.extend_from_slice(b"}}");
    out
}

/// Feeds a JSON value into a hasher canonically: object keys in sorted order whatever order
/// the client sent them in, so the same context always has the same ETag.
fn hash_json(v: &serde_json::Value, h: &mut impl Hasher) {
    match v {
        serde_json::Value::Null => 0u8.hash(h),
        serde_json::Value::Bool(b) => {
            1u8.hash(h);
            b.hash(h);
        }
        serde_json::Value::Number(n) => {
            2u8.hash(h);
            n.to_string().hash(h);
        }
        serde_json::Value::String(s) => {
            3u8.hash(h);
            s.hash(h);
        }
        serde_json::Value::Array(items) => {
            4u8.hash(h);
            items.len().hash(h);
            for item in items {
                hash_json(item, h);
            }
        }
        serde_json::Value::Object(map) => hash_object(map, h),
    }
}

/// [`hash_json`] for an object.
fn hash_object(map: &serde_json::Map<String, serde_json::Value>, h: &mut impl Hasher) {
    5u8.hash(h);
    map.len().hash(h);
    let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in entries {
        k.hash(h);
        hash_json(v, h);
    }
}

/// The bulk ETag: a 128-bit hash of what decides the response — the configuration hash, the
/// version counter, the live weight, the schedules' (quantized) clock and the whole context —
/// as a quoted strong entity tag.
///
/// The weight and the clock are hashed besides the version because the version restarts with
/// the process: without them, a restarted server at another weight or schedule step could
/// repeat an old tag.
pub(crate) fn bulk_etag(snapshot: &Snapshot, ctx: &BulkContext) -> String {
    let mut halves = [0u64; 2];
    for (seed, half) in halves.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut h);
        snapshot.flags().config_hash().hash(&mut h);
        snapshot.version().hash(&mut h);
        snapshot.rollout_weight_bp().hash(&mut h);
        snapshot.schedule_clock().hash(&mut h);
        hash_object(&ctx.attributes, &mut h);
        *half = h.finish();
    }
    format!("\"{:016x}{:016x}\"", halves[0], halves[1])
}

/// Whether an `If-None-Match` field value selects the representation tagged `etag`
/// (RFC 9110 §13.1.2): `*`, or a comma-separated list of entity tags compared weakly (a `W/`
/// prefix is ignored). Unquoted tags are accepted too, as flagd does for lenient clients.
pub(crate) fn if_none_match(field: &str, etag: &str) -> bool {
    let bare = etag.trim_matches('"');
    let mut start = 0;
    let mut quoted = false;
    let bytes = field.as_bytes();
    for i in 0..=bytes.len() {
        let at_end = i == bytes.len();
        if !at_end && bytes[i] == b'"' {
            quoted = !quoted;
            continue;
        }
        if at_end || (bytes[i] == b',' && !quoted) {
            let tag = field[start..i].trim();
            start = i + 1;
            if tag == "*" {
                return true;
            }
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            if !tag.is_empty() && (tag == etag || tag == bare) {
                return true;
            }
        }
    }
    false
}

/// Decodes `%XX` escapes in a path segment; `None` when an escape is malformed or the result
/// is not UTF-8 (such a key cannot name a flag).
pub(crate) fn percent_decode(segment: &str) -> Option<Cow<'_, str>> {
    if !segment.contains('%') {
        return Some(Cow::Borrowed(segment));
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_requests_accept_missing_context() {
        assert_eq!(parse_single(b"").unwrap(), None);
        assert_eq!(parse_single(b"  \n").unwrap(), None);
        assert_eq!(parse_single(b"null").unwrap(), None);
        assert_eq!(parse_single(b"{}").unwrap(), None);
        assert_eq!(parse_single(br#"{"context":null}"#).unwrap(), None);
        assert_eq!(parse_single(br#"{"context":{}}"#).unwrap(), None);
        assert_eq!(
            parse_single(br#"{"context":{"targetingKey":"u1","plan":{"a":[1,2]}}}"#)
                .unwrap()
                .as_deref(),
            Some("u1")
        );
        assert_eq!(
            parse_single(br#"{"context":{"targetingKey":"\u00e9"}}"#)
                .unwrap()
                .as_deref(),
            Some("é")
        );
    }

    #[test]
    fn malformed_requests_are_bad_requests() {
        for body in [
            &b"{"[..],
            b"[]",
            b"42",
            br#"{"context":5}"#,
            br#"{"context":[]}"#,
            br#"{"context":{"targetingKey":5}}"#,
            br#"{"context":{"targetingKey":"a"},"context":{}}"#,
            br#"{"context":{"targetingKey":"a","targetingKey":"b"}}"#,
            b"nul",
            b"\"x\"",
            b"\xff",
        ] {
            assert!(
                parse_single(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
            assert!(
                parse_bulk(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!(
            "{{\"context\":{{\"a\":{}{}}}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        // The single path skips unused attributes without recursing (serde_json ignores
        // values with an explicit stack), so it accepts them; the bulk path keeps the whole
        // context and stops at serde_json's recursion limit. Neither overflows the stack.
        assert_eq!(parse_single(deep.as_bytes()).unwrap(), None);
        assert!(parse_bulk(deep.as_bytes()).is_err());
    }

    #[test]
    fn if_none_match_follows_rfc_9110() {
        let tag = "\"abc\"";
        assert!(if_none_match("\"abc\"", tag));
        assert!(if_none_match("W/\"abc\"", tag));
        assert!(if_none_match("\"x\", \"abc\"", tag));
        assert!(if_none_match("\"x,y\", W/\"abc\"", tag));
        assert!(if_none_match("*", tag));
        assert!(if_none_match("abc", tag));
        assert!(!if_none_match("\"abd\"", tag));
        assert!(!if_none_match("\"ab\"", tag));
        assert!(!if_none_match("", tag));
        assert!(!if_none_match(",,", tag));
        assert!(!if_none_match("\"abc", tag));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("abc").as_deref(), Some("abc"));
        assert_eq!(percent_decode("a%2Db").as_deref(), Some("a-b"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(percent_decode("%").as_deref(), None);
        assert_eq!(percent_decode("%4").as_deref(), None);
        assert_eq!(percent_decode("%zz").as_deref(), None);
        assert_eq!(percent_decode("%ff").as_deref(), None);
    }

    #[test]
    fn etag_ignores_key_order_but_not_values() {
        let a = parse_bulk(br#"{"context":{"targetingKey":"u","x":{"b":1,"a":2}}}"#).unwrap();
        let b = parse_bulk(br#"{"context":{"x":{"a":2,"b":1},"targetingKey":"u"}}"#).unwrap();
        let c = parse_bulk(br#"{"context":{"x":{"a":2,"b":1},"targetingKey":"v"}}"#).unwrap();
        let state = crate::flags::FlagState::new(crate::flags::FlagSet::empty());
        let snap = state.snapshot();
        assert_eq!(bulk_etag(&snap, &a), bulk_etag(&snap, &b));
        assert_ne!(bulk_etag(&snap, &a), bulk_etag(&snap, &c));
        state.set_rollout_weight_bp(500).unwrap();
        assert_ne!(bulk_etag(&state.snapshot(), &a), bulk_etag(&snap, &a));
    }
}
