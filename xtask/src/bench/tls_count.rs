//! `cargo xtask bench tls-count`: Tandem's and hyper's HTTPS servers' instructions per
//! request under callgrind: keep-alive, a new connection (a full handshake) per request, and
//! a new connection per request resuming a session; the figures `bench tls` times, without
//! the drift of a busy machine.
//!
//! Each server runs under callgrind on core 0 with the load on core 1, as in `bench tls`.
//! After a warm-up, the load runs twice, a short and a long one, each a fixed number of
//! requests on connections it opens anew; callgrind dumps its counters after each run (a
//! dump holds what ran since the last one). The figure is the difference of the two dumps
//! over the difference of the requests, so startup, warm-up and whatever each run costs
//! once cancel out. That needs both runs to do the same work whatever the machine's speed,
//! so every load is a fixed count, never a time: a timed run ends with up to 64 handshakes
//! half done, about a million instructions each, which do not cancel.
//!
//! - keep-alive: h2load over HTTP/1.1, 64 connections (their 64 handshakes cancel out);
//! - new connections: curl, 64 transfers at a time, each on a connection of its own
//!   (`Connection: close`) with a full handshake (`--no-sessionid`), the concurrency of wrk's
//!   `Connection: close` load in `bench tls` (whose handshakes, though, resume: the resumed
//!   column counts those);
//! - sequential handshakes: the same one at a time, as `openssl s_time -new` in `bench tls`;
//! - resumed: curl, one transfer at a time, each connection resuming the session of the one
//!   before (curl's session cache), so all but a run's first resume, as `openssl s_time
//!   -reuse` in `bench tls`.
//!
//! curl offers only `http/1.1` through ALPN (`--http1.1`), as wrk does, and Tandem would
//! otherwise settle on `h2`.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use super::load::{self, Server, to_f64};
use super::server;
use super::tls::{build, path_str, prepare};
use crate::{Cmd, Result};

/// The loads, in column order.
#[derive(Clone, Copy)]
enum Load {
    KeepAlive,
    NewConnections,
    Sequential,
    Resumed,
}

const LOADS: [Load; 4] = [Load::KeepAlive, Load::NewConnections, Load::Sequential, Load::Resumed];

impl Load {
    fn name(self) -> &'static str {
        match self {
            Load::KeepAlive => "keep-alive",
            Load::NewConnections => "new connections",
            Load::Sequential => "sequential handshakes",
            Load::Resumed => "resumed",
        }
    }

    /// The warm-up's, the short run's and the long run's requests. Under callgrind a
    /// server runs about 50 times slower: a full handshake takes some 10 ms there.
    fn requests(self) -> [u64; 3] {
        match self {
            Load::KeepAlive => [2_000, 4_000, 12_000],
            Load::NewConnections => [128, 192, 576],
            Load::Sequential => [32, 64, 256],
            Load::Resumed => [32, 64, 256],
        }
    }
}

/// Transfers curl runs at once for `Load::NewConnections`, as wrk's `-c64`.
const NEW_CONNECTIONS_AT_ONCE: &str = "64";
const OUT_DIR: &str = "target/callgrind";

pub(super) fn run() -> Result {
    crate::peers::apt_install(&["valgrind"])?;
    crate::peers::ensure_commands(&[("nghttp2-client", "h2load"), ("curl", "curl")])?;
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
        let mut row = [0.0; LOADS.len()];
        for (cell, load) in row.iter_mut().zip(LOADS) {
            *cell = per_request(name, exe, &extra, load)?;
        }
        rows.push((*name, row));
    }
    let mut out = String::from(
        "## cargo xtask bench tls-count: server instructions per request (callgrind) over HTTPS, fixed request counts (keep-alive: h2load --h1 -c64; new connections: curl, 64 at a time, no resumption; sequential handshakes: the same one at a time; resumed: curl, one at a time)\n\n\
         | server | keep-alive | new connection per request | sequential handshake per request | resumed connection per request |\n|---|---:|---:|---:|---:|\n",
    );
    for (name, [keep_alive, new_conn, sequential, resumed]) in &rows {
        let _ = writeln!(
            out,
            "| {name} | {keep_alive:.0} | {new_conn:.0} | {sequential:.0} | {resumed:.0} |"
        );
    }
    if let [(_, a), (_, b)] = &rows[..] {
        let _ = writeln!(
            out,
            "\n- tandem ÷ hyper: keep-alive {:.3}, new connections {:.3}, sequential handshakes \
             {:.3}, resumed {:.3}",
            a[0] / b[0],
            a[1] / b[1],
            a[2] / b[2],
            a[3] / b[3]
        );
    }
    println!("\n{out}");
    server::save("tls-count", &out);
    Ok(())
}

/// One server's marginal instructions per request under `load`.
fn per_request(
    name: &'static str,
    exe: &std::path::Path,
    extra: &[&str],
    load: Load,
) -> Result<f64> {
    let kind = load.name().replace(' ', "-");
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
    for (dump, requests) in dumps.iter().zip(load.requests()) {
        match load {
            Load::KeepAlive => h2load(&server, requests)?,
            Load::NewConnections => curl(&server, requests, Curl::NewAtOnce)?,
            Load::Sequential => curl(&server, requests, Curl::NewOneAtATime)?,
            Load::Resumed => curl(&server, requests, Curl::Resuming)?,
        }
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
    let per_request = (long.0 - short.0) / (long.1 - short.1);
    println!("  {name} {}: {per_request:.0} instructions a request", load.name());
    Ok(per_request)
}

/// How curl opens its connections.
#[derive(Clone, Copy)]
enum Curl {
    /// 64 at a time, with no session resumption.
    NewAtOnce,
    /// One at a time, with no session resumption.
    NewOneAtATime,
    /// One at a time, each resuming the last connection's session.
    Resuming,
}

/// `requests` GETs against `server` with curl, each on a new connection opened as `how`
/// says. All of them must succeed, each on a connection of its own.
fn curl(server: &Server, requests: u64, how: Curl) -> Result<()> {
    // The fragment, which curl never sends, only makes the URLs many (curl's globbing): each
    // request is the same `GET /plaintext`.
    let url = format!("https://127.0.0.1:{}/plaintext#[1-{requests}]", server.port());
    let cmd = Cmd::new("taskset")
        .args(["-c", load::LOAD_CORE, "curl", "--silent", "--show-error", "--insecure"])
        .args(["--http1.1", "--header", "Connection: close"])
        .args(["--write-out", "\n%{http_code} %{num_connects}\n"]);
    let cmd = match how {
        Curl::Resuming => cmd,
        Curl::NewOneAtATime => cmd.arg("--no-sessionid"),
        Curl::NewAtOnce => cmd
            .args(["--no-sessionid", "--parallel", "--parallel-immediate"])
            .args(["--parallel-max", NEW_CONNECTIONS_AT_ONCE]),
    };
    let text = cmd.arg(url).capture()?;
    let fresh = text.lines().filter(|line| *line == "200 1").count();
    if u64::try_from(fresh).ok() != Some(requests) {
        return Err(format!(
            "{}: {fresh} of {requests} requests answered 200 on a connection of their own",
            server.name()
        ));
    }
    Ok(())
}

/// `requests` keep-alive HTTP/1.1 requests over 64 connections against `server` (h2load
/// with `--h1`); all of them must succeed.
fn h2load(server: &Server, requests: u64) -> Result<()> {
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
    Ok(())
}
