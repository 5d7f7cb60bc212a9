//! Stage two's checks of `[etcd]`: the cluster's endpoints and the key prefix of the weight
//! the proxy follows, and the deployment id that names the key (required, and held to the
//! plan's rules so that it cannot leave its directory of keys).

use super::raw::FileConfig;
use super::validate::{Checked, Checker, Reported};
use super::EtcdFollow;

/// The most endpoints accepted; a cluster has a handful of members.
const MAX_ENDPOINTS: usize = 64;

/// The longest prefix accepted, in bytes.
const MAX_PREFIX: usize = 256;

/// The longest deployment id accepted when following etcd, in bytes.
const MAX_DEPLOYMENT: usize = 128;

impl Checker<'_> {
    /// `[etcd]` (with `--etcd` and `--etcd-prefix` laid over it), `None` when absent.
    pub(super) fn etcd(&mut self, file: &FileConfig) -> Checked<Option<EtcdFollow>> {
        let Some(etcd) = &file.etcd else {
            return Ok(None);
        };
        let endpoints = match etcd.endpoints.as_ref().filter(|e| !e.is_empty()) {
            None => {
                self.invalid_at(
                    "etcd.endpoints",
                    "etcd",
                    "at least one etcd client URL is required".into(),
                );
                Err(Reported)
            }
            Some(list) if list.len() > MAX_ENDPOINTS => {
                self.invalid("etcd.endpoints", format!("at most {MAX_ENDPOINTS} URLs"));
                Err(Reported)
            }
            Some(list) => {
                let mut good = true;
                for (i, url) in list.iter().enumerate() {
                    if !valid_endpoint(url) {
                        self.invalid_at(
                            "etcd.endpoints",
                            &format!("etcd.endpoints[{i}]"),
                            format!(
                                "\"{url}\" is not an http:// or https:// URL of a host and port"
                            ),
                        );
                        good = false;
                    }
                }
                if good {
                    Ok(list.clone())
                } else {
                    Err(Reported)
                }
            }
        };
        let prefix = etcd.prefix.clone().unwrap_or_else(|| "/ramp".into());
        let prefix = if prefix.starts_with('/')
            && prefix.len() <= MAX_PREFIX
            && prefix.bytes().all(|b| b.is_ascii_graphic())
        {
            Ok(prefix)
        } else {
            self.invalid(
                "etcd.prefix",
                format!("\"{prefix}\" must start with '/' and be at most {MAX_PREFIX} printable characters without spaces"),
            );
            Err(Reported)
        };
        let deployment = match file.deployment_id.as_deref() {
            None => {
                self.invalid_at(
                    "deployment_id",
                    "etcd",
                    "following etcd needs `deployment_id` (`--deployment-id`): it names the weight key".into(),
                );
                Err(Reported)
            }
            Some(id) if !valid_deployment(id) => {
                self.invalid(
                    "deployment_id",
                    format!("\"{id}\" cannot name an etcd key: use 1 to {MAX_DEPLOYMENT} of A-Z a-z 0-9 - _ ."),
                );
                Err(Reported)
            }
            Some(_) => Ok(()),
        };
        let endpoints = endpoints?;
        deployment?;
        Ok(Some(EtcdFollow {
            endpoints,
            prefix: prefix?,
        }))
    }
}

/// Whether `url` is `http://` or `https://` followed by a non-empty authority and nothing
/// after it but an optional `/`.
fn valid_endpoint(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest.map(|r| r.strip_suffix('/').unwrap_or(r)) {
        Some(authority) => {
            !authority.is_empty()
                && authority.len() <= 255
                && authority.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        }
        None => false,
    }
}

/// Whether a deployment id is a plan's: 1 to 128 of `A-Z a-z 0-9 - _ .`, not `.` or `..`.
fn valid_deployment(id: &str) -> bool {
    (1..=MAX_DEPLOYMENT).contains(&id.len())
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_deployments_are_plain() {
        for good in [
            "http://127.0.0.1:2379",
            "https://etcd-0.example:2379/",
            "http://[::1]:2379",
        ] {
            assert!(valid_endpoint(good), "{good}");
        }
        for bad in [
            "127.0.0.1:2379",
            "http://",
            "http://a b",
            "ftp://x:1",
            "http://x:1/path",
        ] {
            assert!(!valid_endpoint(bad), "{bad}");
        }
        assert!(valid_deployment("checkout-2025.10_a"));
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(129)] {
            assert!(!valid_deployment(bad), "{bad}");
        }
    }
}
