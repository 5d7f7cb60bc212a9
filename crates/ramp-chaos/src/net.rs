//! Small network helpers: free loopback ports and one bounded HTTP/1.1 GET.
//!
//! The soak talks to the proxy's admin API and the controller's control API a few times a
//! second. A plain request on a fresh connection with a hard deadline is all it needs, and
//! it must never hang: the process at the other end may have just been killed.

use anyhow::{anyhow, bail, Context, Result};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest answer read, in bytes; the documents polled are a few KiB.
const MAX_ANSWER: usize = 4 << 20;

/// A loopback port that was free a moment ago, for a child process to listen on. The kernel
/// may hand it to someone else before the child binds it; on a machine running only this
/// soak's processes that does not happen in practice, and a child that cannot bind fails
/// loudly rather than silently.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .context("cannot open a loopback port to find a free one")?;
    Ok(listener
        .local_addr()
        .context("a loopback listener without an address")?
        .port())
}

/// `GET path` on `addr` with `Connection: close`, the whole exchange within `limit`: the
/// status and the body.
pub async fn get(addr: SocketAddr, path: &str, limit: Duration) -> Result<(u16, String)> {
    tokio::time::timeout(limit, get_unbounded(addr, path))
        .await
        .map_err(|_| anyhow!("GET http://{addr}{path}: no answer within {limit:?}"))?
}

/// The exchange of [`get`], without its deadline.
async fn get_unbounded(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("GET http://{addr}{path}: cannot connect"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .with_context(|| format!("GET http://{addr}{path}: cannot send"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream
            .read(&mut buf)
            .await
            .with_context(|| format!("GET http://{addr}{path}: cannot read the answer"))?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.len() > MAX_ANSWER {
            bail!("GET http://{addr}{path}: the answer is over {MAX_ANSWER} bytes");
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("GET http://{addr}{path}: no status line"))?;
    let body = if head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"))
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

/// The payload of a chunked body (extensions and trailers ignored), or what could be
/// decoded of it.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size_line, after)) = rest.split_once("\r\n") {
        let size = size_line.split(';').next().unwrap_or("").trim();
        let Ok(n) = usize::from_str_radix(size, 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].strip_prefix("\r\n").unwrap_or(&after[n..]);
    }
    out
}

/// `GET path` as JSON; any failure (no answer, an error status, not JSON) is an error.
pub async fn get_json(addr: SocketAddr, path: &str, limit: Duration) -> Result<serde_json::Value> {
    let (status, body) = get(addr, path, limit).await?;
    if status != 200 {
        bail!("GET http://{addr}{path}: HTTP {status}");
    }
    serde_json::from_str(&body).with_context(|| format!("GET http://{addr}{path}: not JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n"), "Wikipedia");
        assert_eq!(dechunk("zz\r\n"), "");
    }
}
