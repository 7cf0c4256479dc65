//! hyper 1.x peer: HTTP/1.1 only, keep-alive, pipelined responses flushed
//! together, on a current-thread tokio runtime (one thread in all). Besides the shared
//! routes, `POST /echo` sends the request body back, read whole as `bench_server`'s does.

use std::convert::Infallible;

use bench_peers::{hyper_respond, serve_each_connection};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

fn main() -> std::io::Result<()> {
    serve_each_connection(|stream| async move {
        let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
            if req.method() == hyper::Method::POST && req.uri().path() == "/echo" {
                let body = match req.into_body().collect().await {
                    Ok(body) => body.to_bytes(),
                    Err(_) => bytes::Bytes::new(),
                };
                return Ok::<_, Infallible>(hyper::Response::new(Full::new(body)));
            }
            Ok(hyper_respond(&req))
        });
        let _ = http1::Builder::new()
            .keep_alive(true)
            .pipeline_flush(true)
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })
}
