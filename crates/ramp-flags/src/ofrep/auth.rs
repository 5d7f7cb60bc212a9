//! The optional API token: `Authorization: Bearer <token>` or `X-API-Key: <token>`, the two
//! security schemes of the OFREP specification (`BearerAuth`, `ApiKeyAuth`).

use http::HeaderMap;

/// The longest token accepted: more is surely a mistake (a whole file pasted), and the
/// comparison runs over the token's length on every request.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is empty (a token file with only whitespace, say).
    #[error("the token is empty")]
    Empty,
    /// The token is longer than [`MAX_TOKEN_BYTES`].
    #[error("the token is longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
    /// The token holds a byte that cannot travel in an HTTP header unquoted (a space, a
    /// control character or a non-ASCII byte).
    #[error("the token may hold only visible ASCII characters (no spaces)")]
    BadCharacter,
}

/// A secret that clients must present. Compared in constant time, so that response timing
/// does not reveal how much of a guess was right.
#[derive(Clone)]
pub struct ApiToken {
    /// The token's bytes.
    secret: Box<[u8]>,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret (logs, panics, debug dumps).
        f.write_str("ApiToken(<redacted>)")
    }
}

impl ApiToken {
    /// A token from its text, which must be non-empty visible ASCII (what both header forms
    /// carry without quoting).
    pub fn new(token: &str) -> Result<Self, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Empty);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::BadCharacter);
        }
        Ok(Self {
            secret: token.as_bytes().into(),
        })
    }

    /// Whether `given` equals the token, in time that depends only on the token's length.
    fn matches(&self, given: &[u8]) -> bool {
        let mut diff = u8::from(given.len() != self.secret.len());
        for (i, s) in self.secret.iter().enumerate() {
            diff |= s ^ given.get(i).copied().unwrap_or(0);
        }
        diff == 0
    }

    /// Whether the request carries the token in a bearer `Authorization` header or an
    /// `X-API-Key` header.
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        let mut ok = false;
        for value in headers.get_all(http::header::AUTHORIZATION) {
            let v = value.as_bytes();
            // The scheme name is case-insensitive (RFC 9110 §11.1).
            if v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ") {
                ok |= self.matches(v[7..].trim_ascii());
            }
        }
        for value in headers.get_all("x-api-key") {
            ok |= self.matches(value.as_bytes().trim_ascii());
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn tokens_must_be_visible_ascii() {
        assert_eq!(ApiToken::new("").unwrap_err(), TokenError::Empty);
        assert_eq!(ApiToken::new("a b").unwrap_err(), TokenError::BadCharacter);
        assert_eq!(ApiToken::new("é").unwrap_err(), TokenError::BadCharacter);
        let long = "x".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(ApiToken::new(&long).unwrap_err(), TokenError::TooLong);
        assert!(ApiToken::new("s3cr3t-_.~+/=").is_ok());
    }

    #[test]
    fn bearer_and_api_key_headers_are_accepted() {
        let t = ApiToken::new("s3cr3t").unwrap();
        let mut h = HeaderMap::new();
        assert!(!t.authorizes(&h));
        h.insert("authorization", HeaderValue::from_static("Bearer s3cr3t"));
        assert!(t.authorizes(&h));
        h.insert("authorization", HeaderValue::from_static("bearer s3cr3t"));
        assert!(t.authorizes(&h));
        h.insert("authorization", HeaderValue::from_static("Bearer s3cr3"));
        assert!(!t.authorizes(&h));
        h.insert("authorization", HeaderValue::from_static("Basic s3cr3t"));
        assert!(!t.authorizes(&h));
        h.insert("x-api-key", HeaderValue::from_static("s3cr3t"));
        assert!(t.authorizes(&h));
        h.insert("x-api-key", HeaderValue::from_static("s3cr3tX"));
        assert!(!t.authorizes(&h));
    }

    #[test]
    fn comparison_rejects_prefixes_and_extensions() {
        let t = ApiToken::new("abc").unwrap();
        assert!(t.matches(b"abc"));
        assert!(!t.matches(b"ab"));
        assert!(!t.matches(b"abcd"));
        assert!(!t.matches(b""));
        assert!(!t.matches(b"abd"));
    }
}
