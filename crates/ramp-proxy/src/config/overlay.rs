//! The command-line options laid over a configuration file's values, between stage one and
//! stage two: each option replaces the same key of the file.
//!
//! A replaced value no longer comes from the file, so where the file wrote it is forgotten:
//! a problem with it is reported against the configuration's name alone, never at a line
//! of the file that does not hold the bad value.

use super::parse::{ConfigFile, Places};
use super::raw::{EtcdFile, FlagFile, StickyFile};
use crate::cli::ProxyArgs;

/// The client listener of `ramp proxy` when neither the file nor an option names one.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The admin listener of `ramp proxy` when neither the file nor an option names one.
const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9901";

impl ConfigFile {
    /// Lays the options over the values, then fills in the command line's default
    /// listeners (the library's own defaults are port 0, for tests and embedding).
    pub(crate) fn overlay(&mut self, args: &ProxyArgs) {
        let (raw, places) = (&mut self.raw, &mut self.places);
        replace(&mut raw.listen, &args.listen, "listen", places);
        replace(
            &mut raw.admin_listen,
            &args.admin_listen,
            "admin_listen",
            places,
        );
        replace(&mut raw.stable, &args.stable, "stable", places);
        replace(&mut raw.canary, &args.canary, "canary", places);
        replace(
            &mut raw.initial_canary_weight,
            &args.weight,
            "initial_canary_weight",
            places,
        );
        if let Some(h) = &args.sticky_header {
            let sticky = StickyFile {
                header: Some(h.clone()),
                cookie: None,
            };
            replace(&mut raw.sticky, &Some(sticky), "sticky", places);
        }
        if let Some(c) = &args.sticky_cookie {
            let sticky = StickyFile {
                header: None,
                cookie: Some(c.clone()),
            };
            replace(&mut raw.sticky, &Some(sticky), "sticky", places);
        }
        replace(
            &mut raw.deployment_id,
            &args.deployment_id,
            "deployment_id",
            places,
        );
        replace(
            &mut raw.upstream_protocol,
            &args.upstream_protocol,
            "upstream_protocol",
            places,
        );
        replace(&mut raw.state_file, &args.state_file, "state_file", places);
        replace(
            &mut raw.timeouts.client_body_idle_ms,
            &args.client_body_idle_ms,
            "timeouts.client_body_idle_ms",
            places,
        );
        replace(&mut raw.mode, &args.mode, "mode", places);
        replace(&mut raw.upstream, &args.upstream, "upstream", places);
        if args.flag_key.is_some() || args.flag_salt.is_some() {
            let flag = raw.flag.get_or_insert_with(FlagFile::default);
            replace(&mut flag.key, &args.flag_key, "flag.key", places);
            replace(&mut flag.salt, &args.flag_salt, "flag.salt", places);
        }
        if args.etcd.is_some() || args.etcd_prefix.is_some() {
            let etcd = raw.etcd.get_or_insert_with(EtcdFile::default);
            replace(&mut etcd.endpoints, &args.etcd, "etcd.endpoints", places);
            replace(&mut etcd.prefix, &args.etcd_prefix, "etcd.prefix", places);
        }
        if raw.listen.is_none() {
            raw.listen = Some(DEFAULT_LISTEN.into());
        }
        if raw.admin_listen.is_none() {
            raw.admin_listen = Some(DEFAULT_ADMIN_LISTEN.into());
        }
    }
}

/// Replaces `slot` with the option's value when it was given, and forgets where the file
/// wrote the value it replaces (the key `path` and everything under it).
fn replace<T: Clone>(slot: &mut Option<T>, option: &Option<T>, path: &str, places: &mut Places) {
    if let Some(value) = option {
        *slot = Some(value.clone());
        places.forget(path);
    }
}
