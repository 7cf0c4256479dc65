//! An upload of a file as aiohttp's `session.post(url, data=open(path, "rb"))`: the body
//! is the file, with its length as `Content-Length`. On a plain `http://` connection it
//! goes from the page cache to the socket with `sendfile(2)`, never copied through this
//! process; over TLS or HTTP/2 it is read a piece at a time into one reused buffer. Either
//! way a file of any size needs only a piece of memory.
//!
//! ```text
//! cargo run --example upload_file -- FILE URL
//! ```

use std::path::Path;

use tandem_http::ClientSession;

/// A failed request or a failed open, with its causes.
type Error = anyhow::Error;

/// Sends the file at `path` as the body of `POST url`; the response's status and body.
pub(crate) async fn upload(
    session: &ClientSession,
    path: &Path,
    url: &str,
) -> Result<(tandem_http::http::StatusCode, String), Error> {
    let file = std::fs::File::open(path)?;
    let mut response = session.post(url).body_file(file).send().await?;
    Ok((response.status(), response.text().await?))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, url] = args.as_slice() else {
        eprintln!("usage: upload_file FILE URL");
        return std::process::ExitCode::from(2);
    };
    match upload(&ClientSession::new(), Path::new(file), url).await {
        Ok((status, body)) => {
            println!("{status} {body}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("upload_file: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
