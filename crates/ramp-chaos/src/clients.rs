//! Hostile clients: slowloris connections and stalled uploads aimed at the canary.
//!
//! Both run as tokio tasks in the soak's process against the proxy's client listener on
//! loopback, each for a window of the scenario, and count what the proxy did to them. They
//! are there to show that hostile traffic neither takes the proxy down nor is charged to a
//! cohort as the version's fault (a stalled upload is the client's doing, not the canary's).

use crate::clock;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long a connection attempt may take.
const CONNECT_LIMIT: Duration = Duration::from_secs(2);

/// The pause before trying again after the proxy refused a connection (it is down).
const REFUSED_PAUSE: Duration = Duration::from_millis(500);

/// The request header carrying the sticky user key (the proxy's `[sticky] header`).
pub const USER_HEADER: &str = "x-user-id";

/// What the slowloris clients saw.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SlowlorisStats {
    /// Connections opened.
    pub connections: u64,
    /// Connections the proxy closed (or reset) before the head was complete: its header
    /// deadline at work.
    pub closed_by_proxy: u64,
    /// Connections on which the proxy sent something back (an error status) before closing.
    pub answered: u64,
    /// Connections still open when their window ended, closed by the client.
    pub open_at_window_end: u64,
    /// Connection attempts refused or timed out (the proxy was down).
    pub connect_failures: u64,
    /// The longest any connection was held open, seconds.
    pub longest_held_s: f64,
}

/// One stalled upload that got an answer, for the request accounting.
#[derive(Debug, Clone, Copy)]
pub struct Answered {
    /// When its head and first bytes were sent.
    pub sent: Instant,
    /// When the answer's head arrived.
    pub finished: Instant,
}

/// What the stalled uploads saw.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UploadStats {
    /// Uploads whose head and first body bytes were sent.
    pub started: u64,
    /// Uploads answered with a 2xx or 3xx status (the upstream answered before the body was
    /// complete).
    pub answered_2xx_3xx: u64,
    /// Uploads answered with a 4xx status.
    pub answered_4xx: u64,
    /// Uploads answered with a 5xx status.
    pub answered_5xx: u64,
    /// Uploads the proxy closed without an answer.
    pub closed_without_answer: u64,
    /// Uploads with no answer within the stall, given up by the client.
    pub no_answer: u64,
    /// Connection attempts refused or timed out (the proxy was down).
    pub connect_failures: u64,
    /// Distinct canary user keys used.
    pub keys: u64,
    /// Every answered upload, for the accounting (not serialized: the summary counts them).
    #[serde(skip)]
    pub records: Vec<Answered>,
}

/// A window of the scenario in which a kind of client runs.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// When it opens.
    pub from: Instant,
    /// When it closes.
    pub until: Instant,
}

/// Waits until `t` or until the soak stops; `false` if it stopped.
async fn wait_until(t: Instant, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    let stopped = tokio::select! {
        () = tokio::time::sleep_until(t) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    !stopped && !*stop.borrow()
}

/// Connects within [`CONNECT_LIMIT`].
async fn connect(addr: SocketAddr) -> Option<TcpStream> {
    match tokio::time::timeout(CONNECT_LIMIT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Some(s)
        }
        _ => None,
    }
}

/// Runs `connections` slowloris clients against `proxy` during `window`: each opens a
/// connection, sends the start of a request head and then one more byte every
/// `byte_every`, never finishing the head, and opens another when the proxy closes it.
pub async fn slowloris(
    proxy: SocketAddr,
    window: Window,
    connections: usize,
    byte_every: Duration,
    stats: Arc<Mutex<SlowlorisStats>>,
    stop: watch::Receiver<bool>,
) {
    let mut stop_main = stop.clone();
    if !wait_until(window.from, &mut stop_main).await {
        return;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..connections {
        let (stats, mut stop) = (Arc::clone(&stats), stop.clone());
        tasks.spawn(async move {
            // Spread the first connections over a second rather than opening them at once.
            let start = window.from + Duration::from_millis((i as u64 * 1000) / connections as u64);
            if !wait_until(start, &mut stop).await {
                return;
            }
            while clock::now() < window.until && !*stop.borrow() {
                slowloris_once(proxy, window.until, byte_every, &stats, &mut stop).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// One slowloris connection, until the proxy ends it, the window closes or the soak stops.
async fn slowloris_once(
    proxy: SocketAddr,
    until: Instant,
    byte_every: Duration,
    stats: &Mutex<SlowlorisStats>,
    stop: &mut watch::Receiver<bool>,
) {
    let count =
        |f: &dyn Fn(&mut SlowlorisStats)| f(&mut stats.lock().unwrap_or_else(|p| p.into_inner()));
    let Some(mut stream) = connect(proxy).await else {
        count(&|s| s.connect_failures += 1);
        wait_until(clock::now() + REFUSED_PAUSE, stop).await;
        return;
    };
    count(&|s| s.connections += 1);
    let opened = clock::now();
    let head = "GET /slowloris HTTP/1.1\r\nHost: chaos\r\nX-Slow: ";
    let mut ended_by_proxy = stream.write_all(head.as_bytes()).await.is_err();
    let mut answered = false;
    let mut buf = [0u8; 512];
    while !ended_by_proxy {
        let next = (clock::now() + byte_every).min(until);
        let due = tokio::select! {
            () = tokio::time::sleep_until(next) => true,
            read = stream.read(&mut buf) => {
                answered = matches!(read, Ok(n) if n > 0);
                ended_by_proxy = true;
                false
            }
            _ = stop.wait_for(|s| *s) => break,
        };
        if due {
            if clock::now() >= until || *stop.borrow() {
                break;
            }
            ended_by_proxy = stream.write_all(b"a").await.is_err();
        }
    }
    let held = clock::now().saturating_duration_since(opened).as_secs_f64();
    count(&|s| {
        s.longest_held_s = s.longest_held_s.max(held);
        if ended_by_proxy {
            s.closed_by_proxy += 1;
            if answered {
                s.answered += 1;
            }
        } else {
            s.open_at_window_end += 1;
        }
    });
}

/// `count` user keys that the proxy's sticky bucketing (salted by `deployment`) puts in the
/// canary at `weight_bp` basis points, hence at every larger weight too.
pub fn canary_keys(deployment: &str, weight_bp: u32, count: usize) -> Vec<String> {
    (0u64..)
        .map(|i| format!("chaos-upload-{i}"))
        .filter(|k| ramp_flags::in_rollout(deployment.as_bytes(), k.as_bytes(), weight_bp))
        .take(count)
        .collect()
}

/// How each stalled upload is made.
#[derive(Debug, Clone, Copy)]
pub struct UploadShape {
    /// The announced `Content-Length`.
    pub content_length: usize,
    /// Body bytes sent before stalling.
    pub send_bytes: usize,
    /// How long to stall before giving up.
    pub hold: Duration,
}

/// Runs `connections` stalled uploads at a time against `proxy` during `window`, each with
/// one of `keys` (canary users): a POST announcing `content_length` bytes, of which
/// `send_bytes` are sent before the client stalls for `hold` and then closes. Each of the
/// `connections` slots starts one upload per `hold`.
pub async fn stalled_uploads(
    proxy: SocketAddr,
    window: Window,
    connections: usize,
    shape: UploadShape,
    keys: Arc<Vec<String>>,
    stats: Arc<Mutex<UploadStats>>,
    stop: watch::Receiver<bool>,
) {
    let mut stop_main = stop.clone();
    if !wait_until(window.from, &mut stop_main).await {
        return;
    }
    stats.lock().unwrap_or_else(|p| p.into_inner()).keys = keys.len() as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..connections {
        let (stats, keys, mut stop) = (Arc::clone(&stats), Arc::clone(&keys), stop.clone());
        tasks.spawn(async move {
            let start = window.from + Duration::from_millis((i as u64 * 1000) / connections as u64);
            if !wait_until(start, &mut stop).await {
                return;
            }
            let mut n = i;
            while clock::now() < window.until && !*stop.borrow() {
                let key = &keys[n % keys.len().max(1)];
                n += connections;
                // Each upload holds its slot for the whole stall, even when the proxy ends
                // it sooner, so that the uploads stay a trickle beside the load rather than
                // become a flood of requests of their own.
                let slot_ends = clock::now() + shape.hold;
                upload_once(proxy, key, shape, window.until, &stats, &mut stop).await;
                if !wait_until(slot_ends.min(window.until), &mut stop).await {
                    return;
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// How one stalled upload ended.
enum UploadEnd {
    /// A response head arrived.
    Answered(u16, Instant),
    /// The proxy closed the connection without one.
    Closed,
    /// Nothing came back within the stall.
    Nothing,
}

/// One stalled upload.
async fn upload_once(
    proxy: SocketAddr,
    key: &str,
    shape: UploadShape,
    until: Instant,
    stats: &Mutex<UploadStats>,
    stop: &mut watch::Receiver<bool>,
) {
    let count = |f: &mut dyn FnMut(&mut UploadStats)| {
        f(&mut stats.lock().unwrap_or_else(|p| p.into_inner()))
    };
    let Some(mut stream) = connect(proxy).await else {
        count(&mut |s| s.connect_failures += 1);
        wait_until(clock::now() + REFUSED_PAUSE, stop).await;
        return;
    };
    let mut request = format!(
        "POST /upload HTTP/1.1\r\nHost: chaos\r\n{USER_HEADER}: {key}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        shape.content_length
    )
    .into_bytes();
    request.extend(std::iter::repeat_n(b'x', shape.send_bytes));
    if stream.write_all(&request).await.is_err() {
        count(&mut |s| s.closed_without_answer += 1);
        return;
    }
    let sent = clock::now();
    count(&mut |s| s.started += 1);
    // The stall never outlasts the window by more than the stall itself.
    let give_up = (sent + shape.hold).min(until.max(sent + Duration::from_secs(1)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let mut end = UploadEnd::Nothing;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(give_up) => break,
            _ = stop.wait_for(|s| *s) => break,
            read = stream.read(&mut buf) => match read {
                Ok(n) if n > 0 => {
                    if matches!(end, UploadEnd::Nothing) {
                        head.extend_from_slice(&buf[..n]);
                        if let Some(status) = status_of(&head) {
                            end = UploadEnd::Answered(status, clock::now());
                        }
                    }
                }
                _ => {
                    if matches!(end, UploadEnd::Nothing) {
                        end = UploadEnd::Closed;
                    }
                    break;
                }
            },
        }
    }
    count(&mut |s| match end {
        UploadEnd::Answered(status, finished) => {
            match status {
                200..=399 => s.answered_2xx_3xx += 1,
                400..=499 => s.answered_4xx += 1,
                _ => s.answered_5xx += 1,
            }
            s.records.push(Answered { sent, finished });
        }
        UploadEnd::Closed => s.closed_without_answer += 1,
        UploadEnd::Nothing => s.no_answer += 1,
    });
}

/// The status of a response whose head has arrived (the status line at least), if it has.
fn status_of(head: &[u8]) -> Option<u16> {
    let line_end = head.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_keys_are_in_the_canary_at_the_first_weight() {
        let keys = canary_keys("chaos-soak", 500, 20);
        assert_eq!(keys.len(), 20);
        for k in &keys {
            assert!(ramp_flags::in_rollout(b"chaos-soak", k.as_bytes(), 500));
            assert!(ramp_flags::in_rollout(b"chaos-soak", k.as_bytes(), 2500));
        }
    }

    #[test]
    fn statuses_are_read_from_the_status_line() {
        assert_eq!(status_of(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            status_of(b"HTTP/1.1 408 Request Timeout\r\nx: y"),
            Some(408)
        );
        assert_eq!(status_of(b"HTTP/1.1 20"), None);
    }
}
