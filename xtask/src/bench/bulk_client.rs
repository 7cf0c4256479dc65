//! The client rows of `cargo xtask bench bulk`: a 1 GiB response streamed to `/dev/null`
//! through `content()` (`examples/download`) beside curl and `benches/peers`'
//! `reqwest_download`, from nginx (`sendfile on`); and a 1 GiB file sent as a streamed body
//! (`examples/upload_file`) beside `curl -T`, to `benches/peers`' `hyper_server` writing it
//! to `/dev/null`. The server runs on core 0 and the client on core 1; each run is timed
//! from the client's start to its exit, with the CPU time the client used.
//!
//! At 3 GB/s a 1 GiB transfer lasts a third of a second, less than the machine's drift
//! between one run and the next: a round moves [`TRANSFERS`] bodies with each client, the
//! clients taking turns in an order that reverses after every turn (ABC CBA ABC CBA), so
//! each client's figure for the round spans the same stretch of time as the others'.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::load::{Server, clk_tck, waited_children_cpu_ticks};
use super::server::{self, PEERS_MANIFEST, Target, find_exe, median, paired_ratio};
use super::tls::path_str;
use crate::{Cmd, Result};

/// The body moved each way: 1 GiB.
const BODY_BYTES: usize = 1 << 30;

/// The transfers each client makes a round, each of the whole body.
const TRANSFERS: usize = 4;

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

/// One client's [`TRANSFERS`] of a round: the seconds they took from start to exit, the CPU
/// seconds the client used (all its threads, user and system), and the server's meanwhile.
/// On loopback the server's core is the one that runs out first, and what the client does
/// changes the server's share of the kernel's work (the wake-ups it asks for), so both are
/// shown.
#[derive(Clone, Copy, Default)]
struct Sample {
    secs: f64,
    cpu_secs: f64,
    server_cpu_secs: f64,
}

/// Per client, one sample a round: `download[client]`, `upload[client]`.
#[derive(Default)]
pub(super) struct Samples {
    download: [Vec<Sample>; DOWNLOADERS.len()],
    upload: [Vec<Sample>; UPLOADERS.len()],
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

/// One round: [`TRANSFERS`] downloads by each downloader from `nginx`, then as many uploads
/// by each uploader to `sink` (a `hyper_server --upload-file /dev/null`).
pub(super) fn round(
    round: usize,
    (nginx, sink): (&Server, &Server),
    clients: &Clients,
    file: &Path,
    samples: &mut Samples,
) -> Result {
    let url = format!("http://127.0.0.1:{}/static/{FILE}", nginx.port());
    let download = |client: usize| -> Result<Vec<&str>> {
        Ok(match DOWNLOADERS[client].0 {
            "tandem" => vec![path_str(&clients.download)?, &url, "/dev/null"],
            "curl" => vec!["curl", "-sSf", "-o", "/dev/null", &url],
            _ => vec![path_str(&clients.reqwest)?, &url],
        })
    };
    let taken = turns(round, nginx, &DOWNLOADERS, download)?;
    for (client, sample) in taken.into_iter().enumerate() {
        samples.download[client].push(sample);
    }
    let url = format!("http://127.0.0.1:{}/upload", sink.port());
    let file = path_str(file)?;
    let upload = |client: usize| -> Result<Vec<&str>> {
        Ok(match UPLOADERS[client].0 {
            "tandem" => vec![path_str(&clients.upload)?, file, &url],
            _ => vec!["curl", "-sSf", "-o", "/dev/null", "-X", "POST", "-T", file, &url],
        })
    };
    let taken = turns(round, sink, &UPLOADERS, upload)?;
    for (client, sample) in taken.into_iter().enumerate() {
        samples.upload[client].push(sample);
    }
    Ok(())
}

/// Runs each of `clients` [`TRANSFERS`] times against `server`, taking turns (the order
/// reversing after every turn, and starting from the other end each round); each one's sum
/// of the runs.
fn turns<'a>(
    round: usize,
    server: &Server,
    clients: &[(&str, f64)],
    args: impl Fn(usize) -> Result<Vec<&'a str>>,
) -> Result<Vec<Sample>> {
    server::warn_if_busy();
    #[allow(clippy::cast_precision_loss, reason = "a few thousand ticks are exact")]
    let tick_secs = 1.0 / clk_tck() as f64;
    let mut sums = vec![Sample::default(); clients.len()];
    for turn in 0..TRANSFERS {
        for client in order(clients.len(), round + turn) {
            let ticks = (waited_children_cpu_ticks()?, server.cpu_ticks()?);
            let secs = timed(&args(client)?)?;
            #[allow(clippy::cast_precision_loss, reason = "a few thousand ticks are exact")]
            let [cpu_secs, server_cpu_secs] = [
                waited_children_cpu_ticks()?.saturating_sub(ticks.0),
                server.cpu_ticks()?.saturating_sub(ticks.1),
            ]
            .map(|t| t as f64 * tick_secs);
            println!(
                "{}: 1 GiB in {secs:.3} s, client CPU {cpu_secs:.2} s, server CPU {server_cpu_secs:.2} s",
                clients[client].0
            );
            let sum = &mut sums[client];
            sum.secs += secs;
            sum.cpu_secs += cpu_secs;
            sum.server_cpu_secs += server_cpu_secs;
        }
    }
    Ok(sums)
}

/// The `clients` in table order on odd turns, backwards on even ones.
fn order(clients: usize, turn: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..clients).collect();
    if turn.is_multiple_of(2) {
        order.reverse();
    }
    order
}

/// Runs `args` pinned to the client core; the seconds it took.
fn timed(args: &[&str]) -> Result<f64> {
    let cmd = Cmd::new("taskset").args(["-c", "1"]).args(args);
    let start = Instant::now();
    cmd.capture()?;
    Ok(start.elapsed().as_secs_f64())
}

/// The table of medians, MB/s and client's and server's CPU seconds per GiB, and Tandem's ratio to each
/// reference (the median of the rounds' own ratios).
pub(super) fn report(out: &mut String, samples: &Samples) {
    #[allow(clippy::cast_precision_loss, reason = "a few GiB are exact in an f64")]
    let (bytes, gib) = ((TRANSFERS * BODY_BYTES) as f64, ((TRANSFERS * BODY_BYTES) >> 30) as f64);
    let mb_per_sec =
        |s: &[Sample]| -> Vec<f64> { s.iter().map(|s| bytes / 1e6 / s.secs).collect() };
    let per_gib = |s: &[Sample], cpu: fn(&Sample) -> f64| -> f64 {
        median(s.iter().map(|s| cpu(s) / gib).collect())
    };
    let _ = writeln!(
        out,
        "| client, {TRANSFERS} × 1 GiB a round over loopback | MB/s | client CPU s per GiB | server CPU s per GiB |\n|---|---:|---:|---:|"
    );
    let rows =
        DOWNLOADERS.iter().zip(&samples.download).map(|((name, _), s)| ("download", name, s));
    let rows =
        rows.chain(UPLOADERS.iter().zip(&samples.upload).map(|((n, _), s)| ("upload", n, s)));
    for (what, name, s) in rows {
        let (mb, cpu) = (median(mb_per_sec(s)), per_gib(s, |s| s.cpu_secs));
        let server = per_gib(s, |s| s.server_cpu_secs);
        let _ = writeln!(out, "| {what}, {name} | {mb:.0} | {cpu:.3} | {server:.3} |");
    }
    out.push('\n');
    let ratios = |names: &[(&str, f64)], all: &[Vec<Sample>], what: &str, out: &mut String| {
        for ((peer, target), s) in names.iter().zip(all).skip(1) {
            paired_ratio(
                out,
                &format!("client {what}: tandem MB/s ÷ {peer}'s"),
                Some(mb_per_sec(&all[0])),
                Some(mb_per_sec(s)),
                Target::AtLeast(*target),
            );
        }
    };
    ratios(&DOWNLOADERS, &samples.download, "download", out);
    ratios(&UPLOADERS, &samples.upload, "upload", out);
}

#[cfg(test)]
mod tests {
    use super::{TRANSFERS, order};

    #[test]
    fn turns_reverse_and_rounds_start_from_the_other_end() {
        assert_eq!((order(3, 1), order(3, 2)), (vec![0, 1, 2], vec![2, 1, 0]));
        // Round r's turns are `order(_, r + turn)`: round 1 starts in table order, round 2
        // backwards; and with an even number of turns each client goes first as often as
        // last within every round.
        let firsts = |round: usize| -> Vec<usize> {
            (0..TRANSFERS).map(|turn| order(3, round + turn)[0]).collect()
        };
        assert_eq!(firsts(1)[0], 0);
        assert_eq!(firsts(2)[0], 2);
        assert!(TRANSFERS.is_multiple_of(2));
        assert_eq!(firsts(1).iter().filter(|&&c| c == 0).count(), TRANSFERS / 2);
    }
}
