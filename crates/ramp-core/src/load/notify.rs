//! Stage two for `[[notify]]`: who is told about a live run's events, and how.
//!
//! Each notifier has a unique name, a `kind` (slack, teams, webhook or command) and that
//! kind's target: exactly one of `url` and `url_file` for the webhook kinds, `command` for a
//! program. A webhook URL is https, or plain http on loopback only (a test receiver or a
//! local relay); since its path often is its secret, messages here name only its scheme and
//! host. `on` defaults to every event; the delivery settings have bounded defaults.

use super::live::parse_http_url;
use super::raw::RawNotify;
use super::scalar::{Dur, Num, Text, TextList, S};
use super::validator::{fmt_num, fmt_span, valid_or_none, Field, Validator};
use crate::plan::{Notifier, NotifyEvent, NotifyTarget, UrlSource};
use crate::units::Span;

/// The default time limit of one delivery attempt.
const DEFAULT_TIMEOUT: Span = Span(5_000);
/// The longest time limit of one attempt: a chat message that takes longer is lost anyway.
const MAX_TIMEOUT: Span = Span(60_000);
/// The default attempts per message.
const DEFAULT_ATTEMPTS: u32 = 3;
/// The most attempts per message (with backoff, the last comes minutes after the first).
const MAX_ATTEMPTS: u32 = 10;
/// The default of messages per minute to one target (Slack accepts about one a second).
const DEFAULT_PER_MINUTE: u32 = 20;
/// The most messages per minute a plan may allow one target.
const MAX_PER_MINUTE: u32 = 600;
/// The kinds, for messages.
const KINDS: &str = "\"slack\", \"teams\", \"webhook\" or \"command\"";
/// A URL, for messages.
const URL_EXAMPLE: &str = "https://hooks.slack.com/services/…";
/// A command, for messages.
const COMMAND_EXAMPLE: &str = "[\"/usr/local/bin/page\", \"--team\", \"checkout\"]";

/// The kind a notifier names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A Slack incoming webhook.
    Slack,
    /// A Teams incoming webhook.
    Teams,
    /// Ramp's own JSON.
    Webhook,
    /// A program.
    Command,
}

/// Checks a notifier's webhook URL: `https://` anywhere, or `http://` on a loopback host
/// (`localhost`, 127.0.0.0/8, `[::1]`), with a host, an optional port and a path made of
/// characters a request line can carry. The live driver checks a URL read from `url_file`
/// by the same rule. The error names the URL only as [`redact_url`] does.
pub fn check_notify_url(url: &str) -> Result<(), String> {
    let shown = redact_url(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "{shown:?} is not a URL; expected https://… (or http:// on loopback)"
        ));
    };
    let https = scheme.eq_ignore_ascii_case("https");
    if !https && !scheme.eq_ignore_ascii_case("http") {
        return Err(format!(
            "{shown:?} has the scheme {scheme:?}; expected https://… (or http:// on loopback)"
        ));
    }
    // The same syntax as every other URL of a plan, with the URL itself left out of the
    // reason (its path may be the webhook's secret).
    let as_http = format!("http://{rest}");
    let parsed = parse_http_url(&as_http, URL_EXAMPLE)
        .map_err(|e| e.replace(&format!("{as_http:?}"), &format!("{shown:?}")))?;
    if !https && !is_loopback(host_of(parsed.authority)) {
        return Err(format!(
            "{shown:?} is plain http to a host that is not loopback; a webhook URL carries its secret, so expected https:// (http:// only to localhost, 127.0.0.1 or [::1])"
        ));
    }
    Ok(())
}

/// A URL as logs and messages may show it: scheme and host, the path (which often holds a
/// webhook's secret) replaced by "…". Text that is not a URL is not shown at all.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".into();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // Credentials before the host are secret too.
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if tail.is_empty() || tail == "/" {
        format!("{scheme}://{authority}{tail}")
    } else {
        format!("{scheme}://{authority}/…")
    }
}

/// The host of `host:port`, `[v6]:port` or `host`.
fn host_of(authority: &str) -> &str {
    if let Some(b) = authority.strip_prefix('[') {
        return b.split_once(']').map_or(b, |(h, _)| h);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

/// Whether a host is this machine: `localhost`, 127.0.0.0/8 or ::1.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Validator<'_> {
    /// `[[notify]]`: each with a unique name, a kind and that kind's target.
    pub(super) fn notifiers(
        &mut self,
        raw: Option<&S<Vec<S<RawNotify>>>>,
    ) -> Option<Vec<Notifier>> {
        let Some(list) = raw else {
            return Some(Vec::new());
        };
        let mut out = Some(Vec::new());
        let mut names: Vec<(String, usize)> = Vec::new();
        for (i, entry) in list.get_ref().iter().enumerate() {
            let n = i + 1;
            let ctx = format!("notifier {n}");
            let r = entry.get_ref();
            let name = self.unique_name(
                r.name.as_ref(),
                entry.span(),
                &ctx,
                (
                    "notifier",
                    "what the log calls it, e.g. name = \"ops channel\"",
                ),
                (&mut names, n),
            );
            let kind = match &r.kind {
                None => {
                    self.missing(entry.span(), &ctx, "kind", &format!("one of {KINDS}"));
                    None
                }
                Some(v) => self.notify_kind(v, &ctx),
            };
            let target = self.notify_target(r, entry.span(), kind, &ctx);
            let on = match &r.on {
                None => Some(NotifyEvent::ALL.to_vec()),
                Some(v) => self.notify_events(v, &ctx),
            };
            let timeout = self.notify_timeout(r.timeout.as_ref(), &ctx);
            let attempts = Field::of(r.attempts.as_ref(), |v| {
                self.whole_in(v, &format!("{ctx}: attempts"), MAX_ATTEMPTS)
            });
            let per_minute = Field::of(r.per_minute.as_ref(), |v| {
                self.whole_in(v, &format!("{ctx}: per_minute"), MAX_PER_MINUTE)
            });
            let link = Field::of(r.link.as_ref(), |v| self.link(v, &format!("{ctx}: link")));
            let attempts = valid_or_none(attempts, DEFAULT_ATTEMPTS);
            let per_minute = valid_or_none(per_minute, DEFAULT_PER_MINUTE);
            let link = match link {
                Field::Absent => Some(None),
                Field::Invalid => None,
                Field::Valid(l) => Some(Some(l)),
            };
            out = match (out, name, target, on, timeout, attempts, per_minute, link) {
                (
                    Some(mut v),
                    Some(name),
                    Some(target),
                    Some(on),
                    Some(timeout),
                    Some(attempts),
                    Some(per_minute),
                    Some(link),
                ) => {
                    v.push(Notifier {
                        name,
                        target,
                        on,
                        timeout,
                        attempts,
                        per_minute,
                        link,
                    });
                    Some(v)
                }
                _ => None,
            };
        }
        out
    }

    /// A notifier's `kind`.
    fn notify_kind(&mut self, v: &S<Text>, ctx: &str) -> Option<Kind> {
        let t = self.string(v, &format!("{ctx}: kind"))?;
        let kind = match t {
            "slack" => Kind::Slack,
            "teams" => Kind::Teams,
            "webhook" => Kind::Webhook,
            "command" => Kind::Command,
            other => {
                self.error(
                    v.span(),
                    format!("{ctx}: kind {other:?} is not a kind of notifier; expected {KINDS}"),
                );
                return None;
            }
        };
        Some(kind)
    }

    /// The target of a notifier: its URL (written or in a file) or its command, each value
    /// checked whatever the kind so that every mistake is reported at once, then matched
    /// against the kind.
    fn notify_target(
        &mut self,
        r: &RawNotify,
        table: std::ops::Range<usize>,
        kind: Option<Kind>,
        ctx: &str,
    ) -> Option<NotifyTarget> {
        let url = Field::of(r.url.as_ref(), |v| {
            let t = self.text(v, &format!("{ctx}: url"))?;
            match check_notify_url(&t) {
                Ok(()) => Some(t),
                Err(e) => {
                    self.error(v.span(), format!("{ctx}: url: {e}"));
                    None
                }
            }
        });
        let url_file = Field::of(r.url_file.as_ref(), |v| {
            self.text(v, &format!("{ctx}: url_file"))
                .map(std::path::PathBuf::from)
        });
        let argv = Field::of(r.command.as_ref(), |v| {
            self.argv(v, &format!("{ctx}: command"))
        });
        let kind = kind?;
        if kind == Kind::Command {
            for (key, v) in [("url", &r.url), ("url_file", &r.url_file)] {
                if let Some(v) = v {
                    self.error(
                        v.span(),
                        format!("{ctx}: {key} applies only to the webhook kinds (slack, teams, webhook); a command notifier runs its command"),
                    );
                }
            }
            return match argv {
                Field::Absent => {
                    self.missing(
                        table,
                        ctx,
                        "command",
                        &format!("the program and its arguments, e.g. command = {COMMAND_EXAMPLE}"),
                    );
                    None
                }
                Field::Invalid => None,
                Field::Valid(argv) => (r.url.is_none() && r.url_file.is_none())
                    .then_some(NotifyTarget::Command { argv }),
            };
        }
        if let Some(cmd) = &r.command {
            self.error(
                cmd.span(),
                format!("{ctx}: command applies only to kind = \"command\"; a {} notifier posts to its url", kind_key(kind)),
            );
        }
        let source = match (url, url_file, &r.url_file) {
            (Field::Absent, Field::Absent, _) => {
                self.error(
                    table,
                    format!("{ctx}: has no URL; expected url = {URL_EXAMPLE:?} or url_file = \"slack-webhook.url\" (a file holding the URL, so that its secret stays out of the plan)"),
                );
                None
            }
            (u, _, Some(file)) if u.present() => {
                self.error(
                    file.span(),
                    format!("{ctx}: has both url and url_file; expected exactly one: url, or url_file (a file holding the URL)"),
                );
                None
            }
            (Field::Valid(url), Field::Absent, _) => Some(UrlSource::Inline(url)),
            (Field::Absent, Field::Valid(path), _) => Some(UrlSource::File(path)),
            _ => None,
        }?;
        if r.command.is_some() {
            return None;
        }
        Some(match kind {
            Kind::Slack => NotifyTarget::Slack(source),
            Kind::Teams => NotifyTarget::Teams(source),
            Kind::Webhook => NotifyTarget::Webhook(source),
            Kind::Command => return None,
        })
    }

    /// A notifier's `on`: one event name or an array of them, at least one, none twice.
    fn notify_events(&mut self, v: &S<TextList>, ctx: &str) -> Option<Vec<NotifyEvent>> {
        let known: Vec<(&str, NotifyEvent)> =
            NotifyEvent::ALL.iter().map(|e| (e.key(), *e)).collect();
        self.event_list(v, ctx, &known, " (leave `on` out for every event)")
    }

    /// A notifier's `timeout`: default 5 s, longer than 0 and at most a minute.
    fn notify_timeout(&mut self, v: Option<&S<Dur>>, ctx: &str) -> Option<Span> {
        let Some(v) = v else {
            return Some(DEFAULT_TIMEOUT);
        };
        let t = self.positive_duration(v, &format!("{ctx}: timeout"))?;
        if t > MAX_TIMEOUT {
            self.error(
                v.span(),
                format!(
                    "{ctx}: timeout {} is longer than {}; expected at most {} per attempt",
                    fmt_span(t),
                    fmt_span(MAX_TIMEOUT),
                    fmt_span(MAX_TIMEOUT)
                ),
            );
            return None;
        }
        Some(t)
    }

    /// A whole number from 1 to `max`.
    fn whole_in(&mut self, v: &S<Num>, what: &str, max: u32) -> Option<u32> {
        let x = self.number(v, what)?;
        if x.fract() != 0.0 || !(1.0..=f64::from(max)).contains(&x) {
            self.error(
                v.span(),
                format!(
                    "{what}: {} is out of range; expected a whole number from 1 to {max}",
                    fmt_num(x)
                ),
            );
            return None;
        }
        Some(x as u32)
    }

    /// A notifier's `link`: an http:// or https:// URL, shown in every message.
    fn link(&mut self, v: &S<Text>, what: &str) -> Option<String> {
        let t = self.text(v, what)?;
        let scheme_ok = t.split_once("://").is_some_and(|(s, _)| {
            s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https")
        });
        let clean = !t
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '|'));
        if !scheme_ok || !clean {
            self.error(
                v.span(),
                format!("{what}: {t:?} is not a link; expected an http:// or https:// URL without spaces, '<', '>' or '|', such as \"https://grafana.example.com/d/checkout\""),
            );
            return None;
        }
        Some(t)
    }
}

/// The plan's name of a kind.
fn kind_key(kind: Kind) -> &'static str {
    match kind {
        Kind::Slack => "slack",
        Kind::Teams => "teams",
        Kind::Webhook => "webhook",
        Kind::Command => "command",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::tests::{errs, ok, MINIMAL};

    #[test]
    fn urls_are_https_or_loopback_http_and_never_shown_whole() {
        assert!(check_notify_url("https://hooks.slack.com/services/T0/B0/secret").is_ok());
        assert!(check_notify_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_notify_url("http://[::1]:1/x").is_ok());
        assert!(check_notify_url("http://localhost/x").is_ok());
        let e = check_notify_url("http://hooks.example.com/secret-path").unwrap_err();
        assert!(
            e.contains("not loopback") && !e.contains("secret-path"),
            "{e}"
        );
        let e = check_notify_url("https://hooks.example.com/se cret").unwrap_err();
        assert!(e.contains("contains ' '") && !e.contains("se cret"), "{e}");
        let e = check_notify_url("ftp://h/x").unwrap_err();
        assert!(e.contains("scheme \"ftp\""), "{e}");
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/xyz"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(redact_url("https://u:p@h:1/"), "https://h:1/");
        assert_eq!(redact_url("nonsense"), "(not a URL)");
    }

    #[test]
    fn a_notifier_gets_every_event_and_bounded_defaults() {
        let p = ok(&format!(
            "{MINIMAL}\n[[notify]]\nname = \"ops\"\nkind = \"slack\"\nurl_file = \"slack.url\"\n\n[[notify]]\nname = \"pager\"\nkind = \"command\"\ncommand = [\"./page\"]\non = \"rollback\"\n"
        ));
        assert_eq!(p.notify.len(), 2);
        let n = &p.notify[0];
        assert_eq!(n.on, NotifyEvent::ALL.to_vec());
        assert_eq!(
            n.target,
            NotifyTarget::Slack(UrlSource::File("slack.url".into()))
        );
        assert_eq!(
            (n.timeout, n.attempts, n.per_minute, n.link.as_deref()),
            (DEFAULT_TIMEOUT, 3, 20, None)
        );
        assert_eq!(p.notify[1].on, vec![NotifyEvent::Rollback]);
        assert_eq!(p.notify[1].target.kind(), "command");
    }

    #[test]
    fn a_command_notifier_with_a_url_is_told_which_key_belongs() {
        let e = errs(&format!(
            "{MINIMAL}\n[[notify]]\nname = \"p\"\nkind = \"command\"\ncommand = [\"x\"]\nurl = \"https://h/x\"\n"
        ));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].2.contains("url applies only to the webhook kinds"),
            "{e:?}"
        );
    }
}
