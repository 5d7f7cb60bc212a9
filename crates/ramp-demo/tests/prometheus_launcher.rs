//! The real-Prometheus launcher: it starts Debian's `prometheus` on loopback, waits until the
//! given target was scraped, answers queries, and leaves nothing behind when dropped.

use ramp_demo::prometheus::{Prometheus, ScrapeJob};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves one fixed exposition to every connection: a real scrape target, however small.
async fn exporter(listener: TcpListener) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head).await;
            let body = "# HELP launcher_test_value A value the test reads back.\n# TYPE launcher_test_value gauge\nlauncher_test_value 42\n";
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        });
    }
}

/// `GET path` on the server, the body as text.
async fn get(prometheus: &Prometheus, path: &str) -> String {
    let mut stream = TcpStream::connect(prometheus.addr()).await.unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer))
        .await
        .expect("prometheus answered within 5 s")
        .unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_server_has_scraped_its_target_and_is_gone_once_dropped() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    tokio::spawn(exporter(listener));

    let prometheus = Prometheus::start(&[ScrapeJob::new("launcher", &[target])])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(prometheus.addr().ip().is_loopback());
    let answer = get(&prometheus, "/api/v1/query?query=launcher_test_value").await;
    assert!(
        answer.contains(r#""job":"launcher""#) && answer.contains(r#""42""#),
        "the target's value is queryable at once: {answer}"
    );

    let addr = prometheus.addr();
    drop(prometheus);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the server was stopped when its handle was dropped"
    );
}
