//! hyper 1.x peer for `cargo xtask bench h2`: HTTP/2 by prior knowledge (h2c) only, the
//! same two routes as `hyper_server`, on a current-thread tokio runtime (one thread in all;
//! each stream's task spawned onto it, as hyper's HTTP/2 server does).

use std::convert::Infallible;

use bench_peers::{hyper_respond, serve_each_connection};
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

fn main() -> std::io::Result<()> {
    serve_each_connection(|stream| async move {
        let service = service_fn(|req| async move { Ok::<_, Infallible>(hyper_respond(&req)) });
        let _ = http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })
}
