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

use std::fmt::Write as _;
use std::path::PathBuf;

use super::client::{Opts, parse_rounds};
use super::load::{self, LOAD_CORE, Server, to_f64};
use super::server::{self, PEERS_MANIFEST, Target, find_exe, median, paired_ratio};
use crate::{Cmd, Result};

const USAGE: &str = "cargo xtask bench h2 [--secs N] [--rounds R]";

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

pub(crate) fn run(args: &[String]) -> Result {
    let opts = parse_rounds(args, USAGE)?;
    server::check_machine()?;
    crate::peers::ensure_commands(&[("nghttp2-client", "h2load")])?;
    let exes = build()?;
    let clk_tck = load::clk_tck();
    // samples[server][path]: one result a round.
    let mut samples: Vec<Vec<Vec<Measured>>> = vec![vec![Vec::new(); PATHS.len()]; SERVERS.len()];
    for round in 1..=opts.rounds {
        println!("\n==> bench h2: round {round}/{}", opts.rounds);
        let mut started = Vec::new();
        for (name, exe) in &exes {
            started.push(Server::start(name, exe, server::server_args(name))?);
        }
        for (p, path) in PATHS.iter().enumerate() {
            for (s, srv) in started.iter().enumerate() {
                server::warn_if_busy();
                println!("{}: h2load {path}", srv.name());
                samples[s][p].push(h2load(srv, path, opts.secs, clk_tck)?);
            }
        }
    }
    let report = report(&samples, &opts);
    println!("\n{report}");
    server::save("h2", &report);
    Ok(())
}

fn build() -> Result<Vec<(&'static str, PathBuf)>> {
    let mut built = server::cargo_build(&["--example", "bench_server"])?;
    built.extend(server::cargo_build(&[
        "--manifest-path",
        PEERS_MANIFEST,
        "--bin",
        "hyper_h2_server",
    ])?);
    Ok(vec![
        ("tandem", find_exe(&built, "bench_server")?),
        ("hyper", find_exe(&built, "hyper_h2_server")?),
    ])
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
fn parse_h2load(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().map(str::trim).find_map(|l| l.strip_prefix("requests:"))?;
    let count = |what: &str| -> Option<u64> {
        line.split(',').map(str::trim).find_map(|part| part.strip_suffix(what)?.trim().parse().ok())
    };
    Some((count("succeeded")?, count("failed")? + count("errored")? + count("timeout")?))
}

fn report(samples: &[Vec<Vec<Measured>>], opts: &Opts) -> String {
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

#[cfg(test)]
mod tests {
    use super::parse_h2load;

    #[test]
    fn h2load_counts() {
        let text = "finished in 2.00s, 71808.00 req/s, 3.63MB/s\n\
            requests: 143616 total, 144128 started, 143616 done, 143600 succeeded, 16 failed, \
            0 errored, 0 timeout\n";
        assert_eq!(parse_h2load(text), Some((143_600, 16)));
        assert_eq!(parse_h2load("nothing"), None);
    }
}
