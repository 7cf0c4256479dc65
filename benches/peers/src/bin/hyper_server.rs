//! hyper 1.x peer: HTTP/1.1 only, keep-alive, pipelined responses flushed
//! together, on a current-thread tokio runtime (one thread in all).

use std::convert::Infallible;

use bench_peers::{hyper_respond, serve_each_connection};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

fn main() -> std::io::Result<()> {
    serve_each_connection(|stream| async move {
        let service = service_fn(|req| async move { Ok::<_, Infallible>(hyper_respond(&req)) });
        let _ = http1::Builder::new()
            .keep_alive(true)
            .pipeline_flush(true)
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })
}
