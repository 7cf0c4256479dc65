//! `cargo xtask bench loadtest [--secs N] [--rounds R]`: how close `examples/loadtest.rs`
//! (the Tandem client as a load generator) comes to wrk, both driving our `bench_server`.
//!
//! The server runs on core 0, each loader on core 1, with the same 64 keep-alive
//! connections and `GET /plaintext`; their order alternates by round. The server is the
//! bottleneck when a loader keeps up, so the ratio of the two rates says how much of a core
//! the loader's own work takes. Target: loadtest reaches at least 0.8× wrk's requests/s.

use std::fmt::Write as _;

use super::client::{Opts, Sample, parse_rounds, run_client};
use super::load::{self, Load, Server};
use super::server::{self, Target, find_exe};
use crate::Result;

const USAGE: &str = "cargo xtask bench loadtest [--secs N] [--rounds R]";
/// wrk's shape in every load (`-t1 -c64`), given to loadtest as `-c 64`.
const CONNECTIONS: usize = 64;
/// loadtest's requests/s over wrk's that the run must reach.
const TARGET: f64 = 0.8;

/// One round: wrk's requests/s, and loadtest's run.
struct Round {
    wrk: f64,
    loadtest: Sample,
}

pub(crate) fn run(args: &[String]) -> Result {
    let opts = parse_rounds(args, USAGE)?;
    server::check_machine()?;
    let built = server::cargo_build(&["--example", "bench_server", "--example", "loadtest"])?;
    let (server_exe, loadtest) = (find_exe(&built, "bench_server")?, find_exe(&built, "loadtest")?);
    let clk_tck = load::clk_tck();

    let mut rounds = Vec::new();
    for round in 1..=opts.rounds {
        println!("\n==> bench loadtest: round {round}/{}", opts.rounds);
        server::warn_if_busy();
        // Killed when dropped, on every path out.
        let server = Server::start("tandem", &server_exe, &["--workers", "1"])?;
        let url = format!("http://127.0.0.1:{}/plaintext", server.port());
        let run_wrk = || load::run_load(&server, Load::Plaintext, opts.secs, clk_tck);
        let run_ours = || run_client(&loadtest, &url, opts.secs, CONNECTIONS, &[], "requests");
        // Alternate who goes first, so neither always meets a fresher server.
        let (wrk, ours) = if round % 2 == 1 {
            let wrk = run_wrk()?;
            (wrk, run_ours()?)
        } else {
            let ours = run_ours()?;
            (run_wrk()?, ours)
        };
        println!(
            "  loadtest: {:.0} req/s, client cpu {:.2} µs/req",
            ours.per_sec, ours.cpu_us_each
        );
        rounds.push(Round { wrk: wrk.req_per_sec, loadtest: ours });
    }
    let report = report(&rounds, &opts);
    println!("\n{report}");
    server::save("loadtest", &report);
    Ok(())
}

fn report(rounds: &[Round], opts: &Opts) -> String {
    let median = |f: fn(&Round) -> f64| server::median(rounds.iter().map(f).collect());
    let (wrk, ours) = (median(|r| r.wrk), median(|r| r.loadtest.per_sec));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## cargo xtask bench loadtest: medians of {} round(s), {} s per load, GET /plaintext \
         from bench_server on core 0, each loader on core 1 with {CONNECTIONS} connections\n",
        opts.rounds, opts.secs
    );
    let _ = writeln!(
        out,
        "| wrk req/s | loadtest req/s | loadtest ÷ wrk | loadtest client CPU µs/req |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| {wrk:.0} | {ours:.0} | {:.2} | {:.2} |\n",
        ours / wrk,
        median(|r| r.loadtest.cpu_us_each)
    );
    server::ratio(
        &mut out,
        "loadtest req/s ÷ wrk req/s",
        Some(ours),
        Some(wrk),
        Target::AtLeast(TARGET),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::{Opts, Round, Sample, report};

    #[test]
    fn table() {
        let round =
            |wrk, per_sec| Round { wrk, loadtest: Sample { done: 1.0, per_sec, cpu_us_each: 5.0 } };
        let rounds = [round(100.0, 70.0), round(110.0, 99.0), round(90.0, 90.0)];
        let text = report(&rounds, &Opts { secs: 5, rounds: 3 });
        for row in
            ["| 100 | 90 | 0.90 | 5.00 |", "- loadtest req/s ÷ wrk req/s: 0.90 (target ≥ 0.8: met)"]
        {
            assert!(text.contains(row), "no `{row}` in:\n{text}");
        }
    }
}
