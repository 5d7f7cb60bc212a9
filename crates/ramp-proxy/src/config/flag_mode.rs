//! Stage two's checks of flag mode: the sticky key that carries the flag's targeting key,
//! the `[flag]` table (key, salt, distinct-user window) and the one `upstream` pool.
//!
//! The salt must be the flag's own, or the proxy's cohorts and the flag's variants would
//! disagree about users; so the key and the salt are held to the flags file's own rules.

use super::raw::{FileConfig, FlagFile};
use super::validate::{Checked, Checker, Reported};
use super::{FlagRollout, StickySource, STATS_SLOTS};
use ramp_flags::distinct::WindowConfig;
use ramp_flags::flags::raw::{valid_flag_key, MAX_NAME_CHARS, MAX_SALT_CHARS};
use std::time::Duration;

/// The distinct-user window when `stats_window_s` is absent, in seconds.
const DEFAULT_WINDOW_S: u64 = 300;

impl Checker<'_> {
    /// Flag mode's settings: a sticky key must be set (it carries the targeting key), and
    /// `[flag]` and `upstream` must be good. `sticky` is the checked `[sticky]`.
    pub(super) fn flag_rollout(
        &mut self,
        file: &FileConfig,
        sticky: &Checked<Option<StickySource>>,
    ) -> Checked<FlagRollout> {
        if let Ok(None) = sticky {
            self.invalid(
                "sticky",
                "mode = \"flag\" needs `[sticky]` with the `header` or `cookie` that carries the user's key (the flag's targeting key)".into(),
            );
        }
        let flag = match &file.flag {
            Some(flag) => self.flag(flag),
            None => {
                self.invalid(
                    "flag",
                    "mode = \"flag\" needs a `[flag]` table with the flag's `key`".into(),
                );
                Err(Reported)
            }
        };
        let upstream = self.pool("upstream", file.upstream.as_ref());
        let (key, salt, stats) = flag?;
        if !matches!(sticky, Ok(Some(_))) {
            return Err(Reported);
        }
        Ok(FlagRollout {
            upstream: upstream?,
            key,
            salt,
            stats,
        })
    }

    /// `[flag]`: the key, the salt (the key when absent) and the distinct-user window.
    fn flag(&mut self, flag: &FlagFile) -> Checked<(String, String, WindowConfig)> {
        let key = match &flag.key {
            None => {
                // Located at the `[flag]` table that lacks it, when the file writes one.
                self.invalid_at("flag.key", "flag", "the flag's key is required".into());
                Err(Reported)
            }
            Some(key) if !valid_flag_key(key) => {
                self.invalid(
                    "flag.key",
                    format!(
                        "\"{key}\" is not a flag key: use 1 to {MAX_NAME_CHARS} ASCII letters, digits, `_`, `-` or `.`"
                    ),
                );
                Err(Reported)
            }
            Some(key) => Ok(key.clone()),
        };
        let salt = match &flag.salt {
            None => key.clone(),
            Some(salt) if !salt.is_empty() && salt.chars().count() <= MAX_SALT_CHARS => {
                Ok(salt.clone())
            }
            Some(_) => {
                self.invalid(
                    "flag.salt",
                    format!(
                        "expected a non-empty string of at most {MAX_SALT_CHARS} characters (the flag's `salt`)"
                    ),
                );
                Err(Reported)
            }
        };
        let window_s = flag.stats_window_s.unwrap_or(DEFAULT_WINDOW_S);
        let window_ok = (3..=86_400).contains(&window_s);
        if !window_ok {
            self.invalid(
                "flag.stats_window_s",
                format!("{window_s} is out of range (3 to 86400 seconds)"),
            );
        }
        // The cap is checked against the default window when the window is out of range,
        // so that a bad cap is reported too, not hidden behind the window.
        let window = Duration::from_secs(if window_ok {
            window_s
        } else {
            DEFAULT_WINDOW_S
        });
        let cap = flag.stats_exact_cap.unwrap_or(100_000);
        let stats = WindowConfig::new(window, STATS_SLOTS, cap).map_err(|e| {
            self.invalid("flag.stats_exact_cap", e.to_string());
            Reported
        });
        if !window_ok {
            return Err(Reported);
        }
        Ok((key?, salt?, stats?))
    }
}
