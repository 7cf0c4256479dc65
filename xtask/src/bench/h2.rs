//! `cargo xtask bench h2 [--secs N] [--rounds R]`: Tandem's HTTP/2 server (h2c by prior
//! knowledge, `examples/bench_server`) against hyper's (`benches/peers`' `hyper_h2_server`),
//! both on the same `h2` crate and one current-thread runtime, pinned to core 0.
//!
//! The load is issue 14's: `h2load` (Debian's `nghttp2-client`) from core 1 with 16
//! connections and 32 concurrent streams on each, `GET /plaintext` and `GET /json` for
//! `--secs` seconds, the server's CPU time read around it. Each round starts both servers
//! and runs each load against each in turn; the table shows the medians of the rounds, and
//! the ratios set Tandem against hyper, each the median of the rounds' own ratios (the
//! machine drifts between rounds more than the servers differ). Targets: at least 1.2×
//! hyper's requests/s, at most 0.85× its CPU time a request.
//!
//! The client part, also issue 14's: Tandem's client (`examples/loadtest
//! --http2-prior-knowledge`) against reqwest's (`benches/peers`' `reqwest_client
//! --http2-prior-knowledge`), each from core 1 on a current-thread runtime: 10,000 GETs of
//! `/plaintext` (h2c, the server on core 0) as 64 concurrent requests, which both send as
//! streams of one connection. Two servers take them: `bench_server`, and nghttpd (Debian's
//! nghttp2-server, serving the same 13 bytes as a file), which is faster, so that the
//! clients rather than the server set the pace. Each round runs each client once against
//! each, the order alternating; the table shows the medians, and the ratios are the medians
//! of the rounds' own. Target: at least 1.2× reqwest's requests/s. `--only server` or
//! `--only client` runs one part.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::client::{Opts, Sample, run_loader};
use super::load::{self, LOAD_CORE, Server, to_f64};
use super::server::{self, PEERS_MANIFEST, Target, find_exe, median, paired_ratio};
use super::tls::{Scratch, path_str};
use crate::{Cmd, Result, arg_parser, bad_arg, positive};

const USAGE: &str = "cargo xtask bench h2 [--secs N] [--rounds R] [--only server|client]";

/// The client part's load: requests in all, and how many at once.
const CLIENT_REQUESTS: &str = "10000";
const CLIENT_CONCURRENCY: &str = "64";

/// The clients compared, in the order of the table.
const CLIENTS: [&str; 2] = ["tandem", "reqwest"];

/// The servers the clients fetch from, in the order of the table.
const CLIENT_SERVERS: [&str; 2] = ["bench_server", "nghttpd"];

/// Starts nghttpd as `Server::start` starts the others (`EXE --port P`), in the foreground
/// as one process on h2c, serving the scratch folder's `plaintext`.
const NGHTTPD_SH: &str = "\
#!/bin/sh
exec nghttpd --no-tls -a 127.0.0.1 -d '@DIR@/docs' \"$2\"
";

/// Which parts run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parts {
    Both,
    Server,
    Client,
}

/// The servers compared, in the order they run and print.
const SERVERS: [&str; 2] = ["tandem", "hyper"];

/// The paths loaded, in column order.
const PATHS: [&str; 2] = ["/plaintext", "/json"];

/// h2load's shape: connections, and streams in flight on each.
const CONNECTIONS: &str = "16";
const STREAMS: &str = "32";

/// One load's result on one server.
#[derive(Clone, Copy)]
struct Measured {
    req_per_sec: f64,
    cpu_us_per_req: f64,
}

/// `--secs N` (default 5), `--rounds R` (default 3) and `--only server|client`.
fn parse(args: &[String]) -> Result<(Opts, Parts)> {
    use lexopt::prelude::*;
    let (mut opts, mut parts) = (Opts { secs: 5, rounds: 3 }, Parts::Both);
    let mut parser = arg_parser(args);
    while let Some(arg) = parser.next().map_err(|e| bad_arg(&e, USAGE))? {
        match arg {
            Long("secs") => opts.secs = positive(&mut parser, "--secs")?,
            Long("rounds") => opts.rounds = positive(&mut parser, "--rounds")?,
            Long("only") => {
                let value = parser.value().map_err(|e| bad_arg(&e, USAGE))?;
                parts = match value.to_str() {
                    Some("server") => Parts::Server,
                    Some("client") => Parts::Client,
                    _ => return Err(format!("--only wants server or client (usage: {USAGE})")),
                };
            }
            _ => return Err(bad_arg(&arg.unexpected(), USAGE)),
        }
    }
    Ok((opts, parts))
}

/// The executables: the servers in [`SERVERS`]' order, the clients in [`CLIENTS`]', and
/// nghttpd's start script.
struct Exes {
    servers: Vec<(&'static str, PathBuf)>,
    clients: [PathBuf; CLIENTS.len()],
    nghttpd: PathBuf,
}

pub(crate) fn run(args: &[String]) -> Result {
    let (opts, parts) = parse(args)?;
    server::check_machine()?;
    crate::peers::ensure_commands(&[("nghttp2-client", "h2load"), ("nghttp2-server", "nghttpd")])?;
    let scratch = prepare()?;
    let exes = build(&scratch)?;
    let clk_tck = load::clk_tck();
    // samples[server][path]: one result a round.
    let mut samples: Vec<Vec<Vec<Measured>>> = vec![vec![Vec::new(); PATHS.len()]; SERVERS.len()];
    // clients[server][client]: one result a round.
    let mut clients: [[Vec<Sample>; CLIENTS.len()]; CLIENT_SERVERS.len()] = Default::default();
    for round in 1..=opts.rounds {
        println!("\n==> bench h2: round {round}/{}", opts.rounds);
        let mut started = Vec::new();
        for (name, exe) in &exes.servers {
            if parts != Parts::Client || *name == SERVERS[0] {
                started.push(Server::start(name, exe, server::server_args(name))?);
            }
        }
        if parts != Parts::Client {
            for (p, path) in PATHS.iter().enumerate() {
                for (s, srv) in started.iter().enumerate() {
                    server::warn_if_busy();
                    println!("{}: h2load {path}", srv.name());
                    samples[s][p].push(h2load(srv, path, opts.secs, clk_tck)?);
                }
            }
        }
        if parts != Parts::Server {
            let nghttpd = Server::start(CLIENT_SERVERS[1], &exes.nghttpd, &[])?;
            for (s, srv) in [&started[0], &nghttpd].into_iter().enumerate() {
                let url = format!("http://127.0.0.1:{}/plaintext", srv.port());
                // Alternate who goes first, so neither always meets a fresher server.
                let mut order = [0, 1];
                if round % 2 == 0 {
                    order.reverse();
                }
                for c in order {
                    server::warn_if_busy();
                    let args = [
                        "-n",
                        CLIENT_REQUESTS,
                        "-c",
                        CLIENT_CONCURRENCY,
                        "--http2-prior-knowledge",
                    ];
                    let sample = run_loader(&exes.clients[c], &url, &args, "requests")?;
                    println!(
                        "  {} client from {}: {:.0} req/s, client cpu {:.2} µs/req",
                        CLIENTS[c], CLIENT_SERVERS[s], sample.per_sec, sample.cpu_us_each
                    );
                    clients[s][c].push(sample);
                }
            }
        }
    }
    let mut report = String::new();
    if parts != Parts::Client {
        report.push_str(&server_report(&samples, &opts));
    }
    if parts != Parts::Server {
        report.push_str(&client_report(&clients, &opts));
    }
    println!("\n{report}");
    server::save("h2", &report);
    Ok(())
}

/// The scratch folder: nghttpd's document root and start script.
fn prepare() -> Result<Scratch> {
    let dir = std::env::temp_dir().join(format!("tandem-bench-h2-{}", std::process::id()));
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).map_err(|e| format!("cannot create {}: {e}", docs.display()))?;
    let scratch = Scratch(dir);
    let write = |path: PathBuf, text: &str| {
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(docs.join("plaintext"), "Hello, World!")?;
    let script = scratch.path().join("nghttpd.sh");
    write(script.clone(), &NGHTTPD_SH.replace("@DIR@", path_str(scratch.path())?))?;
    Cmd::new("chmod").arg("+x").arg(&script).capture()?;
    Ok(scratch)
}

fn build(scratch: &Scratch) -> Result<Exes> {
    let mut built = server::cargo_build(&["--example", "bench_server", "--example", "loadtest"])?;
    built.extend(server::cargo_build(&[
        "--manifest-path",
        PEERS_MANIFEST,
        "--bin",
        "hyper_h2_server",
        "--bin",
        "reqwest_client",
    ])?);
    Ok(Exes {
        servers: vec![
            ("tandem", find_exe(&built, "bench_server")?),
            ("hyper", find_exe(&built, "hyper_h2_server")?),
        ],
        clients: [find_exe(&built, "loadtest")?, find_exe(&built, "reqwest_client")?],
        nghttpd: scratch.path().join("nghttpd.sh"),
    })
}

/// Runs h2load pinned to the load core against `server` for `secs` seconds.
fn h2load(server: &Server, path: &str, secs: u64, clk_tck: u64) -> Result<Measured> {
    let url = format!("http://127.0.0.1:{}{path}", server.port());
    let cmd = Cmd::new("taskset")
        .args(["-c", LOAD_CORE, "h2load", "-c", CONNECTIONS, "-m", STREAMS, "-D"])
        .arg(secs.to_string())
        .arg(url);
    let before = server.cpu_ticks()?;
    let text = cmd.capture()?;
    let after = server.cpu_ticks()?;
    let (succeeded, failed) =
        parse_h2load(&text).ok_or_else(|| format!("cannot parse h2load output:\n{text}"))?;
    if succeeded == 0 || failed != 0 {
        return Err(format!(
            "{}: {path}: {succeeded} succeeded, {failed} not:\n{text}",
            server.name()
        ));
    }
    let cpu_secs = to_f64(after.saturating_sub(before)) / to_f64(clk_tck);
    let measured = Measured {
        req_per_sec: to_f64(succeeded) / to_f64(secs),
        cpu_us_per_req: cpu_secs * 1e6 / to_f64(succeeded),
    };
    println!(
        "  {:.0} req/s, server cpu {cpu_secs:.2} s, {:.2} µs/req",
        measured.req_per_sec, measured.cpu_us_per_req
    );
    Ok(measured)
}

/// Succeeded and failed (failed, errored or timed out) requests from h2load's
/// `requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout`.
pub(super) fn parse_h2load(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().map(str::trim).find_map(|l| l.strip_prefix("requests:"))?;
    let count = |what: &str| -> Option<u64> {
        line.split(',').map(str::trim).find_map(|part| part.strip_suffix(what)?.trim().parse().ok())
    };
    Some((count("succeeded")?, count("failed")? + count("errored")? + count("timeout")?))
}

fn server_report(samples: &[Vec<Vec<Measured>>], opts: &Opts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## bench h2: h2load -c {CONNECTIONS} -m {STREAMS}, {} s, medians of {} rounds\n",
        opts.secs, opts.rounds
    );
    let _ = writeln!(out, "| server | load | req/s | server CPU µs/req |");
    let _ = writeln!(out, "| --- | --- | ---: | ---: |");
    for (s, name) in SERVERS.iter().enumerate() {
        for (p, path) in PATHS.iter().enumerate() {
            let rps = median(samples[s][p].iter().map(|m| m.req_per_sec).collect());
            let cpu = median(samples[s][p].iter().map(|m| m.cpu_us_per_req).collect());
            let _ = writeln!(out, "| {name} | {path} | {rps:.0} | {cpu:.2} |");
        }
    }
    let _ = writeln!(out);
    for (p, path) in PATHS.iter().enumerate() {
        let of = |s: usize, f: fn(&Measured) -> f64| Some(samples[s][p].iter().map(f).collect());
        paired_ratio(
            &mut out,
            &format!("{path} requests/s, Tandem ÷ hyper"),
            of(0, |m| m.req_per_sec),
            of(1, |m| m.req_per_sec),
            Target::AtLeast(1.2),
        );
        paired_ratio(
            &mut out,
            &format!("{path} server CPU a request, Tandem ÷ hyper"),
            of(0, |m| m.cpu_us_per_req),
            of(1, |m| m.cpu_us_per_req),
            Target::AtMost(0.85),
        );
    }
    out
}

fn client_report(
    clients: &[[Vec<Sample>; CLIENTS.len()]; CLIENT_SERVERS.len()],
    opts: &Opts,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## bench h2, client: {CLIENT_REQUESTS} GETs of /plaintext, {CLIENT_CONCURRENCY} at \
         once on one h2c connection, the server on core 0, each client on core 1; medians of \
         {} rounds\n",
        opts.rounds
    );
    let _ = writeln!(out, "| server | client | req/s | client CPU µs/req |");
    let _ = writeln!(out, "| --- | --- | ---: | ---: |");
    for (s, server) in CLIENT_SERVERS.iter().enumerate() {
        for (c, client) in CLIENTS.iter().enumerate() {
            let rps = median(clients[s][c].iter().map(|m| m.per_sec).collect());
            let cpu = median(clients[s][c].iter().map(|m| m.cpu_us_each).collect());
            let _ = writeln!(out, "| {server} | {client} | {rps:.0} | {cpu:.2} |");
        }
    }
    let _ = writeln!(out);
    for (s, server) in CLIENT_SERVERS.iter().enumerate() {
        let of = |c: usize, f: fn(&Sample) -> f64| Some(clients[s][c].iter().map(f).collect());
        paired_ratio(
            &mut out,
            &format!("from {server}: requests/s, Tandem ÷ reqwest"),
            of(0, |m| m.per_sec),
            of(1, |m| m.per_sec),
            Target::AtLeast(1.2),
        );
        paired_ratio(
            &mut out,
            &format!("from {server}: client CPU a request, Tandem ÷ reqwest"),
            of(0, |m| m.cpu_us_each),
            of(1, |m| m.cpu_us_each),
            Target::AtMost(1.0),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Parts, parse, parse_h2load};
    use crate::test_args as args;

    #[test]
    fn options() {
        let (o, parts) = parse(&[]).unwrap();
        assert_eq!((o.secs, o.rounds, parts), (5, 3, Parts::Both));
        let (o, parts) = parse(&args(&["--rounds", "9", "--only", "client"])).unwrap();
        assert_eq!((o.rounds, parts), (9, Parts::Client));
        assert_eq!(parse(&args(&["--only=server"])).unwrap().1, Parts::Server);
        for bad in [&["--only", "both"][..], &["--only"], &["--secs", "0"], &["fast"]] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn h2load_counts() {
        let text = "finished in 2.00s, 71808.00 req/s, 3.63MB/s\n\
            requests: 143616 total, 144128 started, 143616 done, 143600 succeeded, 16 failed, \
            0 errored, 0 timeout\n";
        assert_eq!(parse_h2load(text), Some((143_600, 16)));
        assert_eq!(parse_h2load("nothing"), None);
    }
}
