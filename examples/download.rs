//! A streaming download to a file: the body is written chunk by chunk as it arrives, as
//! aiohttp's `iter_chunked` loop, so a file of any size needs only a chunk of memory.
//!
//! ```text
//! cargo run --example download -- URL FILE
//! ```

use std::path::Path;

use tandem_http::ClientSession;
use tokio::io::{AsyncWriteExt, BufWriter};

/// A failed request or a failed write, with its causes.
type Error = anyhow::Error;

/// Bytes gathered before each write to the file. A tokio `File` writes on the blocking
/// thread pool, one hop per write: gathered so, that is one a megabyte rather than one a
/// chunk of the body.
const WRITE_BUFFER: usize = 1024 * 1024;

/// Writes the body of `GET url` to `path`; the number of bytes written.
pub(crate) async fn download(
    session: &ClientSession,
    url: &str,
    path: &Path,
) -> Result<u64, Error> {
    let mut response = session.get(url).send().await?.error_for_status()?;
    let mut file = BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::create(path).await?);
    let mut written = 0;
    while let Some(chunk) = response.content().chunk().await? {
        file.write_all(&chunk).await?;
        written += chunk.len() as u64;
    }
    file.flush().await?;
    Ok(written)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, file] = args.as_slice() else {
        eprintln!("usage: download URL FILE");
        return std::process::ExitCode::from(2);
    };
    match download(&ClientSession::new(), url, Path::new(file)).await {
        Ok(bytes) => {
            println!("{bytes} bytes written to {file}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            // `{:#}`: the error and each of its causes.
            eprintln!("download: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
