//! `cargo xtask bench server-count`: each server's instructions per request under
//! callgrind, for the three loads `bench server` times.
//!
//! On this kind of machine the CPU time per request drifts by tens of percent from one
//! minute to the next, and most of it is the kernel's socket work, the same for every
//! server. callgrind counts the instructions the server itself runs (user space only), and
//! the count repeats exactly whatever else the machine is doing: it isolates what an HTTP
//! layer costs, where `bench server` shows what it costs beside the kernel.
//!
//! Each server runs under callgrind (pinned to core 0, wrk on core 1 as in `bench server`).
//! A one-second load warms it up; its counters are zeroed, the load runs, and the counters
//! are dumped: the figure is the dumped total over the requests wrk completed.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use super::load::{self, Load, PipelineScript, Server};
use super::server::{self, SERVERS};
use crate::{Cmd, Result};

/// Seconds of each measured load (under callgrind a server runs about 50 times slower,
/// so this is some 30,000 requests).
const SECS: u64 = 4;
const OUT_DIR: &str = "target/callgrind";

pub(crate) fn run() -> Result {
    crate::peers::apt_install(&["valgrind"])?;
    server::check_machine()?;
    let exes = server::build(&SERVERS)?;
    let script = PipelineScript::write()?;
    fs::create_dir_all(OUT_DIR).map_err(|e| format!("creating {OUT_DIR}: {e}"))?;
    let loads = Load::all(&script);
    let mut counts: Vec<(&str, Vec<f64>)> = Vec::new();
    for (name, exe) in &exes {
        let per_load = loads.iter().map(|l| per_request(name, exe, *l)).collect::<Result<_>>()?;
        counts.push((name, per_load));
    }
    let report = report(&counts);
    println!("\n{report}");
    server::save("server-count", &report);
    Ok(())
}

/// The server's instructions per request under one load.
fn per_request(name: &'static str, exe: &Path, load: Load<'_>) -> Result<f64> {
    let out = PathBuf::from(OUT_DIR).join(format!("{name}-{}.out", load.name()));
    // Dumps on request go to OUT.1, OUT.2, ...; clear those of an earlier run.
    let dump = out.with_extension("out.1");
    let _ = fs::remove_file(&dump);
    let out_arg = format!("--callgrind-out-file={}", out.display());
    let wrapper = ["valgrind", "--tool=callgrind", &out_arg];
    let server = Server::start_under(name, &wrapper, exe, server::server_args(name))?;
    let clk_tck = load::clk_tck();
    load::run_load(&server, load, 1, clk_tck)?;
    let pid = server.pid().to_string();
    Cmd::new("callgrind_control").args(["--zero", &pid]).run()?;
    let measured = load::run_load(&server, load, SECS, clk_tck)?;
    Cmd::new("callgrind_control").args(["--dump", &pid]).run()?;
    drop(server);
    let text = fs::read_to_string(&dump).map_err(|e| format!("reading {}: {e}", dump.display()))?;
    let total = parse_totals(&text).ok_or_else(|| format!("no totals in {}", dump.display()))?;
    let per_request = load::to_f64(total) / load::to_f64(measured.requests);
    println!("  {name} {}: {per_request:.0} instructions a request", load.name());
    Ok(per_request)
}

/// The `totals: N` line of a callgrind dump.
fn parse_totals(dump: &str) -> Option<u64> {
    dump.lines().find_map(|l| l.strip_prefix("totals:")).and_then(|n| n.trim().parse().ok())
}

fn report(counts: &[(&str, Vec<f64>)]) -> String {
    let mut out = String::from(
        "## cargo xtask bench server-count: server instructions per request (callgrind), wrk -t1 -c64\n\n\
         | server | plaintext | pipelined | json |\n|---|---:|---:|---:|\n",
    );
    for (name, c) in counts {
        let _ = writeln!(out, "| {name} | {:.0} | {:.0} | {:.0} |", c[0], c[1], c[2]);
    }
    let row = |name: &str| counts.iter().find(|(n, _)| *n == name).map(|(_, c)| c);
    if let (Some(ours), Some(hyper)) = (row("tandem"), row("hyper")) {
        let ratios: Vec<String> =
            ours.iter().zip(hyper).map(|(a, b)| format!("{:.2}", a / b)).collect();
        let _ =
            writeln!(out, "\n- tandem ÷ hyper (plaintext, pipelined, json): {}", ratios.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse_totals;

    #[test]
    fn totals_line() {
        let dump = "version: 1\ncreator: callgrind-3.19.0\nsummary: 174041969\ntotals: 174041974\n";
        assert_eq!(parse_totals(dump), Some(174_041_974));
        assert_eq!(parse_totals("summary: 5\n"), None);
    }
}
