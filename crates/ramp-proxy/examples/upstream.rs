//! A tiny, fast HTTP/1.1 upstream for benchmarks and manual tests.
//!
//! `cargo run --release --example upstream -- 127.0.0.1:9001 stable 1` listens on the given
//! address with one worker thread and answers every request with a 13-byte body and an
//! `x-upstream` header naming itself, so a client can see which pool served it. A request
//! header `x-delay-ms` delays the answer (at most 10 s) and `x-status` sets its status.

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9001".into());
    let name = args.next().unwrap_or_else(|| "upstream".into());
    let workers: usize = args.next().and_then(|w| w.parse().ok()).unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("upstream: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("upstream: cannot listen on {addr}: {e}");
                std::process::exit(1);
            }
        };
        let name: &'static str = Box::leak(name.into_boxed_str());
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service =
                    service_fn(move |req: Request<hyper::body::Incoming>| answer(req, name));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    name: &'static str,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header_u64 = |h: &str| {
        req.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    if let Some(ms) = header_u64("x-delay-ms") {
        tokio::time::sleep(Duration::from_millis(ms.min(10_000))).await;
    }
    let status = header_u64("x-status")
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = Response::new(Full::new(Bytes::from_static(b"Hello, world!")));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("x-upstream", hyper::header::HeaderValue::from_static(name));
    Ok(response)
}
