//! A streaming download to a file: the body is written chunk by chunk as it arrives, as
//! aiohttp's `iter_chunked` loop, so a file of any size needs only a chunk of memory.
//!
//! ```text
//! cargo run --example download -- URL FILE
//! ```

use std::io::Write;
use std::path::Path;

use tandem_http::ClientSession;

/// A failed request or a failed write, with its causes.
type Error = anyhow::Error;

/// Writes the body of `GET url` to `path`; the number of bytes written.
///
/// Each piece is written as it arrives, from the buffer it was read into, by a plain
/// blocking write on this task's own thread. A write into the page cache takes about as
/// long as handing it to another thread would (`tokio::fs` copies every write into a buffer
/// of its own and wakes a thread of the blocking pool to make it), and while it runs the
/// socket's buffer goes on receiving. The download is the program's only task, so the write
/// holds up nothing else; a server running many tasks on its runtime would hand a slow
/// disk's writes to `spawn_blocking` instead, in large batches.
pub(crate) async fn download(
    session: &ClientSession,
    url: &str,
    path: &Path,
) -> Result<u64, Error> {
    let mut response = session.get(url).send().await?.error_for_status()?;
    let mut file = std::fs::File::create(path)?;
    let mut written = 0;
    while let Some(chunk) = response.content().chunk().await? {
        file.write_all(&chunk)?;
        written += chunk.len() as u64;
    }
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
