//! `cargo xtask bench tls-count`: Tandem's and hyper's HTTPS servers' instructions per
//! request under callgrind, keep-alive and with a new connection (a full handshake) per
//! request: the figures `bench tls` times, without the drift of a busy machine.
//!
//! Each server runs under callgrind on core 0 with wrk on core 1, as in `bench tls`. After a
//! warm-up, wrk runs twice, for a short and a long while, each time opening its 64
//! connections anew; callgrind dumps its counters after each run (a dump holds what ran
//! since the last one). The figure is the difference of the two dumps over
//! the difference of the requests, so the 64 handshakes each run opens (about a million
//! instructions each under callgrind), startup and warm-up cancel out, where dividing one
//! run's total by its requests would let them skew keep-alive by thousands a request.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use super::load::{self, Server, to_f64};
use super::server;
use super::tls::{build, path_str, prepare};
use crate::{Cmd, Result};

/// The runs' lengths, in seconds (under callgrind a server runs about 50 times slower).
const WARM_SECS: u64 = 1;
const SHORT_SECS: u64 = 2;
const LONG_SECS: u64 = 6;
const OUT_DIR: &str = "target/callgrind";

pub(super) fn run() -> Result {
    crate::peers::apt_install(&["valgrind"])?;
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
        "## cargo xtask bench tls-count: server instructions per request (callgrind), wrk -t1 -c64 over HTTPS\n\n\
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
    for (secs, dump) in [WARM_SECS, SHORT_SECS, LONG_SECS].into_iter().zip(&dumps) {
        let requests = wrk(&server, secs, close)?;
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

/// wrk against `server` for `secs`; the requests it completed.
fn wrk(server: &Server, secs: u64, close: bool) -> Result<u64> {
    let mut cmd = Cmd::new("taskset")
        .args(["-c", load::LOAD_CORE, "wrk", "-t1", "-c64"])
        .arg(format!("-d{secs}s"));
    if close {
        cmd = cmd.args(["-H", "Connection: close"]);
    }
    let text = cmd.arg(format!("https://127.0.0.1:{}/plaintext", server.port())).capture()?;
    let wrk = load::parse_wrk(&text).ok_or_else(|| format!("cannot parse wrk output:\n{text}"))?;
    Ok(wrk.requests)
}
