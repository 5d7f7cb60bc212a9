//! Stage two for `[store]`: the etcd cluster that holds a live run's journal and the
//! controllers' election, so that a standby controller can take over from a leader that died.
//!
//! Without `[store]` a live run journals to the local SQLite file as before. With it, every
//! value is checked here, offline, so that a typo in an endpoint or a lease too short to be
//! renewed is a located plan error at `ramp validate` rather than a failure at start-up.

use super::live::parse_http_url;
use super::raw::RawStore;
use super::scalar::{Dur, Text, S};
use super::validator::{fmt_span, valid_or_none, written, Field, Validator};
use crate::plan::Store;
use crate::units::Span;

/// An etcd client URL, for messages.
const URL_EXAMPLE: &str = "http://127.0.0.1:2379";

/// The default key prefix.
const DEFAULT_PREFIX: &str = "/ramp";

/// The longest prefix: every key of every deployment starts with it.
const MAX_PREFIX: usize = 128;

/// The default lease: a standby takes over about this long after the leader dies.
const DEFAULT_LEASE_TTL: Span = Span(10_000);

/// The shortest lease: renewed every third of it, a shorter one would expire on a busy host's
/// ordinary pauses.
const MIN_LEASE_TTL: Span = Span(2_000);

/// The longest lease: a dead leader's deployment would wait longer than that for a standby.
const MAX_LEASE_TTL: Span = Span(60_000);

/// The default dial and request timeouts.
const DEFAULT_TIMEOUT: Span = Span(5_000);

/// The shortest dial or request timeout: a loopback round trip, no less.
const MIN_TIMEOUT: Span = Span(100);

/// The longest dial or request timeout.
const MAX_TIMEOUT: Span = Span(60_000);

/// The most endpoints a plan may list (a cluster has an odd handful of members).
const MAX_ENDPOINTS: usize = 16;

impl Validator<'_> {
    /// `[store]`: `Some(None)` when absent (the SQLite journal), `None` when it has errors
    /// (reported).
    pub(super) fn store(&mut self, raw: Option<&S<RawStore>>) -> Option<Option<Store>> {
        let Some(raw) = raw else {
            return Some(None);
        };
        let r = raw.get_ref();
        let etcd = match r.etcd.as_ref() {
            None => {
                self.missing(
                    raw.span(),
                    "[store]",
                    "etcd",
                    &format!("the etcd cluster's client URLs such as [{URL_EXAMPLE:?}]"),
                );
                None
            }
            Some(v) => self.endpoints(v),
        };
        let prefix = Field::of(r.prefix.as_ref(), |v| self.prefix(v));
        let lease_ttl = Field::of(r.lease_ttl.as_ref(), |v| {
            self.bounded(v, "store.lease_ttl", MIN_LEASE_TTL, MAX_LEASE_TTL)
        });
        let dial_timeout = Field::of(r.dial_timeout.as_ref(), |v| {
            self.bounded(v, "store.dial_timeout", MIN_TIMEOUT, MAX_TIMEOUT)
        });
        let request_timeout = Field::of(r.request_timeout.as_ref(), |v| {
            self.bounded(v, "store.request_timeout", MIN_TIMEOUT, MAX_TIMEOUT)
        });
        // A keep-alive that may take as long as the lease cannot keep it.
        let ttl = match &lease_ttl {
            Field::Valid(t) => Some(*t),
            Field::Absent => Some(DEFAULT_LEASE_TTL),
            Field::Invalid => None,
        };
        let request = match &request_timeout {
            Field::Valid(t) => Some(*t),
            Field::Absent => Some(DEFAULT_TIMEOUT),
            Field::Invalid => None,
        };
        let mut fits = true;
        if let (Some(ttl), Some(request)) = (ttl, request) {
            if request.0 * 2 > ttl.0 {
                fits = false;
                let (span, key) = match (&r.request_timeout, &r.lease_ttl) {
                    (Some(v), _) => (v.span(), "store.request_timeout"),
                    (None, Some(v)) => (v.span(), "store.lease_ttl"),
                    (None, None) => (raw.span(), "store"),
                };
                self.error(
                    span,
                    format!("{key}: the request timeout ({}) is more than half the lease ({}); a leader renews its lease with requests, and one that may wait that long would lose it before it noticed; set request_timeout to at most half of lease_ttl", fmt_span(request), fmt_span(ttl)),
                );
            }
        }
        let user = Field::of(r.user.as_ref(), |v| {
            let t = self.text(v, "store.user")?;
            if t.is_empty() {
                self.error(v.span(), "store.user: must not be empty".into());
                return None;
            }
            Some(t)
        });
        let password_file = Field::of(r.password_file.as_ref(), |v| {
            self.path(v, "store.password_file")
        });
        match (&r.user, &r.password_file) {
            (Some(v), None) => {
                fits = false;
                self.error(
                    v.span(),
                    "store.user: needs password_file, the file holding the user's password".into(),
                );
            }
            (None, Some(v)) => {
                fits = false;
                self.error(
                    v.span(),
                    "store.password_file: needs user, the etcd user the password is for".into(),
                );
            }
            _ => {}
        }
        let store = Store {
            etcd: etcd?,
            prefix: valid_or_none(prefix, DEFAULT_PREFIX.to_string())?,
            lease_ttl: valid_or_none(lease_ttl, DEFAULT_LEASE_TTL)?,
            dial_timeout: valid_or_none(dial_timeout, DEFAULT_TIMEOUT)?,
            request_timeout: valid_or_none(request_timeout, DEFAULT_TIMEOUT)?,
            user: written(user)?,
            password_file: written(password_file)?,
        };
        fits.then_some(Some(store))
    }

    /// `store.etcd`: one or more distinct `http://` URLs.
    fn endpoints(&mut self, v: &S<super::scalar::TextList>) -> Option<Vec<String>> {
        let expected =
            format!("an array of the etcd members' client URLs such as [{URL_EXAMPLE:?}]");
        let (entries, mut ok) = self.entries(v, "store.etcd", &expected);
        if entries.is_empty() && ok {
            self.error(
                v.span(),
                format!("store.etcd: is empty; expected {expected}"),
            );
            return None;
        }
        if entries.len() > MAX_ENDPOINTS {
            self.error(
                v.span(),
                format!("store.etcd: has {} endpoints; at most {MAX_ENDPOINTS} are accepted (a cluster has a handful of members)", entries.len()),
            );
            ok = false;
        }
        let mut out: Vec<String> = Vec::with_capacity(entries.len());
        for (i, url, span) in entries {
            match parse_http_url(url, URL_EXAMPLE) {
                Err(e) => {
                    self.error(span, format!("store.etcd entry {i}: {e}"));
                    ok = false;
                }
                Ok(_) => {
                    let url = url.trim_end_matches('/').to_string();
                    if out.contains(&url) {
                        self.error(
                            span,
                            format!("store.etcd entry {i}: {url:?} is listed twice"),
                        );
                        ok = false;
                    } else {
                        out.push(url);
                    }
                }
            }
        }
        ok.then_some(out)
    }

    /// `store.prefix`: an absolute key path of printable characters without spaces.
    fn prefix(&mut self, v: &S<Text>) -> Option<String> {
        let t = self.text(v, "store.prefix")?;
        let problem = if !t.starts_with('/') {
            Some("does not start with '/'".to_string())
        } else if t.trim_end_matches('/').is_empty() {
            Some("names no directory; use a prefix such as \"/ramp\"".to_string())
        } else if t.len() > MAX_PREFIX {
            Some(format!("is longer than {MAX_PREFIX} bytes"))
        } else {
            t.chars()
                .find(|c| c.is_whitespace() || c.is_control())
                .map(|c| format!("contains {c:?}"))
        };
        match problem {
            Some(p) => {
                self.error(
                    v.span(),
                    format!("store.prefix: {t:?} {p}; expected a key prefix such as \"{DEFAULT_PREFIX}\""),
                );
                None
            }
            None => Some(t.trim_end_matches('/').to_string()),
        }
    }

    /// A duration between `min` and `max`.
    fn bounded(&mut self, v: &S<Dur>, what: &str, min: Span, max: Span) -> Option<Span> {
        let t = self.positive_duration(v, what)?;
        if t < min || t > max {
            self.error(
                v.span(),
                format!(
                    "{what}: {} is outside {} to {}",
                    fmt_span(t),
                    fmt_span(min),
                    fmt_span(max)
                ),
            );
            return None;
        }
        Some(t)
    }
}
