//! `cargo xtask bench tls-count`: Tandem's and hyper's HTTPS servers' instructions per
//! request under callgrind, keep-alive and with a new connection (a full handshake) per
//! request: the figures `bench tls` times, without the drift of a busy machine.
//!
//! Each server runs under callgrind on core 0 with the load on core 1, as in `bench tls`.
//! After a warm-up, the load runs twice, a short and a long one, each opening its 64
//! connections anew; callgrind dumps its counters after each run (a dump holds what ran
//! since the last one). The figure is the difference of the two dumps over the difference
//! of the requests, so startup, warm-up and (for keep-alive) the 64 handshakes each run
//! opens, about a million instructions each, cancel out. That needs both runs to open the
//! same connections whatever the machine's speed, so keep-alive runs a fixed number of
//! requests (h2load over HTTP/1.1) rather than for a time: a timed run under callgrind on
//! a busy machine spends most of a short run in handshakes, and how many it completes
//! differs from run to run. With a connection per request, handshakes are the requests,
//! and wrk runs for a time.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use super::load::{self, Server, to_f64};
use super::server;
use super::tls::{build, path_str, prepare};
use crate::{Cmd, Result};

/// The runs' lengths with a connection per request, in seconds (under callgrind a server
/// runs about 50 times slower).
const WARM_SECS: u64 = 1;
const SHORT_SECS: u64 = 2;
const LONG_SECS: u64 = 6;
/// The keep-alive runs' lengths, in requests over 64 connections.
const KEEP_ALIVE_REQUESTS: [u64; 3] = [2_000, 4_000, 12_000];
const OUT_DIR: &str = "target/callgrind";

pub(super) fn run() -> Result {
    crate::peers::apt_install(&["valgrind"])?;
    crate::peers::ensure_commands(&[("nghttp2-client", "h2load")])?;
    server::check_machine()?;
    let scratch = prepare()?;
    // nginx is left out: its start script execs nginx, which callgrind would not follow.
    let exes: Vec<_> = build(&scratch.0)?.into_iter().filter(|(n, _)| *n != "nginx").collect();
    let (cert, key) = (scratch.0.join("cert.pem"), scratch.0.join("key.pem"));
    let tls_args = ["--tls-cert", path_str(&cert)?, "--tls-key", path_str(&key)?];
    fs::create_dir_all(OUT_DIR).map_err(|e| format!("creating {OUT_DIR}: {e}"))?;
    let mut rows = Vec::new();
    for (name, exe) in &exes {
        let extra: Vec<&str> = match *name {
            "tandem" => [&["--workers", "1"][..], &tls_args].concat(),
            _ => tls_args.to_vec(),
        };
        let keep_alive = per_request(name, exe, &extra, false)?;
        let new_conn = per_request(name, exe, &extra, true)?;
        rows.push((*name, keep_alive, new_conn));
    }
    let mut out = String::from(
        "## cargo xtask bench tls-count: server instructions per request (callgrind), 64 connections over HTTPS (keep-alive: h2load --h1, fixed counts; a connection per request: wrk)\n\n\
         | server | keep-alive | new connection per request |\n|---|---:|---:|\n",
    );
    for (name, keep_alive, new_conn) in &rows {
        let _ = writeln!(out, "| {name} | {keep_alive:.0} | {new_conn:.0} |");
    }
    if let [(_, a, b), (_, c, d)] = rows[..] {
        let _ = writeln!(
            out,
            "\n- tandem ÷ hyper: keep-alive {:.2}, new connections {:.2}",
            a / c,
            b / d
        );
    }
    println!("\n{out}");
    server::save("tls-count", &out);
    Ok(())
}

/// One server's marginal instructions per request, keep-alive or closing each connection.
fn per_request(
    name: &'static str,
    exe: &std::path::Path,
    extra: &[&str],
    close: bool,
) -> Result<f64> {
    let kind = if close { "close" } else { "keep-alive" };
    let out = PathBuf::from(OUT_DIR).join(format!("tls-{name}-{kind}.out"));
    let dumps = [1, 2, 3].map(|n| out.with_extension(format!("out.{n}")));
    for dump in &dumps {
        let _ = fs::remove_file(dump);
    }
    let out_arg = format!("--callgrind-out-file={}", out.display());
    let wrapper = ["valgrind", "--tool=callgrind", &out_arg];
    let server = Server::start_under(name, &wrapper, exe, extra)?;
    let pid = server.pid().to_string();
    let mut runs = Vec::new();
    for (run, dump) in dumps.iter().enumerate() {
        let requests = if close {
            wrk(&server, [WARM_SECS, SHORT_SECS, LONG_SECS][run])?
        } else {
            h2load(&server, KEEP_ALIVE_REQUESTS[run])?
        };
        Cmd::new("callgrind_control").args(["--dump", &pid]).run()?;
        let text =
            fs::read_to_string(dump).map_err(|e| format!("reading {}: {e}", dump.display()))?;
        let total = text
            .lines()
            .find_map(|l| l.strip_prefix("totals:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .ok_or_else(|| format!("no totals in {}", dump.display()))?;
        runs.push((to_f64(total), to_f64(requests)));
    }
    drop(server);
    // The warm-up's dump also holds startup; only the two after it are compared.
    let (short, long) = (runs[1], runs[2]);
    if long.1 <= short.1 {
        return Err(format!(
            "{name} {kind}: the long run completed no more requests than the short one"
        ));
    }
    let per_request = (long.0 - short.0) / (long.1 - short.1);
    println!("  {name} {kind}: {per_request:.0} instructions a request");
    Ok(per_request)
}

/// wrk against `server` for `secs`, a connection per request; the requests it completed.
fn wrk(server: &Server, secs: u64) -> Result<u64> {
    let text = Cmd::new("taskset")
        .args(["-c", load::LOAD_CORE, "wrk", "-t1", "-c64"])
        .arg(format!("-d{secs}s"))
        .args(["-H", "Connection: close"])
        .arg(format!("https://127.0.0.1:{}/plaintext", server.port()))
        .capture()?;
    let wrk = load::parse_wrk(&text).ok_or_else(|| format!("cannot parse wrk output:\n{text}"))?;
    Ok(wrk.requests)
}

/// `requests` keep-alive HTTP/1.1 requests over 64 connections against `server` (h2load
/// with `--h1`); the requests that succeeded, all of them or an error.
fn h2load(server: &Server, requests: u64) -> Result<u64> {
    let text = Cmd::new("taskset")
        .args(["-c", load::LOAD_CORE, "h2load", "--h1", "-c64"])
        .arg(format!("-n{requests}"))
        .arg(format!("https://127.0.0.1:{}/plaintext", server.port()))
        .capture()?;
    let (succeeded, failed) = super::h2::parse_h2load(&text)
        .ok_or_else(|| format!("cannot parse h2load output:\n{text}"))?;
    if succeeded != requests || failed != 0 {
        return Err(format!("{}: {succeeded} of {requests} succeeded:\n{text}", server.name()));
    }
    Ok(succeeded)
}
