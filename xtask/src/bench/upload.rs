//! The upload row of `cargo xtask bench bulk`: a 1 GiB request body streamed to a file by
//! a handler, `bench_server --upload-file` beside `hyper_server --upload-file`, each writing
//! every chunk it reads to its file with a blocking write as it comes.
//!
//! The files are in tmpfs (`/dev/shm`) where there is one, so what is measured is the HTTP
//! path and a memory copy, not a disk; each is deleted after its upload. The uploader is
//! this process, one thread pinned to the load core writing one buffer in 1 MiB writes on
//! one connection: a client that costs as little as a client can, so the server is the
//! bottleneck. Each upload is timed from the connect to the end of the response; the
//! server's CPU time is read around it, and its peak resident memory (`VmHWM`, reset through
//! `/proc/PID/clear_refs` first) shows whether memory stays flat while 1 GiB goes through.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::load::{self, LOAD_CORE, Server};
use super::server::{Target, median, paired_ratio};
use super::tls::Scratch;
use crate::{Cmd, Result};

/// The body uploaded: 1 GiB.
pub(super) const UPLOAD_SIZE: u64 = 1 << 30;
/// Each write of the uploader.
const WRITE_SIZE: usize = 1 << 20;
/// "Memory flat": the server's peak RSS during the upload, its whole footprint, at most this
/// share of the body.
const FLAT_SHARE: f64 = 0.01;
/// Bound on the upload's every read and write, so a stuck server fails the run.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The row's name in the report.
pub(super) const ROW: &str = "1 GiB upload streamed to a file";

/// One upload's figures.
pub(super) struct UploadResult {
    /// Body bytes per second, in MB/s (10^6).
    pub(super) mb_per_sec: f64,
    /// The server's CPU time per GiB uploaded, in seconds.
    pub(super) cpu_secs: f64,
    /// The server's peak resident memory during the upload, in MiB.
    pub(super) peak_rss_mib: f64,
}

/// The folder the servers write their uploads in (tmpfs if the machine has one), removed
/// when dropped.
pub(super) fn scratch() -> Result<Scratch> {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    let dir = base.join(format!("tandem-bench-upload-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(Scratch(dir))
}

/// The file `server` writes its upload to, in `scratch`.
pub(super) fn file(scratch: &Scratch, server: &str) -> PathBuf {
    scratch.path().join(format!("{server}.bin"))
}

/// Uploads [`UPLOAD_SIZE`] bytes to `server`'s `POST /upload`, which writes them to `file`,
/// and checks both its answer and the file's size.
pub(super) fn run(server: &Server, file: &Path, clk_tck: u64) -> Result<UploadResult> {
    server.reset_peak_rss()?;
    let before = server.cpu_ticks()?;
    let port = server.port();
    let (elapsed, answer) = std::thread::scope(|s| s.spawn(|| upload(port)).join())
        .map_err(|_| "the uploader panicked".to_string())??;
    let after = server.cpu_ticks()?;
    let peak = server.peak_rss_bytes()?;
    let written = fs::metadata(file).map(|m| m.len()).ok();
    let _ = fs::remove_file(file);
    if !answer.starts_with("HTTP/1.1 200") || !answer.ends_with(&UPLOAD_SIZE.to_string()) {
        return Err(format!("{}: the upload was answered with:\n{answer}", server.name()));
    }
    if written != Some(UPLOAD_SIZE) {
        return Err(format!("{}: the upload file holds {written:?} bytes", server.name()));
    }
    let result = UploadResult {
        mb_per_sec: load::to_f64(UPLOAD_SIZE) / elapsed.as_secs_f64() / 1e6,
        cpu_secs: load::to_f64(after.saturating_sub(before)) / load::to_f64(clk_tck),
        peak_rss_mib: load::to_f64(peak) / f64::from(1 << 20),
    };
    println!(
        "  {:.0} MB/s, {elapsed:.2?}, server cpu {:.2} s, peak RSS {:.1} MiB",
        result.mb_per_sec, result.cpu_secs, result.peak_rss_mib
    );
    Ok(result)
}

/// One `POST /upload` of [`UPLOAD_SIZE`] bytes from this thread, pinned to the load core:
/// how long it took, and the whole response.
fn upload(port: u16) -> Result<(Duration, String)> {
    pin_this_thread()?;
    let body = vec![b'x'; WRITE_SIZE];
    let start = Instant::now();
    let io = |e: std::io::Error| format!("upload to port {port}: {e}");
    let mut stream =
        TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).map_err(io)?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {UPLOAD_SIZE}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).map_err(io)?;
    for _ in 0..UPLOAD_SIZE / WRITE_SIZE as u64 {
        stream.write_all(&body).map_err(io)?;
    }
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(io)?;
    Ok((start.elapsed(), answer))
}

/// The row's table and ratios: `samples[0]` Tandem's uploads, `samples[1]` hyper's, one
/// a round.
pub(super) fn report(out: &mut String, samples: &[Vec<UploadResult>; 2]) {
    let col = |v: &[UploadResult], f: fn(&UploadResult) -> f64| median(v.iter().map(f).collect());
    let _ = writeln!(
        out,
        "| workload | tandem MB/s | hyper MB/s | tandem server CPU s | hyper server CPU s | \
         tandem peak RSS MiB | hyper peak RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    let _ = writeln!(
        out,
        "| {ROW} | {:.0} | {:.0} | {:.2} | {:.2} | {:.1} | {:.1} |\n",
        col(&samples[0], |r| r.mb_per_sec),
        col(&samples[1], |r| r.mb_per_sec),
        col(&samples[0], |r| r.cpu_secs),
        col(&samples[1], |r| r.cpu_secs),
        col(&samples[0], |r| r.peak_rss_mib),
        col(&samples[1], |r| r.peak_rss_mib),
    );
    let rounds = |v: &[UploadResult], f: fn(&UploadResult) -> f64| Some(v.iter().map(f).collect());
    paired_ratio(
        out,
        &format!("{ROW}: tandem MB/s ÷ hyper MB/s"),
        rounds(&samples[0], |r| r.mb_per_sec),
        rounds(&samples[1], |r| r.mb_per_sec),
        Target::AtLeast(1.0),
    );
    paired_ratio(
        out,
        &format!("{ROW}: tandem server CPU ÷ hyper's"),
        rounds(&samples[0], |r| r.cpu_secs),
        rounds(&samples[1], |r| r.cpu_secs),
        Target::AtMost(1.0),
    );
    // Flat: the most the server held at once stays a small, fixed amount, whatever the size.
    let peak = samples[0].iter().map(|r| r.peak_rss_mib).fold(0.0, f64::max);
    let share = peak / (load::to_f64(UPLOAD_SIZE) / f64::from(1 << 20));
    let verdict = if share <= FLAT_SHARE { "met" } else { "MISSED" };
    let _ = writeln!(
        out,
        "- {ROW}: tandem's highest peak RSS {peak:.1} MiB, {:.2}% of the body (target ≤ {}%: {verdict})",
        share * 100.0,
        FLAT_SHARE * 100.0
    );
}

/// Pins the calling thread to [`LOAD_CORE`], as wrk is, by its thread id (which
/// `/proc/thread-self` links to as `PID/task/TID`).
fn pin_this_thread() -> Result {
    let link = fs::read_link("/proc/thread-self")
        .map_err(|e| format!("cannot read /proc/thread-self: {e}"))?;
    let tid = link.file_name().and_then(|t| t.to_str()).ok_or("no thread id")?.to_owned();
    Cmd::new("taskset").args(["-p", "-c", LOAD_CORE, &tid]).capture().map(drop)
}
