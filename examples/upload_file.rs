//! A streaming upload of a file: its bytes go out as they are read, as aiohttp's
//! `session.post(url, data=open(path, "rb"))`, so a file of any size needs only a piece of
//! memory.
//!
//! ```text
//! cargo run --example upload_file -- FILE URL
//! ```

use std::path::Path;

use bytes::BytesMut;
use tandem_http::ClientSession;
use tokio::io::AsyncReadExt;

/// A failed request or a failed read, with its causes.
type Error = anyhow::Error;

/// Bytes read from the file at a time. A tokio `File` reads on the blocking thread pool, one
/// hop per read: a megabyte each keeps that to one hop a megabyte.
const READ_SIZE: usize = 1024 * 1024;

/// Sends the file at `path` as the body of `POST url`; the response's status and body.
pub(crate) async fn upload(
    session: &ClientSession,
    path: &Path,
    url: &str,
) -> Result<(tandem_http::http::StatusCode, String), Error> {
    let file = tokio::fs::File::open(path).await?;
    let pieces = futures_util::stream::try_unfold(file, |mut file| async move {
        let mut buf = BytesMut::with_capacity(READ_SIZE);
        while buf.len() < READ_SIZE {
            if file.read_buf(&mut buf).await? == 0 {
                break;
            }
        }
        Ok::<_, std::io::Error>((!buf.is_empty()).then(|| (buf.freeze(), file)))
    });
    let mut response = session.post(url).body_stream(pieces).send().await?;
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
