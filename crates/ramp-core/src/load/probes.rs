//! Stage two for `[[checks]]` and `[[hooks]]`: the pre-deployment checks that must pass
//! before a live rollout starts, and the hooks it runs on rollout events.
//!
//! Both call out of Ramp, by an HTTP request or by running a program, so they share their
//! rules: a unique name, exactly one way to call out, a time limit, and a command that is
//! always an array run directly, never a shell string.

use super::raw::{RawCheck, RawHook};
use super::scalar::{Dur, Num, TextList, S};
use super::validator::{fmt_num, fmt_span, valid_or_none, Field, Validator};
use crate::plan::{Check, Hook, HookAction, HookEvent, Probe};
use crate::units::Span;

/// The default time limit of a check or hook.
const DEFAULT_PROBE_TIMEOUT: Span = Span(10_000);
/// The longest time limit of a check or hook: a probe that needs longer is not a check.
const MAX_PROBE_TIMEOUT: Span = Span(3_600_000);
/// The status an HTTP check expects when the plan does not say.
const DEFAULT_EXPECT_STATUS: u16 = 200;
/// A check URL, for messages.
const CHECK_URL_EXAMPLE: &str = "http://127.0.0.1:9001/health";
/// A hook URL, for messages.
const HOOK_URL_EXAMPLE: &str = "http://127.0.0.1:9000/events";
/// A command, for messages.
const COMMAND_EXAMPLE: &str = "[\"/usr/bin/pg_dump\", \"-f\", \"backup.sql\"]";
/// The hook events by their plan names.
const HOOK_EVENTS: [(&str, HookEvent); 4] = [
    ("stage_start", HookEvent::StageStart),
    ("stage_end", HookEvent::StageEnd),
    ("promotion", HookEvent::Promotion),
    ("rollback", HookEvent::Rollback),
];

impl Validator<'_> {
    /// `[[checks]]`: each with a unique name and exactly one probe.
    pub(super) fn checks(&mut self, raw: Option<&S<Vec<S<RawCheck>>>>) -> Option<Vec<Check>> {
        let Some(list) = raw else {
            return Some(Vec::new());
        };
        let mut out = Some(Vec::new());
        let mut names: Vec<(String, usize)> = Vec::new();
        for (i, c) in list.get_ref().iter().enumerate() {
            let n = i + 1;
            let ctx = format!("check {n}");
            let r = c.get_ref();
            let name = self.unique_name(
                r.name.as_ref(),
                c.span(),
                &ctx,
                ("check", "what the log calls it, e.g. name = \"API health\""),
                (&mut names, n),
            );
            let url = Field::of(r.http.as_ref(), |v| {
                self.http_url(v, &format!("{ctx}: http"), CHECK_URL_EXAMPLE)
            });
            let argv = Field::of(r.command.as_ref(), |v| {
                self.argv(v, &format!("{ctx}: command"))
            });
            let status = Field::of(r.expect_status.as_ref(), |v| {
                self.status(v, &format!("{ctx}: expect_status"))
            });
            let timeout = self.probe_timeout(r.timeout.as_ref(), &ctx);
            match (&r.http, &r.command) {
                (None, None) => self.error(
                    c.span(),
                    format!("{ctx}: has no probe; expected http = {CHECK_URL_EXAMPLE:?} (a GET that must answer expect_status) or command = {COMMAND_EXAMPLE} (a program that must exit 0)"),
                ),
                (Some(_), Some(cmd)) => self.error(
                    cmd.span(),
                    format!("{ctx}: has both http and command; expected exactly one probe: http (a GET that must answer expect_status) or command (a program that must exit 0)"),
                ),
                (None, Some(_)) => {
                    if let Some(s) = &r.expect_status {
                        self.error(
                            s.span(),
                            format!("{ctx}: expect_status applies only to an http check; a command check passes when its program exits 0"),
                        );
                    }
                }
                (Some(_), None) => {}
            }
            let probe = match (url, argv, status) {
                (Field::Valid(url), Field::Absent, status) => {
                    valid_or_none(status, DEFAULT_EXPECT_STATUS)
                        .map(|expect_status| Probe::Http { url, expect_status })
                }
                (Field::Absent, Field::Valid(argv), Field::Absent) => Some(Probe::Command { argv }),
                _ => None,
            };
            out = match (out, name, probe, timeout) {
                (Some(mut v), Some(name), Some(probe), Some(timeout)) => {
                    v.push(Check {
                        name,
                        probe,
                        timeout,
                    });
                    Some(v)
                }
                _ => None,
            };
        }
        out
    }

    /// `[[hooks]]`: each with a unique name, at least one event and exactly one action.
    pub(super) fn hooks(&mut self, raw: Option<&S<Vec<S<RawHook>>>>) -> Option<Vec<Hook>> {
        let Some(list) = raw else {
            return Some(Vec::new());
        };
        let mut out = Some(Vec::new());
        let mut names: Vec<(String, usize)> = Vec::new();
        for (i, h) in list.get_ref().iter().enumerate() {
            let n = i + 1;
            let ctx = format!("hook {n}");
            let r = h.get_ref();
            let name = self.unique_name(
                r.name.as_ref(),
                h.span(),
                &ctx,
                ("hook", "what the log calls it, e.g. name = \"notify\""),
                (&mut names, n),
            );
            let on = match &r.on {
                None => {
                    self.missing(
                        h.span(),
                        &ctx,
                        "on",
                        "the events that run it, e.g. on = [\"stage_start\", \"rollback\"]",
                    );
                    None
                }
                Some(v) => self.events(v, &ctx),
            };
            let url = Field::of(r.post.as_ref(), |v| {
                self.http_url(v, &format!("{ctx}: post"), HOOK_URL_EXAMPLE)
            });
            let argv = Field::of(r.command.as_ref(), |v| {
                self.argv(v, &format!("{ctx}: command"))
            });
            let timeout = self.probe_timeout(r.timeout.as_ref(), &ctx);
            match (&r.post, &r.command) {
                (None, None) => self.error(
                    h.span(),
                    format!("{ctx}: has no action; expected post = {HOOK_URL_EXAMPLE:?} (the event as a JSON body) or command = {COMMAND_EXAMPLE} (the event in RAMP_EVENT)"),
                ),
                (Some(_), Some(cmd)) => self.error(
                    cmd.span(),
                    format!("{ctx}: has both post and command; expected exactly one action: post (the event as a JSON body) or command (the event in RAMP_EVENT)"),
                ),
                _ => {}
            }
            let action = match (url, argv) {
                (Field::Valid(url), Field::Absent) => Some(HookAction::Post { url }),
                (Field::Absent, Field::Valid(argv)) => Some(HookAction::Command { argv }),
                _ => None,
            };
            out = match (out, name, on, action, timeout) {
                (Some(mut v), Some(name), Some(on), Some(action), Some(timeout)) => {
                    v.push(Hook {
                        name,
                        on,
                        action,
                        timeout,
                    });
                    Some(v)
                }
                _ => None,
            };
        }
        out
    }

    /// A check's or hook's `timeout`: default 10 s, longer than 0 and at most an hour.
    fn probe_timeout(&mut self, v: Option<&S<Dur>>, ctx: &str) -> Option<Span> {
        let Some(v) = v else {
            return Some(DEFAULT_PROBE_TIMEOUT);
        };
        let t = self.positive_duration(v, &format!("{ctx}: timeout"))?;
        if t > MAX_PROBE_TIMEOUT {
            self.error(
                v.span(),
                format!(
                    "{ctx}: timeout {} is longer than {}; expected at most {}",
                    fmt_span(t),
                    fmt_span(MAX_PROBE_TIMEOUT),
                    fmt_span(MAX_PROBE_TIMEOUT)
                ),
            );
            return None;
        }
        Some(t)
    }

    /// A check's `expect_status`: a whole number from 100 to 599.
    fn status(&mut self, v: &S<Num>, what: &str) -> Option<u16> {
        let x = self.number(v, what)?;
        if x.fract() != 0.0 || !(100.0..=599.0).contains(&x) {
            self.error(
                v.span(),
                format!(
                    "{what}: {} is not an HTTP status; expected a whole number from 100 to 599",
                    fmt_num(x)
                ),
            );
            return None;
        }
        Some(x as u16)
    }

    /// A command: an array of the program and its arguments, run directly, never through a
    /// shell; so a single string is an error rather than a command line to split.
    pub(super) fn argv(&mut self, v: &S<TextList>, what: &str) -> Option<Vec<String>> {
        let expected =
            format!("an array of the program and its arguments such as {COMMAND_EXAMPLE}");
        match v.get_ref() {
            TextList::One(t) => {
                self.error(
                    v.span(),
                    format!("{what}: expected {expected}, found the string {t:?}; commands are run directly, never through a shell"),
                );
                return None;
            }
            TextList::Many(list) if list.is_empty() => {
                self.error(v.span(), format!("{what}: is empty; expected {expected}"));
                return None;
            }
            TextList::Many(_) | TextList::Wrong(_) => {}
        }
        let (entries, mut ok) = self.entries(v, what, &expected);
        for (n, arg, span) in &entries {
            if *n == 1 && arg.trim().is_empty() {
                self.error(
                    span.clone(),
                    format!("{what}: the program (the first entry) is empty; expected a program such as \"/usr/bin/pg_dump\""),
                );
                ok = false;
            }
            if arg.contains('\0') {
                self.error(
                    span.clone(),
                    format!("{what} entry {n}: contains a NUL character, which a program or argument cannot hold"),
                );
                ok = false;
            }
        }
        ok.then(|| entries.iter().map(|(_, t, _)| t.to_string()).collect())
    }

    /// A hook's `on`: one event name or an array of them, at least one, none twice.
    fn events(&mut self, v: &S<TextList>, ctx: &str) -> Option<Vec<HookEvent>> {
        self.event_list(v, ctx, &HOOK_EVENTS, "")
    }

    /// An `on` key (hooks, notifiers): one event name from `known` or an array of them, at
    /// least one, none twice; every mistake reported. `empty_hint` ends the sentence for an
    /// empty array.
    pub(super) fn event_list<E: Copy + PartialEq>(
        &mut self,
        v: &S<TextList>,
        ctx: &str,
        known: &[(&str, E)],
        empty_hint: &str,
    ) -> Option<Vec<E>> {
        let what = format!("{ctx}: on");
        let valid = known
            .iter()
            .map(|(k, _)| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        if matches!(v.get_ref(), TextList::Many(list) if list.is_empty()) {
            self.error(
                v.span(),
                format!("{what}: is empty; expected at least one event from {valid}{empty_hint}"),
            );
            return None;
        }
        let (entries, mut ok) = self.entries(
            v,
            &what,
            &format!("an event or an array of events from {valid}"),
        );
        let mut out = Vec::with_capacity(entries.len());
        for (_, name, span) in entries {
            match known.iter().find(|(k, _)| *k == name) {
                None => {
                    self.error(
                        span,
                        format!("{what}: {name:?} is not an event; expected one of {valid}"),
                    );
                    ok = false;
                }
                Some((_, event)) if out.contains(event) => {
                    self.error(
                        span,
                        format!("{what}: {name:?} is listed twice; list each event once"),
                    );
                    ok = false;
                }
                Some((_, event)) => out.push(*event),
            }
        }
        ok.then_some(out)
    }
}
