//! `cargo xtask bench client [--secs N] [--rounds R]`: Tandem's HTTP client
//! (`ClientSession`) against reqwest, both driving the same fixed server.
//!
//! Each round starts `benches/peers`' `hyper_server` pinned to core 0 and runs
//! two loads against its `/plaintext`, each client pinned to core 1 on a
//! current-thread runtime: one GET loop on one connection, then 32 concurrent
//! GET loops sharing one session (one pool). Every loop reads each body whole.
//! The clients are `examples/loadtest.rs` and the peers' `reqwest_client`,
//! the same program on the two libraries; their order alternates by round.
//! The table shows the median requests/s of the rounds and each ratio against
//! the 1.2× target, and the client's own CPU time per request (the loaders'
//! `client CPU` field), which other load on the machine disturbs less.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::load::{self, Server};
use super::server::{self, PEERS_MANIFEST, Target, find_exe};
use crate::{Cmd, Result, arg_parser, bad_arg, positive};

const USAGE: &str = "cargo xtask bench client [--secs N] [--rounds R]";
/// The route both clients fetch: 13 bytes of text/plain.
const PATH: &str = "/plaintext";
/// The loads: concurrent GET loops (1 = sequential on one connection).
const CONCURRENCY: [usize; 2] = [1, 32];
/// Tandem's requests/s over reqwest's that each load must reach.
const TARGET: f64 = 1.2;

/// The clients compared, in table order.
const CLIENTS: [&str; 2] = ["tandem", "reqwest"];

/// The options the client, loadtest and ws benches share: seconds per load and rounds.
#[derive(Debug)]
pub(super) struct Opts {
    pub(super) secs: u64,
    pub(super) rounds: usize,
}

/// `--secs N` (default 5) and `--rounds R` (default 3); anything else is refused with
/// `usage`.
pub(super) fn parse_rounds(args: &[String], usage: &str) -> Result<Opts> {
    parse_rounds_only::<()>(args, &[], "", usage).map(|(opts, _)| opts)
}

/// [`parse_rounds`]' options and `--only A,B`, which picks among `choices` by name (`what`
/// says what they are in an error): those picked, in order, or all of them without
/// `--only`. No `choices`, no `--only`.
pub(super) fn parse_rounds_only<T: Copy>(
    args: &[String],
    choices: &[(&str, T)],
    what: &str,
    usage: &str,
) -> Result<(Opts, Vec<T>)> {
    use lexopt::prelude::*;
    let mut opts = Opts { secs: 5, rounds: 3 };
    let mut picked = Vec::new();
    let mut parser = arg_parser(args);
    while let Some(arg) = parser.next().map_err(|e| bad_arg(&e, usage))? {
        match arg {
            Long("secs") => opts.secs = positive(&mut parser, "--secs")?,
            Long("rounds") => opts.rounds = positive(&mut parser, "--rounds")?,
            Long("only") if !choices.is_empty() => {
                let value = parser.value().map_err(|e| bad_arg(&e, usage))?;
                for name in value.to_string_lossy().split(',') {
                    let found = choices.iter().find(|(n, _)| *n == name);
                    let (_, choice) = found
                        .ok_or_else(|| format!("--only: no {what} `{name}` (usage: {usage})"))?;
                    picked.push(*choice);
                }
            }
            _ => return Err(bad_arg(&arg.unexpected(), usage)),
        }
    }
    if picked.is_empty() {
        picked = choices.iter().map(|(_, choice)| *choice).collect();
    }
    Ok((opts, picked))
}

/// The executables one run needs.
struct Exes {
    server: PathBuf,
    /// Indexed like [`CLIENTS`].
    clients: [PathBuf; CLIENTS.len()],
}

pub(crate) fn run(args: &[String]) -> Result {
    let opts = parse_rounds(args, USAGE)?;
    check_machine()?;
    let exes = build()?;

    // samples[load][client]: one per round.
    let mut samples: [[Vec<Sample>; CLIENTS.len()]; CONCURRENCY.len()] = Default::default();
    for round in 1..=opts.rounds {
        println!("\n==> bench client: round {round}/{}", opts.rounds);
        server::warn_if_busy();
        // Killed when dropped, on every path out.
        let hyper = Server::start("hyper_server", &exes.server, &[])?;
        let url = format!("http://127.0.0.1:{}{PATH}", hyper.port());
        for (load, &concurrency) in CONCURRENCY.iter().enumerate() {
            // Alternate who goes first, so neither always meets a fresher server.
            let mut order = [0, 1];
            if round % 2 == 0 {
                order.reverse();
            }
            for client in order {
                let sample = run_client(
                    &exes.clients[client],
                    &url,
                    opts.secs,
                    concurrency,
                    &[],
                    "requests",
                )?;
                println!(
                    "  {} c={concurrency}: {:.0} req/s, client cpu {:.2} µs/req",
                    CLIENTS[client], sample.per_sec, sample.cpu_us_each
                );
                samples[load][client].push(sample);
            }
        }
    }

    let report = report(&samples, &opts);
    println!("\n{report}");
    server::save("client", &report);
    Ok(())
}

/// Two cores for the pinning, and taskset and setpriv on PATH.
pub(super) fn check_machine() -> Result {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if cores < 2 {
        return Err(format!("needs 2 cores (server on 0, client on 1); this machine has {cores}"));
    }
    for tool in ["taskset", "setpriv"] {
        if !Cmd::new("sh").args(["-c", &format!("command -v {tool}")]).probe() {
            return Err(format!("{tool} not found (Debian package util-linux)"));
        }
    }
    Ok(())
}

fn build() -> Result<Exes> {
    let mut built = server::cargo_build(&["--example", "loadtest"])?;
    built.extend(server::cargo_build(&[
        "--manifest-path",
        PEERS_MANIFEST,
        "--bin",
        "hyper_server",
        "--bin",
        "reqwest_client",
    ])?);
    Ok(Exes {
        server: find_exe(&built, "hyper_server")?,
        clients: [find_exe(&built, "loadtest")?, find_exe(&built, "reqwest_client")?],
    })
}

/// What one client run measured, per request (or per WebSocket message echoed).
#[derive(Clone, Copy, Debug)]
pub(super) struct Sample {
    /// Requests or messages completed.
    pub(super) done: f64,
    pub(super) per_sec: f64,
    /// The client process's CPU time per completed request or message.
    pub(super) cpu_us_each: f64,
}

/// Runs one loader pinned to the load core: `EXE -d SECS -c CONCURRENCY EXTRA... URL`,
/// whose summary line counts `unit`s ("requests", "messages").
pub(super) fn run_client(
    exe: &Path,
    url: &str,
    secs: u64,
    concurrency: usize,
    extra: &[&str],
    unit: &str,
) -> Result<Sample> {
    let shape = ["-d", &secs.to_string(), "-c", &concurrency.to_string()];
    run_loader(exe, url, &[&shape[..], extra].concat(), unit)
}

/// Runs one loader pinned to the load core, `EXE ARGS... URL`, and reads its summary line.
pub(super) fn run_loader(exe: &Path, url: &str, args: &[&str], unit: &str) -> Result<Sample> {
    let cmd = Cmd::new("taskset").args(["-c", load::LOAD_CORE]).arg(exe).args(args).arg(url);
    let text = cmd.capture()?;
    // loadtest counts failed requests among those it completed, and reports them apart.
    let errors =
        text.lines().map(str::trim).find(|l| l.starts_with("Errors:") && *l != "Errors: none");
    if let Some(line) = errors {
        return Err(format!("`{}` failed requests: {line}\n{text}", cmd.display()));
    }
    let (done, elapsed, cpu) = parse_output(&text, unit)
        .ok_or_else(|| format!("cannot parse the client's output:\n{text}"))?;
    if done == 0 || elapsed <= 0.0 {
        return Err(format!("`{}` completed no {unit}:\n{text}", cmd.display()));
    }
    let done = load::to_f64(done);
    Ok(Sample { done, per_sec: done / elapsed, cpu_us_each: cpu * 1e6 / done })
}

/// The loaders' summary line, `N UNIT in Fs, ..., client CPU Cs` → (N, F, C).
fn parse_output(text: &str, unit: &str) -> Option<(u64, f64, f64)> {
    let line = text.lines().find(|l| l.contains(&format!(" {unit} in ")))?;
    let mut words = line.split_whitespace();
    let requests = words.next()?.parse().ok()?;
    let secs = words.nth(2)?.trim_end_matches(',').strip_suffix('s')?.parse().ok()?;
    let (_, cpu) = line.split_once("client CPU ")?;
    let cpu = cpu.trim().strip_suffix('s')?.parse().ok()?;
    Some((requests, secs, cpu))
}

fn load_name(concurrency: usize) -> String {
    if concurrency == 1 {
        "sequential (1 connection)".to_owned()
    } else {
        format!("{concurrency} concurrent loops")
    }
}

fn report(samples: &[[Vec<Sample>; CLIENTS.len()]; CONCURRENCY.len()], opts: &Opts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## cargo xtask bench client: medians of {} round(s), {} s per load, GET {PATH} from \
         hyper_server on core 0, each client on core 1 (current-thread runtime)\n",
        opts.rounds, opts.secs
    );
    let _ = writeln!(
        out,
        "| load | tandem req/s | reqwest req/s | tandem ÷ reqwest | tandem client CPU µs/req | reqwest client CPU µs/req |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for (load, &concurrency) in CONCURRENCY.iter().enumerate() {
        let col = |client: usize, f: fn(&Sample) -> f64| {
            server::median(samples[load][client].iter().map(f).collect())
        };
        let (ours, theirs) = (col(0, |s| s.per_sec), col(1, |s| s.per_sec));
        let _ = writeln!(
            out,
            "| {} | {ours:.0} | {theirs:.0} | {:.2} | {:.2} | {:.2} |",
            load_name(concurrency),
            ours / theirs,
            col(0, |s| s.cpu_us_each),
            col(1, |s| s.cpu_us_each),
        );
        ratios.push((concurrency, ours, theirs));
    }
    out.push('\n');
    for (concurrency, ours, theirs) in ratios {
        server::ratio(
            &mut out,
            &format!("{}: tandem req/s ÷ reqwest req/s", load_name(concurrency)),
            Some(ours),
            Some(theirs),
            Target::AtLeast(TARGET),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Opts, Sample, USAGE, parse_output, parse_rounds, report};

    use crate::test_args as args;

    #[test]
    fn options() {
        let parse = |a: &[String]| parse_rounds(a, USAGE);
        let o = parse(&[]).unwrap();
        assert_eq!((o.secs, o.rounds), (5, 3));
        let o = parse(&args(&["--secs", "3", "--rounds=1"])).unwrap();
        assert_eq!((o.secs, o.rounds), (3, 1));
        for bad in [&["--secs", "0"][..], &["--rounds"], &["--only", "tandem"], &["fast"]] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn client_output() {
        let ours = "Running 3s test @ http://127.0.0.1:1/plaintext\n  32 connections, GET\n  \
                    12345 requests in 3.001s, 0.16 MB read, client CPU 2.500s\n\
                    Requests/sec: 4113.63\n";
        assert_eq!(parse_output(ours, "requests"), Some((12_345, 3.001, 2.5)));
        let reqwest = "7 requests in 1.000s, client CPU 0.500s\n";
        assert_eq!(parse_output(reqwest, "requests"), Some((7, 1.0, 0.5)));
        let ws = "9 messages in 2.000s, client CPU 0.250s\n";
        assert_eq!(parse_output(ws, "messages"), Some((9, 2.0, 0.25)));
        assert_eq!(parse_output(ws, "requests"), None);
        assert_eq!(parse_output("7 requests in 1.000s\n", "requests"), None);
        assert_eq!(parse_output("garbage", "requests"), None);
    }

    #[test]
    fn table() {
        let s = |per_sec, cpu_us_each| Sample { done: 1.0, per_sec, cpu_us_each };
        let samples = [
            [vec![s(120.0, 9.0), s(100.0, 11.0), s(110.0, 10.0)], vec![s(100.0, 12.0); 3]],
            [vec![s(300.0, 3.0)], vec![s(400.0, 2.5)]],
        ];
        let text = report(&samples, &Opts { secs: 3, rounds: 3 });
        let rows = [
            "| sequential (1 connection) | 110 | 100 | 1.10 | 10.00 | 12.00 |",
            "| 32 concurrent loops | 300 | 400 | 0.75 | 3.00 | 2.50 |",
            "- sequential (1 connection): tandem req/s ÷ reqwest req/s: 1.10 (target ≥ 1.2: MISSED)",
            "- 32 concurrent loops: tandem req/s ÷ reqwest req/s: 0.75 (target ≥ 1.2: MISSED)",
        ];
        for row in rows {
            assert!(text.contains(row), "no `{row}` in:\n{text}");
        }
    }
}
