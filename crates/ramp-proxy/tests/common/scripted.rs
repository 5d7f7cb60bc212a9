//! Scripted upstreams and raw clients, for the tests that check the proxy's HTTP/1.1 on the
//! wire: a raw-TCP upstream reads the proxy's requests byte for byte and answers exact bytes,
//! and a raw client writes exact requests and reads the proxy's answers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::{file_config, start_proxy, Harness};

/// Upper bound on each wait of the wire tests: every exchange takes milliseconds, so a wait
/// that reaches it means the proxy hung.
pub const BOUND: Duration = Duration::from_secs(5);

/// A TCP stream with a read buffer, so that a message can be read piece by piece (head,
/// chunk-size lines, data) and bytes that arrived with it (the next message) are kept for
/// the next read.
pub struct Wire {
    /// The connection.
    pub stream: TcpStream,
    /// Bytes read from it and not taken yet.
    pub buf: Vec<u8>,
}

/// A chunked body read off the wire.
pub struct Chunked {
    /// The concatenated chunk data.
    pub body: Vec<u8>,
    /// The body exactly as it was on the wire, framing included.
    pub raw: Vec<u8>,
    /// The trailer fields, names lowercased.
    pub trailers: Vec<(String, String)>,
}

impl Wire {
    /// Wraps a connected stream.
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads whatever arrives next into the buffer; an error at the end of the stream.
    pub async fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk).await {
            Ok(0) => Err("the connection was closed".into()),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => Err(format!("read failed: {e}")),
        }
    }

    /// Takes the bytes up to and including the first `delim`, reading as needed. `Ok(None)`
    /// if the stream ends cleanly before any byte of it arrived.
    pub async fn take_through(
        &mut self,
        delim: &[u8],
        limit: usize,
    ) -> Result<Option<Vec<u8>>, String> {
        loop {
            if let Some(at) = self.buf.windows(delim.len()).position(|w| w == delim) {
                return Ok(Some(self.buf.drain(..at + delim.len()).collect()));
            }
            if self.buf.len() > limit {
                return Err(format!("no {delim:?} within {limit} bytes"));
            }
            if let Err(e) = self.fill().await {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        }
    }

    /// Takes one CRLF-terminated line (CRLF included).
    pub async fn take_line(&mut self) -> Result<Vec<u8>, String> {
        self.take_through(b"\r\n", 64 * 1024)
            .await?
            .ok_or_else(|| "the connection was closed before a line".to_string())
    }

    /// Takes exactly `n` bytes, reading as needed.
    pub async fn take_exact(&mut self, n: usize) -> Result<Vec<u8>, String> {
        while self.buf.len() < n {
            self.fill().await?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Takes everything until the peer closes the connection.
    pub async fn take_to_end(&mut self) -> Vec<u8> {
        while self.fill().await.is_ok() {}
        std::mem::take(&mut self.buf)
    }

    /// Reads a chunked body strictly (hex size, optional `;extensions`, CRLF after each
    /// size line and after each chunk's data, a last chunk and a trailer section), calling
    /// `on_data` with each chunk's length as soon as the chunk has arrived.
    pub async fn take_chunked(
        &mut self,
        mut on_data: impl FnMut(usize),
    ) -> Result<Chunked, String> {
        let mut out = Chunked {
            body: Vec::new(),
            raw: Vec::new(),
            trailers: Vec::new(),
        };
        loop {
            let line = self.take_line().await?;
            out.raw.extend_from_slice(&line);
            let text = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
            let digits = text.split(';').next().unwrap_or("");
            let size = usize::from_str_radix(digits, 16)
                .map_err(|_| format!("invalid chunk-size line {text:?}"))?;
            if size == 0 {
                loop {
                    let line = self.take_line().await?;
                    out.raw.extend_from_slice(&line);
                    if line == b"\r\n" {
                        return Ok(out);
                    }
                    out.trailers.push(parse_field(&line)?);
                }
            }
            let data = self.take_exact(size + 2).await?;
            out.raw.extend_from_slice(&data);
            if &data[size..] != b"\r\n" {
                return Err(format!("chunk of {size} bytes not followed by CRLF"));
            }
            out.body.extend_from_slice(&data[..size]);
            on_data(size);
        }
    }
}

/// Parses one `name: value\r\n` header line into a lowercased name and a trimmed value.
pub fn parse_field(line: &[u8]) -> Result<(String, String), String> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches("\r\n");
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("header line without a colon: {text:?}"))?;
    if name.is_empty() || name.contains([' ', '\t']) {
        return Err(format!("invalid header name in {text:?}"));
    }
    Ok((name.to_ascii_lowercase(), value.trim().to_string()))
}

/// Splits a message head (start line, fields, empty line) into its start line and its
/// fields in order.
pub fn parse_head(head: &[u8]) -> Result<(String, Vec<(String, String)>), String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or("").to_string();
    let mut fields = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        fields.push(parse_field(line.as_bytes())?);
    }
    Ok((start, fields))
}

/// All values of the field `name` in `fields`, in order.
pub fn values(fields: &[(String, String)], name: &str) -> Vec<String> {
    fields
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// How a message's body is delimited, from its fields: chunked if the last transfer coding
/// is chunked, else the content-length, else none (requests) or until the close (responses).
pub fn body_framing(fields: &[(String, String)]) -> Option<Result<usize, ()>> {
    let codings = values(fields, "transfer-encoding");
    if let Some(last) = codings.last() {
        if last.rsplit(',').next().map(str::trim) == Some("chunked") {
            return Some(Err(()));
        }
    }
    values(fields, "content-length")
        .first()
        .and_then(|v| v.parse().ok())
        .map(Ok)
}

/// One request as a scripted upstream received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Which accepted connection carried it (0 for the first accepted).
    pub conn: usize,
    /// Its position among the requests of that connection (0 for the first).
    pub nth: usize,
    /// The request line, without its CRLF.
    pub line: String,
    /// Every header field in the order received, names lowercased.
    pub fields: Vec<(String, String)>,
    /// The body as it was on the wire (chunk framing included).
    pub raw_body: Vec<u8>,
    /// The body, decoded.
    pub body: Vec<u8>,
    /// The trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
    /// What was wrong with the request's framing, if anything.
    pub error: Option<String>,
}

impl Received {
    /// The request's method.
    pub fn method(&self) -> &str {
        self.line.split(' ').next().unwrap_or("")
    }

    /// The request's target (its path and query, for origin-form).
    pub fn target(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or("")
    }

    /// Every value of the header field `name`, in order (one entry per field line).
    pub fn all(&self, name: &str) -> Vec<String> {
        values(&self.fields, name)
    }
}

/// What a scripted upstream does after it has read a request.
pub struct Reply {
    /// Byte strings written in order, each after its pause.
    pub writes: Vec<(Duration, Vec<u8>)>,
    /// What happens to the connection once they are written.
    pub then: Then,
}

/// What a scripted upstream does with a connection after its answer.
#[derive(Debug, Clone, Copy)]
pub enum Then {
    /// Waits for the next request on it.
    KeepOpen,
    /// Closes it at once.
    Close,
    /// Closes it after this pause, without reading anything more.
    CloseAfter(Duration),
    /// Resets it (RST, not FIN) after this pause, without reading anything more.
    ResetAfter(Duration),
}

impl Reply {
    /// Writes `bytes` at once and keeps the connection open for the next request.
    pub fn send(bytes: impl AsRef<[u8]>) -> Self {
        Self {
            writes: vec![(Duration::ZERO, bytes.as_ref().to_vec())],
            then: Then::KeepOpen,
        }
    }

    /// Writes nothing and closes the connection.
    pub fn hang_up() -> Self {
        Self {
            writes: Vec::new(),
            then: Then::Close,
        }
    }

    /// Also writes `bytes`, `pause` after the previous write.
    pub fn and_later(mut self, pause: Duration, bytes: impl AsRef<[u8]>) -> Self {
        self.writes.push((pause, bytes.as_ref().to_vec()));
        self
    }

    /// Does `then` with the connection after the writes.
    pub fn then(mut self, then: Then) -> Self {
        self.then = then;
        self
    }
}

/// A `200 OK` with a content-length and `body`, keep-alive by HTTP/1.1's default.
pub fn ok(body: impl AsRef<[u8]>) -> Vec<u8> {
    let body = body.as_ref();
    let mut out = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// A raw-TCP upstream that answers each request as its script says and records what it
/// received.
pub struct Scripted {
    /// Where it listens.
    pub addr: SocketAddr,
    /// How many connections it accepted.
    pub accepted: Arc<AtomicUsize>,
    /// Every request it read, in the order it finished reading them.
    pub received: Arc<Mutex<Vec<Received>>>,
    /// How many request body bytes it has decoded so far, over all requests.
    pub body_bytes: watch::Receiver<usize>,
}

impl Scripted {
    /// How many connections were accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// A copy of the requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("received lock").clone()
    }

    /// The last request received; panics if there was none.
    pub fn last(&self) -> Received {
        self.received()
            .pop()
            .expect("the upstream received a request")
    }

    /// Waits (bounded) until the upstream has decoded at least `n` request body bytes.
    pub async fn wait_for_body_bytes(&self, n: usize) {
        let mut rx = self.body_bytes.clone();
        tokio::time::timeout(BOUND, rx.wait_for(|&got| got >= n))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the upstream got {} body bytes, not {n}: the proxy held the upload back",
                    *self.body_bytes.borrow()
                )
            })
            .expect("upstream alive");
    }
}

/// Starts a scripted upstream on 127.0.0.1. Each connection is served by its own task that
/// reads a request head, then the body its framing announces (content-length or chunked,
/// decoded strictly), records the request, and carries out `script`'s reply; it stops at
/// the end of the stream or when the reply closes the connection.
pub async fn scripted(script: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(Mutex::new(Vec::new()));
    let (progress, body_bytes) = watch::channel(0usize);
    let (script, progress) = (Arc::new(script), Arc::new(progress));
    let (count, log) = (accepted.clone(), received.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let conn = count.fetch_add(1, Ordering::SeqCst);
            let (script, progress, log) = (script.clone(), progress.clone(), log.clone());
            tokio::spawn(async move {
                let mut wire = Wire::new(stream);
                for nth in 0.. {
                    let Ok(Some(head)) = wire.take_through(b"\r\n\r\n", 1 << 20).await else {
                        return;
                    };
                    let mut request = Received {
                        conn,
                        nth,
                        line: String::new(),
                        fields: Vec::new(),
                        raw_body: Vec::new(),
                        body: Vec::new(),
                        trailers: Vec::new(),
                        error: None,
                    };
                    match parse_head(&head) {
                        Ok((line, fields)) => (request.line, request.fields) = (line, fields),
                        Err(e) => request.error = Some(e),
                    }
                    let body = match body_framing(&request.fields) {
                        None => Ok(None),
                        Some(Ok(n)) => wire.take_exact(n).await.map(|body| {
                            progress.send_modify(|got| *got += n);
                            Some((body.clone(), body, Vec::new()))
                        }),
                        Some(Err(())) => wire
                            .take_chunked(|n| progress.send_modify(|got| *got += n))
                            .await
                            .map(|c| Some((c.raw, c.body, c.trailers))),
                    };
                    match body {
                        Ok(Some((raw, body, trailers))) => {
                            (request.raw_body, request.body, request.trailers) =
                                (raw, body, trailers)
                        }
                        Ok(None) => {}
                        Err(e) => request.error = Some(e),
                    }
                    let broken = request.error.is_some();
                    let reply = script(&request);
                    log.lock().expect("log lock").push(request);
                    if broken {
                        return;
                    }
                    for (pause, bytes) in reply.writes {
                        if !pause.is_zero() {
                            tokio::time::sleep(pause).await;
                        }
                        if wire.stream.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                    match reply.then {
                        Then::KeepOpen => {}
                        Then::Close => {
                            let _ = wire.stream.shutdown().await;
                            return;
                        }
                        Then::CloseAfter(pause) => {
                            tokio::time::sleep(pause).await;
                            let _ = wire.stream.shutdown().await;
                            return;
                        }
                        Then::ResetAfter(pause) => {
                            tokio::time::sleep(pause).await;
                            // Linger 0 makes the close send RST; with a zero timeout it
                            // never blocks, which is what the deprecation warns about.
                            #[allow(deprecated)]
                            let _ = wire.stream.set_linger(Some(Duration::ZERO));
                            return;
                        }
                    }
                }
            });
        }
    });
    Scripted {
        addr,
        accepted,
        received,
        body_bytes,
    }
}

/// Starts a proxy whose stable and canary pools are both `up`, at the given canary weight
/// (0 sends everything to stable, 100 everything to canary).
pub async fn proxy_to(up: &Scripted, canary_percent: f64) -> Harness {
    let mut file = file_config(&[up.addr], &[up.addr]);
    file.initial_canary_weight = Some(canary_percent);
    start_proxy(file).await
}

/// A response as a raw client read it from the proxy.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The status line.
    pub line: String,
    /// The header fields in order, names lowercased.
    pub fields: Vec<(String, String)>,
    /// The body, decoded.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// Every value of the header field `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        values(&self.fields, name)
    }
}

/// Reads one response from the proxy (bounded): its head, then the body its framing
/// announces. A response to HEAD, a 1xx, a 204 and a 304 have no body whatever their
/// fields say, so nothing more is read for them and any stray bytes the proxy sent would
/// be read as the next response.
pub async fn read_response(wire: &mut Wire, to_head: bool) -> RawResponse {
    let read = async {
        let head = wire
            .take_through(b"\r\n\r\n", 1 << 20)
            .await
            .expect("response head")
            .expect("the proxy answered before closing");
        let (line, fields) = parse_head(&head).expect("a well-formed head");
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let bodiless = to_head || status < 200 || status == 204 || status == 304;
        let body = match body_framing(&fields) {
            _ if bodiless => Vec::new(),
            Some(Ok(n)) => wire.take_exact(n).await.expect("body"),
            Some(Err(())) => wire.take_chunked(|_| {}).await.expect("chunked body").body,
            None => wire.take_to_end().await,
        };
        RawResponse {
            status,
            line,
            fields,
            body,
        }
    };
    tokio::time::timeout(BOUND, read)
        .await
        .expect("the proxy answered in time")
}

/// Opens a raw client connection to the proxy.
pub async fn raw_client(h: &Harness) -> Wire {
    let stream = tokio::time::timeout(BOUND, TcpStream::connect(h.addr))
        .await
        .expect("connect in time")
        .expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    Wire::new(stream)
}

/// Writes `bytes` to a raw client connection.
pub async fn write(wire: &mut Wire, bytes: impl AsRef<[u8]>) {
    tokio::time::timeout(BOUND, wire.stream.write_all(bytes.as_ref()))
        .await
        .expect("write in time")
        .expect("write");
}

/// Asserts that, over both cohorts, the only upstream errors counted are `n` of `reason`
/// charged to `cohort` (with `n` 0, that none are counted at all).
pub fn assert_upstream_errors(snapshot: &serde_json::Value, cohort: &str, reason: &str, n: u64) {
    for c in ["stable", "canary"] {
        let errors = &snapshot["metrics"][c]["upstream_errors"];
        for (name, got) in errors.as_object().expect("upstream_errors map") {
            let want = if c == cohort && name == reason { n } else { 0 };
            assert_eq!(got, want, "{c} upstream_errors.{name}: {errors}");
        }
    }
}
