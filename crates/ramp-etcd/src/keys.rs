//! The key layout of one deployment, in one place so that controllers and proxies agree.
//!
//! Under `{prefix}/deployments/{deployment}/`:
//! - `election`: the controllers' election (etcd's election service puts each candidate's key
//!   under it; the oldest is the leader).
//! - `weight`: the canary weight the proxies follow (a `WeightDoc`).
//! - `journal/…`: the journal (runs, inputs, events), laid out by the journal store.

/// The keys of one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// `{prefix}/deployments/{deployment}/`, always ending in `/`.
    root: String,
}

impl Keys {
    /// The keys of `deployment` under `prefix` (a trailing `/` on the prefix is ignored).
    /// The deployment id is used as it is: plans restrict it to letters, digits, `-`, `_`
    /// and `.`, so it cannot escape its directory.
    pub fn new(prefix: &str, deployment: &str) -> Keys {
        Keys {
            root: format!("{}/deployments/{deployment}/", prefix.trim_end_matches('/')),
        }
    }

    /// The deployment's directory, ending in `/`: everything of this deployment starts with it.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The election's name: candidates' keys are created under `{election}/`.
    pub fn election(&self) -> String {
        format!("{}election", self.root)
    }

    /// The weight the proxies follow.
    pub fn weight(&self) -> String {
        format!("{}weight", self.root)
    }

    /// The journal's directory, ending in `/`.
    pub fn journal(&self) -> String {
        format!("{}journal/", self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_lives_under_the_deployments_root() {
        let k = Keys::new("/ramp/", "checkout");
        assert_eq!(k.root(), "/ramp/deployments/checkout/");
        assert_eq!(k.election(), "/ramp/deployments/checkout/election");
        assert_eq!(k.weight(), "/ramp/deployments/checkout/weight");
        assert_eq!(k.journal(), "/ramp/deployments/checkout/journal/");
        // A deployment whose name extends another's does not share its keys.
        let other = Keys::new("/ramp", "checkout-2");
        assert!(!other.weight().starts_with(k.root()));
    }
}
