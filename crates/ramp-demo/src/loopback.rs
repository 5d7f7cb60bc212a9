//! A minimal HTTP/1.0 `GET` to a loopback server, bounded in time and size.
//!
//! The Prometheus launcher's readiness checks and queries, and scripts reading a proxy's
//! `/snapshot`, need one request and its whole answer, nothing more: no pool, no keep-alive,
//! no client library's defaults to audit. Every wait has a deadline and the answer a size
//! limit, since a server that misbehaves must not hang a test run.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one request may take, connection to last byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest answer read (a targets document, a query result or a proxy snapshot).
pub const MAX_ANSWER: usize = 1 << 20;

/// `GET path` from `addr` over HTTP/1.0 with a deadline and a size limit: (status, body),
/// or why there is no answer. The answer is read to the end of the connection, so the
/// server must not chunk it (servers do not for an HTTP/1.0 request).
pub async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        (&mut stream)
            .take(MAX_ANSWER as u64)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<Vec<u8>, String>(answer)
    };
    let answer = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("{path}: no answer within {} s", REQUEST_TIMEOUT.as_secs()))??;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{path}: not an HTTP answer"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
