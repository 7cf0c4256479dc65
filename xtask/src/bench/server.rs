//! `cargo xtask bench server [--secs N] [--rounds R] [--only NAME]`: Tandem's
//! single-worker HTTP server against hyper and actix-web on one worker each,
//! above a floor.
//!
//! Each round starts every server pinned to core 0, then runs each load
//! (plaintext keep-alive, plaintext pipelined 16 deep, JSON) against each
//! server in turn with wrk pinned to core 1, reading the server's CPU time
//! around it, then measures what 5,000 idle keep-alive connections cost each
//! server in RSS. The table shows the median of the rounds. The peers live in
//! `benches/peers/`, a workspace of their own.
//!
//! The last row is the floor: `tokio_floor` answers with canned bytes and parses no HTTP,
//! so it costs only the sockets and tokio. What a server spends above it is what its
//! HTTP layer costs; the report prints that for Tandem and hyper.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use super::load::{self, Load, LoadResult, PipelineScript, Server};
use crate::{Cmd, Result, arg_parser, bad_arg, peers, positive};

const USAGE: &str =
    "cargo xtask bench server [--secs N] [--rounds R] [--only tandem|hyper|actix-web|floor]";
/// The peers' own workspace (`benches/peers/`), built with `--manifest-path`.
pub(super) const PEERS_MANIFEST: &str = "benches/peers/Cargo.toml";
/// Idle keep-alive connections opened for the memory probe.
const IDLE_CONNS: usize = 5_000;
/// File descriptors the probe needs in xtask and in the server (which
/// inherits our limit), with room for everything else each has open.
const NOFILE_NEEDED: u64 = IDLE_CONNS as u64 + 1_024;
const NOFILE_RAISED: u64 = 65_536;

/// The servers compared, in the order they run and print.
pub(super) const SERVERS: [&str; 4] = ["tandem", "hyper", "actix-web", "floor"];

#[derive(Debug)]
struct Opts {
    secs: u64,
    rounds: usize,
    only: Option<&'static str>,
}

fn parse(args: &[String]) -> Result<Opts> {
    use lexopt::prelude::*;
    let mut opts = Opts { secs: 5, rounds: 3, only: None };
    let mut parser = arg_parser(args);
    while let Some(arg) = parser.next().map_err(|e| bad_arg(&e, USAGE))? {
        match arg {
            Long("secs") => opts.secs = positive(&mut parser, "--secs")?,
            Long("rounds") => opts.rounds = positive(&mut parser, "--rounds")?,
            Long("only") => {
                let v = parser.value().map_err(|e| bad_arg(&e, USAGE))?;
                let v = v.to_string_lossy();
                let name =
                    SERVERS.into_iter().find(|s| *s == v || (v == "actix" && *s == "actix-web"));
                opts.only = Some(
                    name.ok_or(format!("no server `{v}`; servers are: {}", SERVERS.join(", ")))?,
                );
            }
            _ => return Err(bad_arg(&arg.unexpected(), USAGE)),
        }
    }
    Ok(opts)
}

/// What one server measured in one round.
#[derive(Clone, Copy, Debug)]
struct Sample {
    plaintext: LoadResult,
    pipelined: LoadResult,
    json: LoadResult,
    idle_bytes: f64,
}

pub(crate) fn run(args: &[String]) -> Result {
    let opts = parse(args)?;
    let servers: Vec<&'static str> =
        SERVERS.into_iter().filter(|s| opts.only.is_none_or(|o| o == *s)).collect();
    check_machine()?;
    let exes = build(&servers)?;
    let clk_tck = load::clk_tck();
    let script = PipelineScript::write()?;

    let mut samples: Vec<(&str, Vec<Sample>)> = servers.iter().map(|s| (*s, Vec::new())).collect();
    for round in 1..=opts.rounds {
        println!("\n==> bench server: round {round}/{}", opts.rounds);
        for (name, sample) in measure_round(&exes, round, &opts, &script, clk_tck)? {
            if let Some((_, v)) = samples.iter_mut().find(|(n, _)| *n == name) {
                v.push(sample);
            }
        }
    }

    let report = report(&samples, &opts);
    println!("\n{report}");
    save("server", &report);
    Ok(())
}

/// One round: every server started at once (each pinned to core 0, idle while another is
/// driven), then each load run against each server in turn, so the figures a ratio divides
/// are taken seconds apart rather than a whole server's run apart: this machine drifts by
/// tens of percent over minutes. The order rotates each round. The servers are killed when
/// they drop, whether this returns early or not.
fn measure_round(
    exes: &[(&'static str, PathBuf)],
    round: usize,
    opts: &Opts,
    script: &PipelineScript,
    clk_tck: u64,
) -> Result<Vec<(&'static str, Sample)>> {
    let mut started = Vec::new();
    for (name, exe) in exes {
        started.push(Server::start(name, exe, server_args(name))?);
    }
    let count = started.len();
    started.rotate_left((round - 1) % count);
    let loads = Load::all(script);
    let mut results: Vec<Vec<LoadResult>> = started.iter().map(|_| Vec::new()).collect();
    for load in &loads {
        for (server, results) in started.iter().zip(&mut results) {
            warn_if_busy();
            println!("{}: {}", server.name(), load.name());
            results.push(load::run_load(server, *load, opts.secs, clk_tck)?);
        }
    }
    started
        .iter()
        .zip(results)
        .map(|(server, r)| {
            let idle_bytes = load::idle_bytes_per_conn(server, IDLE_CONNS)?;
            println!("{}: {idle_bytes:.0} bytes per idle connection", server.name());
            let sample = Sample { plaintext: r[0], pipelined: r[1], json: r[2], idle_bytes };
            Ok((server.name(), sample))
        })
        .collect()
}

/// What the servers take besides `--port`: our example takes `--workers`; the peers are
/// single-worker by build.
pub(super) fn server_args(name: &str) -> &'static [&'static str] {
    if name == "tandem" { &["--workers", "1"] } else { &[] }
}

/// Two cores for the pinning, taskset and wrk on PATH, and enough file
/// descriptors for 5,000 connections on each side.
pub(super) fn check_machine() -> Result {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if cores < 2 {
        return Err(format!("needs 2 cores (server on 0, wrk on 1); this machine has {cores}"));
    }
    for tool in ["taskset", "setpriv"] {
        if !Cmd::new("sh").args(["-c", &format!("command -v {tool}")]).probe() {
            return Err(format!("{tool} not found (Debian package util-linux)"));
        }
    }
    if !Cmd::new("sh").args(["-c", "command -v wrk"]).probe() {
        peers::apt_install(&["wrk"])?;
    }
    raise_nofile()
}

/// Raises our own `RLIMIT_NOFILE` with prlimit(1) when it is too low for the
/// idle probe; servers started afterwards inherit it. (xtask forbids unsafe
/// code, so no setrlimit call of our own.) Raising the soft limit up to the
/// hard one needs no privilege; raising the hard one needs
/// `CAP_SYS_RESOURCE`, which even root may lack in a container.
fn raise_nofile() -> Result {
    let limits = fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let Some((soft, hard)) = parse_nofile(&limits) else {
        println!("note: cannot read the open-file limit; trying the idle probe anyway");
        return Ok(());
    };
    if soft >= NOFILE_NEEDED {
        return Ok(());
    }
    let pid = std::process::id().to_string();
    let limit = if hard >= NOFILE_NEEDED {
        format!("--nofile={}:", hard.min(NOFILE_RAISED))
    } else {
        format!("--nofile={NOFILE_RAISED}:{NOFILE_RAISED}")
    };
    Cmd::new("prlimit").args(["--pid", &pid, &limit]).run().map_err(|e| {
        format!(
            "{e}\n  the open-file limit (soft {soft}, hard {hard}) is below the {NOFILE_NEEDED} \
             the idle probe needs; raise it first, e.g. `ulimit -n {NOFILE_RAISED}` as root"
        )
    })
}

/// (soft, hard) from the `Max open files` line of /proc/PID/limits.
fn parse_nofile(limits: &str) -> Option<(u64, u64)> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut nums = line.split_whitespace().skip(3).map(|n| match n {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    });
    Some((nums.next()??, nums.next()??))
}

/// Builds what `servers` need and returns each one's executable.
pub(super) fn build(servers: &[&'static str]) -> Result<Vec<(&'static str, PathBuf)>> {
    let mut built = Vec::new();
    if servers.contains(&"tandem") {
        built.extend(cargo_build(&["--example", "bench_server"])?);
    }
    if servers.iter().any(|s| !matches!(*s, "tandem" | "actix-web")) {
        built.extend(cargo_build(&["--manifest-path", PEERS_MANIFEST])?);
    }
    if servers.contains(&"actix-web") {
        // Alone: its feature would reach the other peers' dependencies (see the manifest).
        let actix = ["--manifest-path", PEERS_MANIFEST, "--features", "actix", "--bin"];
        built.extend(cargo_build(&[&actix[..], &["actix_server"]].concat())?);
    }
    servers
        .iter()
        .map(|name| {
            let file = match *name {
                "tandem" => "bench_server",
                "hyper" => "hyper_server",
                "floor" => "tokio_floor",
                _ => "actix_server",
            };
            find_exe(&built, file).map(|exe| (*name, exe))
        })
        .collect()
}

/// The executable named `file` among those [`cargo_build`] returned.
pub(crate) fn find_exe(built: &[PathBuf], file: &str) -> Result<PathBuf> {
    built
        .iter()
        .find(|p| p.file_name().is_some_and(|f| f == file))
        .cloned()
        .ok_or(format!("cargo built no `{file}` executable"))
}

/// `cargo build --profile bench ARGS`, returning the executables cargo reports
/// (so a custom `CARGO_TARGET_DIR` or `build.target-dir` is honoured).
///
/// The bench profile (thin LTO, one codegen unit) is what `benches/peers` builds its release
/// with, so both sides of every comparison are compiled alike. Plain `--release` left ours
/// without LTO: keep-alive plaintext measured 12.61 against 12.33 CPU µs a request, medians
/// of three interleaved runs.
pub(super) fn cargo_build(args: &[&str]) -> Result<Vec<PathBuf>> {
    cargo_build_with(&["--profile", "bench"], args)
}

/// `cargo build [--release] ARGS`, returning the executables cargo reports.
pub(crate) fn cargo_build_profile(release: bool, args: &[&str]) -> Result<Vec<PathBuf>> {
    cargo_build_with(if release { &["--release"] } else { &[] }, args)
}

fn cargo_build_with(profile: &[&str], args: &[&str]) -> Result<Vec<PathBuf>> {
    let cmd = Cmd::cargo().arg("build").args(profile);
    let cmd = cmd.args(args).arg("--message-format=json-render-diagnostics");
    println!("$ {}", cmd.display());
    // Diagnostics and progress go to our stderr as usual; stdout is the JSON.
    let out = cmd
        .command()
        .stdout(Stdio::piped())
        .output()
        .map_err(|e| format!("could not start cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("`{}` failed ({})", cmd.display(), out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(json_executable)
        .map(PathBuf::from)
        .collect())
}

/// The `"executable"` path of a cargo `compiler-artifact` JSON line.
fn json_executable(line: &str) -> Option<String> {
    let key = "\"executable\":\"";
    let rest = &line[line.find(key)? + key.len()..];
    let mut path = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(path),
            '\\' => path.push(chars.next()?),
            c => path.push(c),
        }
    }
    None
}

/// Other work on the machine (a build, say) skews every number; say so.
/// The load average would count our own previous server and wrk, so this
/// samples how busy the CPUs are right now, over a quarter second.
pub(super) fn warn_if_busy() {
    let Some(a) = cpu_jiffies("cpu") else { return };
    std::thread::sleep(std::time::Duration::from_millis(250));
    let Some(b) = cpu_jiffies("cpu") else { return };
    let (busy, total) = (b.0.saturating_sub(a.0), b.1.saturating_sub(a.1));
    if total > 0 && busy * 10 > total {
        println!(
            "warning: the CPUs were {}% busy before this server started; something else is running, \
             so numbers will be noisy",
            busy * 100 / total
        );
    }
}

/// (busy, total) jiffies from the /proc/stat line named `cpu` (`"cpu"`: all CPUs; `"cpu1"`: one).
pub(super) fn cpu_jiffies(cpu: &str) -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.split_whitespace().next() == Some(cpu))?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal ...: idle and iowait are idle.
    let idle = fields.get(3)? + fields.get(4).unwrap_or(&0);
    let total: u64 = fields.iter().take(8).sum();
    Some((total - idle, total))
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 { v[mid] } else { f64::midpoint(v[mid - 1], v[mid]) }
}

/// Per-server medians, in table order.
struct Medians {
    cols: [f64; COLUMNS],
}

const COLUMNS: usize = 7;

/// Column `col` of the table, from one round's sample.
fn column(s: &Sample, col: usize) -> f64 {
    match col {
        0 => s.plaintext.req_per_sec,
        1 => s.plaintext.cpu_us_per_req,
        2 => s.pipelined.req_per_sec,
        3 => s.pipelined.cpu_us_per_req,
        4 => s.json.req_per_sec,
        5 => s.json.cpu_us_per_req,
        _ => s.idle_bytes,
    }
}

fn medians(samples: &[Sample]) -> Medians {
    Medians {
        cols: std::array::from_fn(|col| median(samples.iter().map(|s| column(s, col)).collect())),
    }
}

const PLAIN_US: usize = 1;
const PIPE_RPS: usize = 2;
const JSON_US: usize = 5;
const IDLE: usize = 6;

fn report(samples: &[(&str, Vec<Sample>)], opts: &Opts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## cargo xtask bench server: medians of {} round(s) (ratios: the median of each round's ratio), {} s per load, wrk -t1 -c64 on core 1, server on core 0\n",
        opts.rounds, opts.secs
    );
    let _ = writeln!(
        out,
        "| server | plaintext req/s | plaintext µs/req | pipelined({}) req/s | pipelined µs/req | json req/s | json µs/req | idle bytes/conn |",
        load::PIPELINE_DEPTH
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let meds: Vec<(&str, Medians)> = samples.iter().map(|(n, s)| (*n, medians(s))).collect();
    for (name, m) in &meds {
        let c = &m.cols;
        let _ = writeln!(
            out,
            "| {name} | {:.0} | {:.2} | {:.0} | {:.2} | {:.0} | {:.2} | {:.0} |",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6]
        );
    }
    let get =
        |name: &str, col: usize| meds.iter().find(|(n, _)| *n == name).map(|(_, m)| m.cols[col]);
    // The ratios divide figures of the same round, taken seconds apart, and report the
    // median of the rounds' ratios: the machine drifts between rounds more than the
    // servers differ.
    let rounds = |name: &str, col: usize| {
        samples
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.iter().map(|x| column(x, col)).collect::<Vec<f64>>())
    };
    let best_peer = |col: usize| {
        let peers = [rounds("hyper", col), rounds("actix-web", col)];
        peers
            .into_iter()
            .flatten()
            .reduce(|a, b| a.iter().zip(&b).map(|(a, b)| a.min(*b)).collect())
    };
    out.push('\n');
    paired_ratio(
        &mut out,
        "tandem pipelined req/s ÷ actix-web pipelined req/s",
        rounds("tandem", PIPE_RPS),
        rounds("actix-web", PIPE_RPS),
        Target::AtLeast(1.2),
    );
    paired_ratio(
        &mut out,
        "tandem plaintext µs/req ÷ min(hyper, actix-web)",
        rounds("tandem", PLAIN_US),
        best_peer(PLAIN_US),
        Target::AtMost(0.95),
    );
    paired_ratio(
        &mut out,
        "tandem json µs/req ÷ min(hyper, actix-web)",
        rounds("tandem", JSON_US),
        best_peer(JSON_US),
        Target::AtMost(0.95),
    );
    paired_ratio(
        &mut out,
        "tandem idle bytes/conn ÷ hyper idle bytes/conn",
        rounds("tandem", IDLE),
        rounds("hyper", IDLE),
        Target::AtMost(0.5),
    );
    above_floor(&mut out, "plaintext", PLAIN_US, get);
    above_floor(&mut out, "json", JSON_US, get);
    out
}

/// What Tandem and hyper spend per request above the floor, in one load: their HTTP layers.
fn above_floor(out: &mut String, load: &str, col: usize, get: impl Fn(&str, usize) -> Option<f64>) {
    let Some(floor) = get("floor", col) else { return };
    let _ = write!(out, "- {load} floor (tokio_floor, no HTTP): {floor:.2} µs/req");
    for name in ["tandem", "hyper"] {
        if let Some(us) = get(name, col) {
            let _ = write!(out, "; {name} +{:.2}", us - floor);
        }
    }
    out.push('\n');
}

#[derive(Clone, Copy)]
pub(super) enum Target {
    AtLeast(f64),
    AtMost(f64),
}

pub(super) fn ratio(
    out: &mut String,
    what: &str,
    ours: Option<f64>,
    theirs: Option<f64>,
    target: Target,
) {
    match (ours, theirs) {
        (Some(a), Some(b)) if b > 0.0 => verdict(out, what, a / b, target, ""),
        _ => not_measured(out, what),
    }
}

/// The median of the per-round ratios of `ours` to `theirs`, with each round's ratio.
pub(super) fn paired_ratio(
    out: &mut String,
    what: &str,
    ours: Option<Vec<f64>>,
    theirs: Option<Vec<f64>>,
    target: Target,
) {
    let ratios: Option<Vec<f64>> = ours.zip(theirs).and_then(|(ours, theirs)| {
        ours.iter().zip(&theirs).map(|(a, b)| (*b > 0.0).then(|| a / b)).collect()
    });
    match ratios {
        Some(ratios) if !ratios.is_empty() => {
            let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
            let detail = format!("; rounds: {}", each.join(", "));
            verdict(out, what, median(ratios), target, &detail);
        }
        _ => not_measured(out, what),
    }
}

fn verdict(out: &mut String, what: &str, r: f64, target: Target, detail: &str) {
    let (op, bound, met) = match target {
        Target::AtLeast(b) => ("≥", b, r >= b),
        Target::AtMost(b) => ("≤", b, r <= b),
    };
    let verdict = if met { "met" } else { "MISSED" };
    let _ = writeln!(out, "- {what}: {r:.2} (target {op} {bound}: {verdict}{detail})");
}

fn not_measured(out: &mut String, what: &str) {
    let _ =
        writeln!(out, "- {what}: n/a (not all of its servers were measured, or the divisor is 0)");
}

/// Keeps a copy under the gitignored bench-results/ as `KIND-UNIXSECS.md`,
/// for comparing runs later.
pub(super) fn save(kind: &str, report: &str) {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let path = PathBuf::from("bench-results").join(format!("{kind}-{secs}.md"));
    match fs::create_dir_all("bench-results").and_then(|()| fs::write(&path, report)) {
        Ok(()) => println!("saved to {}", path.display()),
        Err(e) => println!("note: could not save {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::{Target, json_executable, median, paired_ratio, parse, parse_nofile};

    use crate::test_args as args;

    #[test]
    fn options() {
        let o = parse(&[]).unwrap();
        assert_eq!((o.secs, o.rounds, o.only), (5, 3, None));
        let o = parse(&args(&["--secs", "3", "--rounds=1", "--only", "actix"])).unwrap();
        assert_eq!((o.secs, o.rounds, o.only), (3, 1, Some("actix-web")));
        assert_eq!(parse(&args(&["--only=hyper"])).unwrap().only, Some("hyper"));
        for bad in [&["--secs", "0"][..], &["--rounds"], &["--only", "nginx"], &["fast"]] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paired_ratios_take_the_median_of_the_rounds() {
        let mut out = String::new();
        let ours = Some(vec![1.0, 3.0, 2.0]);
        paired_ratio(&mut out, "x", ours.clone(), Some(vec![2.0; 3]), Target::AtMost(0.95));
        assert_eq!(out, "- x: 1.00 (target ≤ 0.95: MISSED; rounds: 0.50, 1.50, 1.00)\n");
        out.clear();
        paired_ratio(&mut out, "x", ours.clone(), Some(vec![4.0; 3]), Target::AtMost(0.95));
        assert!(out.starts_with("- x: 0.50 (target ≤ 0.95: met;"), "{out}");
        out.clear();
        paired_ratio(&mut out, "x", ours, Some(vec![2.0, 0.0, 2.0]), Target::AtLeast(1.2));
        assert!(out.contains("n/a"), "{out}");
    }

    #[test]
    fn nofile_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units
Max processes             95000                95000                processes
Max open files            1024                 524288               files
";
        assert_eq!(parse_nofile(limits), Some((1024, 524_288)));
        let unlimited = "Max open files            20000                unlimited            files";
        assert_eq!(parse_nofile(unlimited), Some((20_000, u64::MAX)));
        assert_eq!(parse_nofile("Max processes 1 1 processes"), None);
    }

    #[test]
    fn medians_and_cargo_json() {
        assert!((median(vec![3.0, 1.0, 2.0]) - 2.0).abs() < f64::EPSILON);
        assert!((median(vec![4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < f64::EPSILON);
        let line = r#"{"reason":"compiler-artifact","target":{"name":"hyper_server"},"executable":"/w/t/release/hyper_server","fresh":true}"#;
        assert_eq!(json_executable(line).as_deref(), Some("/w/t/release/hyper_server"));
        assert_eq!(json_executable(r#"{"reason":"build-finished","success":true}"#), None);
    }
}
