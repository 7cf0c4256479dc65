//! hyper 1.x peer: HTTP/1.1 only, keep-alive, pipelined responses flushed
//! together, on a current-thread tokio runtime (one thread in all). Besides the shared
//! routes, `POST /echo` sends the request body back, read whole as `bench_server`'s does,
//! and with `--upload-file PATH`, `POST /upload` writes the body to PATH as it arrives and
//! answers its size, as `bench_server`'s does.

use std::convert::Infallible;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use bench_peers::{hyper_respond, serve_each_connection, server_args};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

fn main() -> std::io::Result<()> {
    let upload_file = Arc::new(server_args().upload_file);
    serve_each_connection(move |stream| {
        let upload_file = upload_file.clone();
        async move {
            let service = service_fn(|req: hyper::Request<Incoming>| {
                let upload_file = upload_file.clone();
                async move {
                    let route = (req.method() == hyper::Method::POST).then(|| req.uri().path());
                    match (route, upload_file.as_deref()) {
                        (Some("/echo"), _) => {
                            let body = match req.into_body().collect().await {
                                Ok(body) => body.to_bytes(),
                                Err(_) => bytes::Bytes::new(),
                            };
                            Ok::<_, Infallible>(hyper::Response::new(Full::new(body)))
                        }
                        (Some("/upload"), Some(path)) => Ok(upload(req.into_body(), path).await),
                        _ => Ok(hyper_respond(&req)),
                    }
                }
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .pipeline_flush(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    })
}

/// Writes `body` to `path` frame by frame with a blocking write, as `bench_server`'s
/// handler does, and answers the bytes written (500 if the body or the file fails).
async fn upload(mut body: Incoming, path: &Path) -> hyper::Response<Full<bytes::Bytes>> {
    let mut written = 0u64;
    let result: Result<(), Box<dyn std::error::Error>> = async {
        let mut file = std::fs::File::create(path)?;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                file.write_all(&data)?;
                written += data.len() as u64;
            }
        }
        Ok(())
    }
    .await;
    let mut res = hyper::Response::new(Full::new(written.to_string().into()));
    if result.is_err() {
        *res.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
    }
    res
}
