//! `cargo xtask bench tls [--secs N] [--rounds R] [--only LOADS]`: Tandem's HTTPS server
//! against hyper behind tokio-rustls (the same rustls, ring provider and session cache), with
//! nginx (Debian's, on OpenSSL) as a reference.
//!
//! Each round starts the three servers pinned to core 0, one thread or process each, with
//! one ECDSA P-256 certificate made by `openssl req` for the run, and runs each load against
//! each in turn from core 1, reading the server's CPU time around it:
//!
//! - keep-alive: wrk, 64 connections, `GET /plaintext` over HTTPS;
//! - new connections: the same with `Connection: close`, so every request opens a connection;
//!   wrk keeps each connection's TLS session and offers it when it reconnects, so all but the
//!   first 64 of these handshakes resume (TLS 1.3 PSK with an X25519 exchange, from the
//!   servers' tickets);
//! - sequential handshakes: `openssl s_time -new`, one connection at a time, no resumption;
//! - resumed: `openssl s_time -reuse`, every connection resuming the first one's session
//!   (the share actually resumed, from `s_time`'s `r` marks, is printed beside it).
//!
//! `cargo xtask bench tls-client [--secs N] [--rounds R]` is the client side: Tandem's
//! `ClientSession` (`examples/loadtest.rs`) against reqwest on a rustls `ClientConfig` with
//! the same ring provider (`benches/peers`' `reqwest_client`), both trusting only the run's
//! certificate, fetching `/plaintext` over HTTPS from nginx on core 0: one loop on one
//! connection, 32 concurrent loops, and 32 loops each opening a new connection per request
//! (`Connection: close`; both clients may resume the session, as nginx caches it).
//!
//! `--only` takes a comma-separated list of the loads to run (`keep-alive`, `new`, `sequential`,
//! `resumed`); the others print as 0 and get no ratio.
//!
//! nginx speaks TLS 1.3 as the rustls servers do: Debian's nginx 1.22 offers at most TLS 1.2
//! unless told (1.23.4 made 1.3 a default), and a TLS 1.2 session resumed by its ID makes no key
//! exchange at all: a different handshake from the others'.
//!
//! The table shows the medians of the rounds; the ratios set Tandem against hyper, each the
//! median of the rounds' own ratios, as in `bench server`: the machine drifts between rounds
//! more than the servers differ.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::client::{self as http_client, Opts, Sample, parse_rounds, parse_rounds_only};
use super::load::{self, Server, to_f64};
use super::server::{self, PEERS_MANIFEST, Target, find_exe, median, paired_ratio};
use crate::{Cmd, Result};

const USAGE: &str =
    "cargo xtask bench tls [--secs N] [--rounds R] [--only keep-alive,new,sequential,resumed]";
const CLIENT_USAGE: &str = "cargo xtask bench tls-client [--secs N] [--rounds R]";

/// The client loads: concurrent loops, and whether each request opens a new connection.
const CLIENT_LOADS: [(usize, bool, &str); 3] = [
    (1, false, "sequential (1 connection)"),
    (32, false, "32 concurrent loops"),
    (32, true, "32 loops, a new connection per request"),
];
/// Tandem's requests/s over reqwest's that each client load must reach (the 1.2×
/// at 32 concurrent and for new connections, parity sequentially).
const CLIENT_TARGETS: [f64; 3] = [1.0, 1.2, 1.2];

/// The servers compared, in the order they run and print.
const SERVERS: [&str; 3] = ["tandem", "hyper", "nginx"];

/// nginx in the foreground as one process (its CPU time is then the server's), with the
/// server block (`@PORT@` and `@DIR@` filled in at start) of the bench that writes it.
const NGINX_CONF: &str = "\
daemon off;
master_process off;
worker_processes 1;
error_log stderr error;
pid @DIR@/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path @DIR@/body;
    proxy_temp_path @DIR@/proxy;
    fastcgi_temp_path @DIR@/fastcgi;
    uwsgi_temp_path @DIR@/uwsgi;
    scgi_temp_path @DIR@/scgi;
    keepalive_requests 10000000;
    server {
@SERVER@
    }
}
";

/// Serving `/plaintext` as the others do, with an OpenSSL session cache so `-reuse` can
/// resume.
const NGINX_TLS_SERVER: &str = "\
        listen 127.0.0.1:@PORT@ ssl;
        ssl_session_cache builtin:20480;
        ssl_session_tickets off;
        ssl_certificate @DIR@/cert.pem;
        ssl_certificate_key @DIR@/key.pem;
        location = /plaintext { default_type text/plain; return 200 'Hello, World!'; }";

/// What `bench tls` adds to [`NGINX_TLS_SERVER`]: TLS 1.3 too (see the module comment).
const NGINX_TLS13: &str = "
        ssl_protocols TLSv1.2 TLSv1.3;";

/// Starts nginx as `Server::start` starts the others (`EXE --port P`): it writes the
/// config with the port and execs nginx, so the pid stays the server's.
const NGINX_SH: &str = "\
#!/bin/sh
set -e
sed \"s/@PORT@/$2/\" '@DIR@/nginx.conf.in' > '@DIR@/nginx.conf'
exec nginx -p '@DIR@' -c '@DIR@/nginx.conf'
";

/// The four loads, in column order.
#[derive(Clone, Copy)]
enum Load {
    KeepAlive,
    NewConns,
    Sequential,
    Resumed,
}

const LOADS: [Load; 4] = [Load::KeepAlive, Load::NewConns, Load::Sequential, Load::Resumed];

/// The loads by their names for `--only`, with their columns in [`LOADS`].
const LOAD_NAMES: [(&str, usize); 4] =
    [("keep-alive", 0), ("new", 1), ("sequential", 2), ("resumed", 3)];

/// What one run does: the rounds' options, and which of [`LOADS`] it runs (all unless
/// `--only` says).
#[derive(Debug)]
struct TlsOpts {
    rounds: Opts,
    runs: [bool; 4],
}

/// `--secs N` (default 5), `--rounds R` (default 3) and `--only LOADS` (default all).
fn parse_opts(args: &[String]) -> Result<TlsOpts> {
    let (rounds, cols) = parse_rounds_only(args, &LOAD_NAMES, "load", USAGE)?;
    let mut runs = [false; 4];
    for col in cols {
        runs[col] = true;
    }
    Ok(TlsOpts { rounds, runs })
}

impl Load {
    fn name(self) -> &'static str {
        match self {
            Load::KeepAlive => "keep-alive",
            Load::NewConns => "new connections",
            Load::Sequential => "sequential handshakes",
            Load::Resumed => "resumed",
        }
    }
}

/// What one load against one server measured.
#[derive(Clone, Copy, Debug, Default)]
struct Measure {
    per_sec: f64,
    cpu_us_each: f64,
    /// For `Resumed`: the share of connections `s_time` marked as resumed.
    resumed: f64,
    /// The share of the load core's time it was busy (anything's, not only the client's): near
    /// 100% the client's core sets the rate, whatever the server could do faster.
    load_core_busy: f64,
}

/// The run's scratch folder: certificate, nginx's files. Removed on drop.
pub(crate) struct Scratch(pub(super) PathBuf);

impl Scratch {
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(super) fn run(args: &[String]) -> Result {
    let TlsOpts { rounds: opts, runs } = parse_opts(args)?;
    server::check_machine()?;
    for tool in ["openssl", "nginx"] {
        if !Cmd::new("sh").args(["-c", &format!("command -v {tool}")]).probe() {
            crate::peers::apt_install(&[tool])?;
        }
    }
    let scratch = prepare_serving(&format!("{NGINX_TLS_SERVER}{NGINX_TLS13}"))?;
    let exes = build(&scratch.0)?;
    let clk_tck = load::clk_tck();
    let cert = scratch.0.join("cert.pem");
    let key = scratch.0.join("key.pem");
    let tls_args = ["--tls-cert", path_str(&cert)?, "--tls-key", path_str(&key)?];

    let mut samples: Vec<Vec<[Measure; 4]>> = SERVERS.iter().map(|_| Vec::new()).collect();
    for round in 1..=opts.rounds {
        println!("\n==> bench tls: round {round}/{}", opts.rounds);
        let mut started = Vec::new();
        for (name, exe) in &exes {
            let extra: Vec<&str> = match *name {
                "tandem" => [&["--workers", "1"][..], &tls_args].concat(),
                "hyper" => tls_args.to_vec(),
                _ => Vec::new(),
            };
            started.push(Server::start(name, exe, &extra)?);
        }
        let mut order: Vec<usize> = (0..started.len()).collect();
        order.rotate_left((round - 1) % started.len());
        let mut round_results = vec![[Measure::default(); 4]; started.len()];
        for (col, load) in LOADS.into_iter().enumerate().filter(|&(col, _)| runs[col]) {
            for &i in &order {
                server::warn_if_busy();
                println!("{}: {}", started[i].name(), load.name());
                round_results[i][col] = measure(&started[i], load, opts.secs, clk_tck)?;
            }
        }
        for (i, result) in round_results.into_iter().enumerate() {
            samples[i].push(result);
        }
    }
    let report = report(&samples, &opts, runs);
    println!("\n{report}");
    server::save("tls", &report);
    Ok(())
}

/// The scratch folder with a certificate for `localhost` and nginx's start script.
pub(crate) fn prepare() -> Result<Scratch> {
    prepare_serving(NGINX_TLS_SERVER)
}

/// [`prepare`] with `server` as nginx's server block.
fn prepare_serving(server: &str) -> Result<Scratch> {
    let dir = std::env::temp_dir().join(format!("tandem-bench-tls-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let scratch = Scratch(dir);
    let dir = &scratch.0;
    Cmd::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // Not a CA (`req -x509` makes one by default), so the clients of `tls-client`, which
        // verify, take it as a server's certificate: webpki refuses a CA as an end entity.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .capture()?;
    write_nginx(dir, server)?;
    Ok(scratch)
}

/// Writes `nginx.sh` into `dir`, which starts nginx with `server` as its one server block:
/// the scratch folder's `nginx.sh` is then started like any other server under test.
pub(super) fn write_nginx(dir: &Path, server: &str) -> Result {
    let dir_str = path_str(dir)?;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        fs::write(&path, text.replace("@SERVER@", server).replace("@DIR@", dir_str))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write("nginx.conf.in", NGINX_CONF)?;
    write("nginx.sh", NGINX_SH)?;
    Cmd::new("chmod").arg("+x").arg(dir.join("nginx.sh")).capture()?;
    Ok(())
}

pub(super) fn build(scratch: &Path) -> Result<Vec<(&'static str, PathBuf)>> {
    let mut built = server::cargo_build(&["--example", "bench_server"])?;
    built.extend(server::cargo_build(&[
        "--manifest-path",
        PEERS_MANIFEST,
        "--bin",
        "hyper_tls_server",
    ])?);
    Ok(vec![
        ("tandem", find_exe(&built, "bench_server")?),
        ("hyper", find_exe(&built, "hyper_tls_server")?),
        ("nginx", scratch.join("nginx.sh")),
    ])
}

pub(crate) fn path_str(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| format!("{} is not UTF-8", path.display()))
}

/// Runs `load` against `server` for `secs` from the load core, with the server's CPU time
/// read around it.
fn measure(server: &Server, load: Load, secs: u64, clk_tck: u64) -> Result<Measure> {
    let url = format!("https://127.0.0.1:{}/plaintext", server.port());
    let before = server.cpu_ticks()?;
    let load_cpu = format!("cpu{}", load::LOAD_CORE);
    let core_before = server::cpu_jiffies(&load_cpu);
    let started = Instant::now();
    let (count, per_sec, resumed) = match load {
        Load::KeepAlive | Load::NewConns => {
            let mut cmd = Cmd::new("taskset")
                .args(["-c", load::LOAD_CORE, "wrk", "-t1", "-c64"])
                .arg(format!("-d{secs}s"));
            if let Load::NewConns = load {
                cmd = cmd.args(["-H", "Connection: close"]);
            }
            let text = cmd.arg(&url).capture()?;
            if let Some(line) = text.lines().find(|l| l.contains("Non-2xx or 3xx responses")) {
                return Err(format!("{}: errors under load: {}", server.name(), line.trim()));
            }
            let wrk = load::parse_wrk(&text)
                .ok_or_else(|| format!("cannot parse wrk output:\n{text}"))?;
            (wrk.requests, wrk.req_per_sec, 0.0)
        }
        Load::Sequential | Load::Resumed => {
            let connect = format!("127.0.0.1:{}", server.port());
            let reuse = if let Load::Resumed = load { "-reuse" } else { "-new" };
            let text = Cmd::new("taskset")
                .args(["-c", load::LOAD_CORE, "openssl", "s_time", "-connect", &connect])
                .args(["-www", "/plaintext", "-time", &secs.to_string(), reuse])
                .capture()?;
            let elapsed = started.elapsed().as_secs_f64();
            let (count, resumed) = parse_s_time(&text)
                .ok_or_else(|| format!("cannot parse s_time output:\n{text}"))?;
            (count, to_f64(count) / elapsed, resumed)
        }
    };
    let after = server.cpu_ticks()?;
    let load_core_busy = match (core_before, server::cpu_jiffies(&load_cpu)) {
        (Some(a), Some(b)) if b.1 > a.1 => to_f64(b.0.saturating_sub(a.0)) / to_f64(b.1 - a.1),
        _ => 0.0,
    };
    if count == 0 {
        return Err(format!("{}: {} completed nothing", server.name(), load.name()));
    }
    let cpu_secs = to_f64(after.saturating_sub(before)) / to_f64(clk_tck);
    let cpu_us_each = cpu_secs * 1e6 / to_f64(count);
    let measure = Measure { per_sec, cpu_us_each, resumed, load_core_busy };
    println!(
        "  {per_sec:.0}/s, {count} in all, server cpu {cpu_secs:.2} s, {:.1} µs each, load core {:.0}% busy{}",
        measure.cpu_us_each,
        load_core_busy * 100.0,
        if let Load::Resumed = load {
            format!(", {:.0}% resumed", resumed * 100.0)
        } else {
            String::new()
        }
    );
    Ok(measure)
}

/// The connection count from `s_time`'s `N connections in Xs; ...` line, and the share of
/// its progress marks that say the session was resumed (`r`; a full handshake prints the
/// protocol's digit, or `*`).
fn parse_s_time(text: &str) -> Option<(u64, f64)> {
    let line = text.lines().rev().find(|l| l.contains(" connections in ") && l.contains(';'))?;
    let count: u64 = line.split_whitespace().next()?.parse().ok()?;
    let marks: String =
        text.lines().filter(|l| !l.is_empty() && l.chars().all(|c| "r123*t".contains(c))).collect();
    let resumed = marks.chars().filter(|c| *c == 'r').count();
    let share =
        if marks.is_empty() { 0.0 } else { to_f64(resumed as u64) / to_f64(marks.len() as u64) };
    Some((count, share))
}

fn report(samples: &[Vec<[Measure; 4]>], opts: &Opts, runs: [bool; 4]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## cargo xtask bench tls: medians of {} round(s), {} s per load, clients on core 1, server on core 0\n",
        opts.rounds, opts.secs
    );
    let _ = writeln!(
        out,
        "| server | keep-alive req/s | µs/req | new conns/s (wrk -c64, resumed) | µs/conn | sequential handshakes/s | µs/conn | resumed/s | µs/conn | resumed |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let med = |i: usize, col: usize, f: fn(&Measure) -> f64| {
        median(samples[i].iter().map(|r| f(&r[col])).collect())
    };
    for (i, name) in SERVERS.iter().enumerate() {
        let _ = write!(out, "| {name} ");
        for col in 0..LOADS.len() {
            let _ = write!(
                out,
                "| {:.0} | {:.1} ",
                med(i, col, |m| m.per_sec),
                med(i, col, |m| m.cpu_us_each)
            );
        }
        let _ = writeln!(out, "| {:.0}% |", med(i, 3, |m| m.resumed) * 100.0);
    }
    // What bounds each row: the server core's busy share is its rate times its time each; the
    // load core's is read around the load.
    let _ = writeln!(
        out,
        "\n| busy, server core / load core | keep-alive | new conns | sequential | resumed |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for (i, name) in SERVERS.iter().enumerate() {
        let _ = write!(out, "| {name} ");
        for col in 0..LOADS.len() {
            let server_busy = med(i, col, |m| m.per_sec * m.cpu_us_each / 1e4);
            let _ = write!(
                out,
                "| {server_busy:.0}% / {:.0}% ",
                med(i, col, |m| m.load_core_busy * 100.0)
            );
        }
        let _ = writeln!(out, "|");
    }
    out.push('\n');
    let rounds = |i: usize, col: usize, f: fn(&Measure) -> f64| {
        Some(samples[i].iter().map(|r| f(&r[col])).collect::<Vec<f64>>())
    };
    for (col, load) in LOADS.into_iter().enumerate().filter(|&(col, _)| runs[col]) {
        paired_ratio(
            &mut out,
            &format!("tandem ÷ hyper, {} per second", load.name()),
            rounds(0, col, |m| m.per_sec),
            rounds(1, col, |m| m.per_sec),
            Target::AtLeast(1.0),
        );
        paired_ratio(
            &mut out,
            &format!("tandem ÷ hyper, {} server µs each", load.name()),
            rounds(0, col, |m| m.cpu_us_each),
            rounds(1, col, |m| m.cpu_us_each),
            Target::AtMost(1.0),
        );
    }
    out
}

/// `cargo xtask bench tls-client`: see the module's documentation.
pub(super) fn run_client(args: &[String]) -> Result {
    let opts = parse_rounds(args, CLIENT_USAGE)?;
    http_client::check_machine()?;
    for tool in ["openssl", "nginx"] {
        if !Cmd::new("sh").args(["-c", &format!("command -v {tool}")]).probe() {
            crate::peers::apt_install(&[tool])?;
        }
    }
    let scratch = prepare()?;
    let mut built = server::cargo_build(&["--example", "loadtest"])?;
    built.extend(server::cargo_build(&[
        "--manifest-path",
        PEERS_MANIFEST,
        "--bin",
        "reqwest_client",
    ])?);
    let clients = [find_exe(&built, "loadtest")?, find_exe(&built, "reqwest_client")?];
    let ca = scratch.0.join("cert.pem");
    let ca = path_str(&ca)?;
    // samples[load][client], one per round.
    let mut samples: [[Vec<Sample>; 2]; 3] = Default::default();
    for round in 1..=opts.rounds {
        println!("\n==> bench tls-client: round {round}/{}", opts.rounds);
        server::warn_if_busy();
        let nginx = Server::start("nginx", &scratch.0.join("nginx.sh"), &[])?;
        // An IP address the certificate names: no name to resolve, and no IPv6 attempt
        // first, for either client.
        let url = format!("https://127.0.0.1:{}/plaintext", nginx.port());
        for (load, &(concurrency, close, name)) in CLIENT_LOADS.iter().enumerate() {
            let mut order = [0, 1];
            if round % 2 == 0 {
                order.reverse();
            }
            for client in order {
                let extra: Vec<&str> = match (client, close) {
                    (0, false) => vec!["--cacert", ca],
                    (0, true) => vec!["--cacert", ca, "-H", "Connection: close"],
                    (_, false) => vec!["--cacert", ca],
                    (_, true) => vec!["--cacert", ca, "--close"],
                };
                let sample = http_client::run_client(
                    &clients[client],
                    &url,
                    opts.secs,
                    concurrency,
                    &extra,
                    "requests",
                )?;
                println!(
                    "  {} {name}: {:.0} req/s, client cpu {:.1} µs/req",
                    ["tandem", "reqwest"][client],
                    sample.per_sec,
                    sample.cpu_us_each
                );
                samples[load][client].push(sample);
            }
        }
    }
    let report = client_report(&samples, &opts);
    println!("\n{report}");
    server::save("tls-client", &report);
    Ok(())
}

fn client_report(samples: &[[Vec<Sample>; 2]; 3], opts: &Opts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## cargo xtask bench tls-client: medians of {} round(s), {} s per load, GET /plaintext over HTTPS from nginx on core 0, each client on core 1\n",
        opts.rounds, opts.secs
    );
    let _ = writeln!(
        out,
        "| load | tandem req/s | reqwest req/s | tandem client CPU µs/req | reqwest client CPU µs/req |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for (load, &(_, _, name)) in CLIENT_LOADS.iter().enumerate() {
        let col = |client: usize, f: fn(&Sample) -> f64| {
            median(samples[load][client].iter().map(f).collect())
        };
        let _ = writeln!(
            out,
            "| {name} | {:.0} | {:.0} | {:.1} | {:.1} |",
            col(0, |s| s.per_sec),
            col(1, |s| s.per_sec),
            col(0, |s| s.cpu_us_each),
            col(1, |s| s.cpu_us_each),
        );
    }
    out.push('\n');
    for (load, &(_, _, name)) in CLIENT_LOADS.iter().enumerate() {
        let rounds = |client: usize| {
            Some(samples[load][client].iter().map(|s| s.per_sec).collect::<Vec<f64>>())
        };
        paired_ratio(
            &mut out,
            &format!("{name}: tandem req/s ÷ reqwest req/s"),
            rounds(0),
            rounds(1),
            Target::AtLeast(CLIENT_TARGETS[load]),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{parse_opts, parse_s_time};

    use crate::test_args as args;

    #[test]
    fn options() {
        let o = parse_opts(&[]).unwrap();
        assert_eq!((o.rounds.secs, o.rounds.rounds, o.runs), (5, 3, [true; 4]));
        let o = parse_opts(&args(&["--secs=2", "--rounds", "1"])).unwrap();
        assert_eq!((o.rounds.secs, o.rounds.rounds), (2, 1));
        let o = parse_opts(&args(&["--only", "keep-alive,new"])).unwrap();
        assert_eq!(o.runs, [true, true, false, false]);
        let o = parse_opts(&args(&["--only=resumed"])).unwrap();
        assert_eq!(o.runs, [false, false, false, true]);
        assert!(parse_opts(&args(&["--only", "nginx"])).is_err());
    }

    #[test]
    fn s_time_report() {
        let text = "Collecting connection statistics for 5 seconds\n\
                    rrrrrrrr3\n\
                    rr\n\n\
                    812 connections in 1.37s; 592.70 connections/user sec, bytes read 113680\n\
                    812 connections in 6 real seconds, 140 bytes read per connection\n";
        let (count, share) = parse_s_time(text).unwrap();
        assert_eq!(count, 812);
        assert!((share - 10.0 / 11.0).abs() < 1e-9, "{share}");
        assert_eq!(parse_s_time("nothing"), None);
    }
}
