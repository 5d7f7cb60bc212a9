//! Stage two for `[control]`, `[ofrep]` and `[flags.NAME]`: who may control a live run, and
//! the feature flags it serves (a simulation evaluates flags too).
//!
//! Each is optional, so that a plan without them can still be simulated; when present, a
//! mistake in one is a located plan error instead of a failure in the middle of a rollout.
//! `[flags.NAME]` is validated by ramp-flags itself, its errors located in the plan. Also
//! here: the check of the `http://` URLs a live run calls (the router's admin API of
//! `router`, and the checks and hooks of `probes`).

use super::raw::{RawControl, RawOfrep};
use super::scalar::{Text, S};
use super::validator::{written, Field, Validator};
use crate::plan::Control;
use std::net::SocketAddr;
use std::path::PathBuf;

impl Validator<'_> {
    /// A URL a check fetches or a hook posts to, kept as written.
    pub(super) fn http_url(&mut self, v: &S<Text>, what: &str, example: &str) -> Option<String> {
        let t = self.text(v, what)?;
        match parse_http_url(&t, example) {
            Ok(_) => Some(t),
            Err(e) => {
                self.error(v.span(), format!("{what}: {e}"));
                None
            }
        }
    }

    /// A file path, kept as written (the binary resolves it against the plan's directory).
    pub(super) fn path(&mut self, v: &S<Text>, what: &str) -> Option<PathBuf> {
        self.text(v, what).map(PathBuf::from)
    }

    /// `[control]`: a socket address, and a token whenever that address is not loopback.
    pub(super) fn control(&mut self, raw: Option<&S<RawControl>>) -> Option<Control> {
        let Some(raw) = raw else {
            return Some(Control::default());
        };
        let r = raw.get_ref();
        let listen = Field::of(r.listen.as_ref(), |v| {
            let t = self.string(v, "control.listen")?;
            match t.parse::<SocketAddr>() {
                Ok(addr) => Some((addr, v.span())),
                Err(_) => {
                    self.error(
                        v.span(),
                        format!("control.listen: {t:?} is not a socket address; expected an IP address and a port such as \"127.0.0.1:9911\" or \"[::1]:9911\" (not a host name)"),
                    );
                    None
                }
            }
        });
        let token_file = Field::of(r.token_file.as_ref(), |v| {
            self.path(v, "control.token_file")
        });
        let token_env = Field::of(r.token_env.as_ref(), |v| {
            let t = self.string(v, "control.token_env")?;
            let mut chars = t.chars();
            let valid = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid {
                Some(t.to_string())
            } else {
                self.error(
                    v.span(),
                    format!("control.token_env: {t:?} is not an environment variable name; expected ASCII letters, digits and '_', not starting with a digit, such as \"RAMP_TOKEN\""),
                );
                None
            }
        });
        if let Field::Valid((addr, span)) = &listen {
            let loopback = addr.ip().to_canonical().is_loopback();
            if !loopback && !token_file.present() && !token_env.present() {
                self.error(
                    span.clone(),
                    format!("control.listen: {addr} is not a loopback address, so anyone who can reach it could pause, approve or abort the rollout; set token_file or token_env, or listen on 127.0.0.1"),
                );
                return None;
            }
        }
        Some(Control {
            listen: written(listen)?.map(|(addr, _)| addr),
            token_file: written(token_file)?,
            token_env: written(token_env)?,
        })
    }

    /// `[ofrep]`: a socket address, and a token off loopback.
    pub(super) fn ofrep(&mut self, raw: Option<&S<RawOfrep>>) -> Option<crate::plan::Ofrep> {
        let Some(raw) = raw else {
            return Some(crate::plan::Ofrep::default());
        };
        let r = raw.get_ref();
        let listen = Field::of(r.listen.as_ref(), |v| {
            let t = self.string(v, "ofrep.listen")?;
            match t.parse::<SocketAddr>() {
                Ok(addr) => Some((addr, v.span())),
                Err(_) => {
                    self.error(
                        v.span(),
                        format!("ofrep.listen: {t:?} is not a socket address; expected an IP address and a port such as \"127.0.0.1:8016\""),
                    );
                    None
                }
            }
        });
        let token_file = Field::of(r.token_file.as_ref(), |v| self.path(v, "ofrep.token_file"));
        if let Field::Valid((addr, span)) = &listen {
            if !addr.ip().to_canonical().is_loopback() && !token_file.present() {
                self.error(
                    span.clone(),
                    format!("ofrep.listen: {addr} is not a loopback address; set ofrep.token_file so that only your applications can read the flags, or listen on 127.0.0.1"),
                );
                return None;
            }
        }
        let listen = match listen {
            Field::Absent => crate::plan::Ofrep::default().listen,
            Field::Valid((addr, _)) => addr,
            Field::Invalid => return None,
        };
        let token_file = match token_file {
            Field::Absent => None,
            Field::Valid(p) => Some(p),
            Field::Invalid => return None,
        };
        Some(crate::plan::Ofrep { listen, token_file })
    }

    /// `[flags.NAME]`: validated by ramp-flags (the same rules as a standalone flags file),
    /// its errors located in the plan.
    pub(super) fn flags(
        &mut self,
        raw: Option<&S<ramp_flags::flags::raw::RawFlags>>,
    ) -> Option<ramp_flags::flags::FlagSet> {
        let Some(raw) = raw else {
            return Some(ramp_flags::flags::FlagSet::empty());
        };
        match ramp_flags::flags::raw::validate(raw.get_ref()) {
            Ok(set) => Some(set),
            Err(errors) => {
                for e in errors {
                    self.error(e.span, format!("flags: {}", e.message));
                }
                None
            }
        }
    }
}

/// A plain-HTTP URL taken apart, enough to check it and to tell a base URL from one with a
/// path. The live driver parses the checked text again with `http::Uri`; this check exists so
/// that a bad URL is a located plan error instead of a failure in the middle of a rollout.
pub(super) struct HttpUrl<'a> {
    /// `host:port` or `host`, as written.
    pub(super) authority: &'a str,
    /// Everything after the authority: the path and query, possibly empty.
    pub(super) rest: &'a str,
}

/// Checks a URL that a live run fetches or posts to: `http://` only (https is not supported
/// yet), a host and an optional port, no credentials or fragment, and a path and query made
/// of characters a request line can carry. `example` is shown after "expected"; the error
/// names the URL but not the key (the caller adds it).
pub(super) fn parse_http_url<'a>(t: &'a str, example: &str) -> Result<HttpUrl<'a>, String> {
    let expected = format!("expected an http:// URL such as {example:?}");
    let Some((scheme, rest)) = t.split_once("://") else {
        return Err(format!("{t:?} is not a URL; {expected}"));
    };
    if scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "{t:?}: https is not supported yet; use http:// on a trusted network or loopback"
        ));
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!("{t:?} has the scheme {scheme:?}; {expected}"));
    }
    if let Some(bad) = t.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{t:?} contains {bad:?}, which a URL cannot hold; percent-encode it"
        ));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err(format!(
            "{t:?} has credentials before the host, which are not supported; {expected}"
        ));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let Some((v6, after)) = bracketed.split_once(']') else {
                return Err(format!("{t:?} has an unclosed '[' in its host; {expected}"));
            };
            if v6.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!(
                    "{t:?} has [{v6}], which is not an IPv6 address; {expected}"
                ));
            }
            match after {
                "" => (v6, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (v6, Some(port)),
                    None => {
                        return Err(format!(
                            "{t:?} has {after:?} after its IPv6 address; {expected}"
                        ))
                    }
                },
            }
        }
        None => {
            let (host, port) = match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            if host.is_empty() {
                return Err(format!("{t:?} has no host; {expected}"));
            }
            if let Some(bad) = host
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
            {
                return Err(format!(
                    "{t:?} has the host {host:?}, which contains {bad:?}; expected a host name or an IP address (an IPv6 address in brackets)"
                ));
            }
            (host, port)
        }
    };
    if host.is_empty() {
        return Err(format!("{t:?} has no host; {expected}"));
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.chars().all(|c| c.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p != 0);
        if !valid {
            return Err(format!(
                "{t:?} has the port {port:?}; expected a port number from 1 to 65535"
            ));
        }
    }
    if tail.contains('#') {
        return Err(format!(
            "{t:?} has a fragment (#…), which is never sent to a server; remove it"
        ));
    }
    if let Some(bad) = tail
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?%".contains(*c)))
    {
        return Err(format!(
            "{t:?} contains {bad:?}, which a URL cannot hold unescaped; percent-encode it"
        ));
    }
    Ok(HttpUrl {
        authority,
        rest: tail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_are_taken_apart_or_rejected_with_a_reason() {
        let ex = "http://h:1";
        let u = parse_http_url("http://127.0.0.1:9001/health?x=1", ex).unwrap();
        assert_eq!((u.authority, u.rest), ("127.0.0.1:9001", "/health?x=1"));
        let u = parse_http_url("HTTP://[::1]:80", ex).unwrap();
        assert_eq!((u.authority, u.rest), ("[::1]:80", ""));
        let u = parse_http_url("http://svc.internal", ex).unwrap();
        assert_eq!((u.authority, u.rest), ("svc.internal", ""));
        for (url, expect) in [
            ("https://example.com", "https is not supported yet"),
            ("ftp://example.com", "has the scheme \"ftp\""),
            ("127.0.0.1:9901", "is not a URL"),
            ("http://", "has no host"),
            ("http://:80/x", "has no host"),
            ("http://user:pw@host/", "credentials"),
            ("http://host:0/", "has the port \"0\""),
            ("http://host:70000/", "has the port \"70000\""),
            ("http://host:/", "has the port \"\""),
            ("http://host:+80/", "has the port \"+80\""),
            ("http://[::1/", "unclosed '['"),
            ("http://[::g]:1/", "not an IPv6 address"),
            ("http://[::1]x/", "after its IPv6 address"),
            ("http://::1:80/", "has the host \"::1\""),
            ("http://ho st/", "contains ' '"),
            ("http://host/a b", "contains ' '"),
            ("http://host/a#b", "fragment"),
            ("http://host/{x}", "contains '{'"),
            ("http://hé/", "contains 'é'"),
        ] {
            match parse_http_url(url, ex) {
                Ok(_) => panic!("{url} should be rejected"),
                Err(e) => assert!(e.contains(expect), "{url}: {e}"),
            }
        }
    }
}
