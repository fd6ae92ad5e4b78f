//! `tally-bare`: the limit of tally's HTTP stack. A hyper 1 server built exactly as tally's
//! (`hyper-util` auto builder, HTTP/1 timer, header read timeout and buffer size, graceful
//! shutdown watch, tokio multi-thread runtime honouring `TOKIO_WORKER_THREADS`) that reads each
//! request body within the same size limit and answers `204 No Content`. Whatever tally does
//! beyond this is ingest's cost.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;

/// The same settings as `src/server.rs` and the default `server.max_body_bytes`.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BODY_BYTES: usize = 8192;

#[derive(Parser)]
#[command(
    name = "tally-bare",
    about = "A bare hyper server answering 204 (the stack's limit)"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18997")]
    listen: SocketAddr,
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let status = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::PAYLOAD_TOO_LARGE,
    };
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    Ok(r)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // As tally's main: the worker count comes from TOKIO_WORKER_THREADS, else the core count.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        eprintln!("tally-bare listening on {}", args.listen);
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(64 * 1024)
            // As tally's src/server.rs: no end-of-stream probe while a request is answered.
            .half_close(true);
        let graceful = GracefulShutdown::new();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let conn = builder
                        .serve_connection(TokioIo::new(stream), service_fn(handle))
                        .into_owned();
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        drop(listener);
        let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
        Ok(())
    })
}
