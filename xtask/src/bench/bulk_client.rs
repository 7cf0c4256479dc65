//! The client rows of `cargo xtask bench bulk`: a 1 GiB response streamed to `/dev/null`
//! through `content()` (`examples/download`) beside curl and `benches/peers`'
//! `reqwest_download`, from nginx (`sendfile on`); and a 1 GiB file sent as a streamed body
//! (`examples/upload_file`) beside `curl -T`, to `benches/peers`' `hyper_server` writing it
//! to `/dev/null`. The server runs on core 0 and the client on core 1; each run is timed
//! from the client's start to its exit, and the order of the clients alternates by round.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::load::Server;
use super::server::{self, PEERS_MANIFEST, Target, find_exe, median, paired_ratio};
use super::tls::path_str;
use crate::{Cmd, Result};

/// The body moved each way: 1 GiB.
const BODY_BYTES: usize = 1 << 30;

/// The served file's name in the static folder.
pub(super) const FILE: &str = "1g.bin";

/// The clients of each direction, in table order (Tandem first), and the ratio Tandem must
/// reach over each reference.
const DOWNLOADERS: [(&str, f64); 3] = [("tandem", 1.0), ("curl", 1.0), ("reqwest", 1.2)];
const UPLOADERS: [(&str, f64); 2] = [("tandem", 1.0), ("curl", 1.0)];

/// The client programs.
pub(super) struct Clients {
    download: PathBuf,
    upload: PathBuf,
    reqwest: PathBuf,
}

/// Seconds per run, per client: `download[client]`, `upload[client]`, one a round.
#[derive(Default)]
pub(super) struct Samples {
    download: [Vec<f64>; DOWNLOADERS.len()],
    upload: [Vec<f64>; UPLOADERS.len()],
}

/// Builds Tandem's two examples and the reqwest peer.
pub(super) fn build() -> Result<Clients> {
    let built = server::cargo_build(&["--example", "download", "--example", "upload_file"])?;
    let peers =
        server::cargo_build(&["--manifest-path", PEERS_MANIFEST, "--bin", "reqwest_download"])?;
    Ok(Clients {
        download: find_exe(&built, "download")?,
        upload: find_exe(&built, "upload_file")?,
        reqwest: find_exe(&peers, "reqwest_download")?,
    })
}

/// Writes the 1 GiB file into `dir`, a megabyte of varied bytes at a time.
pub(super) fn write_body(dir: &Path) -> Result<PathBuf> {
    let path = dir.join(FILE);
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut state: u32 = 0x9e37_79b9;
    let mut block = vec![0u8; 1 << 20];
    let mut file = fs::File::create(&path).map_err(fail)?;
    for _ in 0..BODY_BYTES / block.len() {
        for b in &mut block {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *b = state.to_le_bytes()[0];
        }
        file.write_all(&block).map_err(fail)?;
    }
    // On disk before the first run, so that no run shares the machine with its writeback.
    file.sync_all().map_err(fail)?;
    Ok(path)
}

/// One round: every downloader against `nginx`, every uploader against `sink` (a
/// `hyper_server --upload-file /dev/null`).
pub(super) fn round(
    round: usize,
    (nginx, sink): (&Server, &Server),
    clients: &Clients,
    file: &Path,
    samples: &mut Samples,
) -> Result {
    let url = format!("http://127.0.0.1:{}/static/{FILE}", nginx.port());
    for client in order(DOWNLOADERS.len(), round) {
        let args: Vec<&str> = match DOWNLOADERS[client].0 {
            "tandem" => vec![path_str(&clients.download)?, &url, "/dev/null"],
            "curl" => vec!["curl", "-sSf", "-o", "/dev/null", &url],
            _ => vec![path_str(&clients.reqwest)?, &url],
        };
        let secs = timed(&args)?;
        println!("{}: 1 GiB download in {secs:.3} s", DOWNLOADERS[client].0);
        samples.download[client].push(secs);
    }
    let url = format!("http://127.0.0.1:{}/upload", sink.port());
    let file = path_str(file)?;
    for client in order(UPLOADERS.len(), round) {
        let args: Vec<&str> = match UPLOADERS[client].0 {
            "tandem" => vec![path_str(&clients.upload)?, file, &url],
            _ => vec!["curl", "-sSf", "-o", "/dev/null", "-X", "POST", "-T", file, &url],
        };
        let secs = timed(&args)?;
        println!("{}: 1 GiB upload in {secs:.3} s", UPLOADERS[client].0);
        samples.upload[client].push(secs);
    }
    Ok(())
}

/// The `clients` in table order on odd rounds, backwards on even ones.
fn order(clients: usize, round: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..clients).collect();
    if round.is_multiple_of(2) {
        order.reverse();
    }
    order
}

/// Runs `args` pinned to the client core; the seconds it took.
fn timed(args: &[&str]) -> Result<f64> {
    server::warn_if_busy();
    let cmd = Cmd::new("taskset").args(["-c", "1"]).args(args);
    let start = Instant::now();
    cmd.capture()?;
    Ok(start.elapsed().as_secs_f64())
}

/// The table of medians, MB/s, and Tandem's ratio to each reference (the median of the
/// rounds' own ratios).
pub(super) fn report(out: &mut String, samples: &Samples) {
    let mb_per_sec = |secs: &[f64]| -> Vec<f64> {
        #[allow(clippy::cast_precision_loss, reason = "1 GiB is exact in an f64")]
        let mb = BODY_BYTES as f64 / 1e6;
        secs.iter().map(|s| mb / s).collect()
    };
    let _ = writeln!(out, "| client, 1 GiB over loopback | MB/s (median) |\n|---|---:|");
    let rows =
        DOWNLOADERS.iter().zip(&samples.download).map(|((name, _), s)| ("download", name, s));
    let rows =
        rows.chain(UPLOADERS.iter().zip(&samples.upload).map(|((n, _), s)| ("upload", n, s)));
    for (what, name, secs) in rows {
        let _ = writeln!(out, "| {what}, {name} | {:.0} |", median(mb_per_sec(secs)));
    }
    out.push('\n');
    let ratios = |names: &[(&str, f64)], all: &[Vec<f64>], what: &str, out: &mut String| {
        for ((peer, target), secs) in names.iter().zip(all).skip(1) {
            paired_ratio(
                out,
                &format!("client {what}: tandem MB/s ÷ {peer}'s"),
                Some(mb_per_sec(&all[0])),
                Some(mb_per_sec(secs)),
                Target::AtLeast(*target),
            );
        }
    };
    ratios(&DOWNLOADERS, &samples.download, "download", out);
    ratios(&UPLOADERS, &samples.upload, "upload", out);
}
