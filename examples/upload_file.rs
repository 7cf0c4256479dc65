//! A streaming upload of a file: its bytes go out as they are read, as aiohttp's
//! `session.post(url, data=open(path, "rb"))`, so a file of any size needs only a piece of
//! memory.
//!
//! ```text
//! cargo run --example upload_file -- FILE URL
//! ```

use std::io::Read;
use std::path::Path;

use bytes::BytesMut;
use tandem_http::ClientSession;

/// A failed request or a failed read, with its causes.
type Error = anyhow::Error;

/// Bytes read from the file at a time: each piece goes out in one vectored write with its
/// chunk-size line, and at this size it is still in the CPU's cache when it is sent (curl
/// reads 64 KiB at a time into one buffer for the same reason).
const READ_SIZE: usize = 128 * 1024;

/// Sends the file at `path` as the body of `POST url`; the response's status and body.
///
/// Each piece is read by a plain blocking read on this task's own thread, straight into the
/// buffer that is then sent: a read from the page cache takes about as long as handing it
/// to another thread would (`tokio::fs` reads into a buffer of its own on the blocking pool,
/// then copies into the caller's), and while it runs the socket goes on sending what was
/// written before. The upload is the program's only task, so the read holds up nothing
/// else; a server running many tasks would read a slow disk through `spawn_blocking`.
pub(crate) async fn upload(
    session: &ClientSession,
    path: &Path,
    url: &str,
) -> Result<(tandem_http::http::StatusCode, String), Error> {
    let file = std::fs::File::open(path)?;
    let pieces = futures_util::stream::try_unfold(file, |mut file| async move {
        let mut buf = BytesMut::zeroed(READ_SIZE);
        let mut filled = 0;
        while filled < READ_SIZE {
            match file.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(filled);
        Ok::<_, std::io::Error>((filled > 0).then(|| (buf.freeze(), file)))
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
