//! hyper 1.x peer for `cargo xtask bench h2`: HTTP/2 by prior knowledge (h2c) only, the
//! same two routes as `hyper_server`, on a current-thread tokio runtime (one thread in all;
//! each stream's task spawned onto it, as hyper's HTTP/2 server does).

use std::convert::Infallible;

use bench_peers::{Message, PLAINTEXT, serve_each_connection};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};

fn respond(req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let (body, content_type) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/plaintext") => (Bytes::from_static(PLAINTEXT), "text/plain"),
        (&Method::GET, "/json") => {
            let body = serde_json::to_vec(&Message { message: "Hello, World!" })
                .expect("a struct of one string always serializes");
            (Bytes::from(body), "application/json")
        }
        _ => {
            let mut res = Response::new(Full::new(Bytes::new()));
            *res.status_mut() = StatusCode::NOT_FOUND;
            return res;
        }
    };
    let mut res = Response::new(Full::new(body));
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

fn main() -> std::io::Result<()> {
    serve_each_connection(|stream| async move {
        let service = service_fn(|req| async move { Ok::<_, Infallible>(respond(&req)) });
        let _ = http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })
}
