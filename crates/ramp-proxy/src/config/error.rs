//! The errors of loading a configuration: one problem ([`ConfigError`]) and every problem
//! of one load, reported together ([`ConfigErrors`]).

use std::fmt;
use std::path::PathBuf;
use thiserror::Error;

/// One problem with a configuration; a load returns all of them at once in [`ConfigErrors`].
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file that was named.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown or holds a value of the wrong type.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file being parsed.
        path: PathBuf,
        /// 1-based line of the error (0 when the parser gave no position).
        line: usize,
        /// 1-based column of the error (0 when the parser gave no position).
        column: usize,
        /// The parser's description, which names the key and what was expected.
        message: String,
    },
    /// A value parsed but is not acceptable; `field` names the key.
    #[error("{origin}: `{field}`: {message}")]
    Invalid {
        /// Where the value came from: the file (with the value's line and column when the
        /// file holds it), or "command line".
        origin: Origin,
        /// The dotted key path of the offending value.
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

impl ConfigError {
    /// The line and column the error points at, when it points into a file; errors are
    /// reported in this order, those without a place last.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Parse { line, column, .. } => Some((*line, *column)),
            ConfigError::Invalid { origin, .. } => origin.at,
        }
    }
}

/// Where a value came from, as an error names it: a file, or "command line" for values the
/// options gave (and "built-in" for [`super::Config::for_pools`]).
///
/// A value written in the file also has its line and column, so that an editor can jump to
/// it; a value that is missing, or that an option replaced, has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file as the user named it, or "command line".
    pub name: String,
    /// The 1-based line and column (counted in characters) of the value in that file.
    pub at: Option<(usize, usize)>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((line, column)) => write!(f, "{}:{line}:{column}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Every problem found in one configuration, in file order (problems without a place, such
/// as a missing key, after those with one), so that all of them are fixed in one pass.
///
/// `Display` prints one problem per line, with no line break after the last, so that a
/// single problem reads exactly as the [`ConfigError`] it holds.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Puts problems in the order they are reported: by line and column, those without a
    /// place last, and otherwise in the order they were found.
    pub fn in_file_order(mut errors: Vec<ConfigError>) -> ConfigErrors {
        errors.sort_by_key(|e| e.position().map_or((1, 0, 0), |(l, c)| (0, l, c)));
        ConfigErrors(errors)
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        ramp_flags::located::write_lines(f, &self.0)
    }
}

impl std::error::Error for ConfigErrors {}
