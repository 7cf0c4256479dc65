//! `cargo xtask bench proto-count`: instructions per request-head parse, ours beside raw
//! httparse, counted by callgrind.
//!
//! Each (parser, input) pair runs twice, for `FEW` and `MANY` iterations; the difference
//! divided by `MANY - FEW` is the cost of one parse, with start-up and the count of the
//! harness itself cancelled out. callgrind counts instructions, not time, so the figures
//! repeat exactly whatever else the machine is doing.

use std::{fmt::Write as _, path::Path};

use super::server::cargo_build;
use crate::{Cmd, Result};

const FEW: u64 = 1_000;
const MANY: u64 = 21_000;
const PARSERS: [&str; 3] = ["tandem", "httparse", "httparse_uninit"];
const INPUTS: [&str; 4] = ["wrk", "techempower", "browser", "32_headers"];

pub(crate) fn run() -> Result {
    crate::peers::apt_install(&["valgrind"])?;
    let exe = cargo_build(&["-p", "benches", "--bench", "proto_count"])?
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("proto_count")))
        .ok_or("cargo built no proto_count executable")?;
    let mut table = String::from(
        "| input | tandem Ir/parse | httparse Ir/parse | ratio | httparse (uninit) Ir/parse | ratio |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for input in INPUTS {
        let costs: Vec<f64> =
            PARSERS.iter().map(|parser| per_parse(&exe, parser, input)).collect::<Result<_>>()?;
        let _ = writeln!(
            table,
            "| {input} | {:.0} | {:.0} | {:.2}x | {:.0} | {:.2}x |",
            costs[0],
            costs[1],
            costs[0] / costs[1],
            costs[2],
            costs[0] / costs[2],
        );
    }
    println!("\n{table}");
    Ok(())
}

fn per_parse(exe: &Path, parser: &str, input: &str) -> Result<f64> {
    let few = instructions(exe, parser, input, FEW)?;
    let many = instructions(exe, parser, input, MANY)?;
    #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    Ok((many - few) as f64 / (MANY - FEW) as f64)
}

/// The total instructions callgrind collected for one run.
fn instructions(exe: &Path, parser: &str, input: &str, n: u64) -> Result<u64> {
    let cmd = Cmd::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(exe)
        .args([parser, input, &n.to_string()]);
    let out = cmd.command().output().map_err(|e| format!("could not start valgrind: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("`{}` failed: {stderr}", cmd.display()));
    }
    parse_collected(&stderr)
        .ok_or_else(|| format!("no `Collected :` line from callgrind: {stderr}"))
}

/// Reads `==123== Collected : 456789` from callgrind's report.
fn parse_collected(stderr: &str) -> Option<u64> {
    let line = stderr.lines().find(|l| l.contains("Collected :"))?;
    line.rsplit(':').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_collected_count() {
        let report =
            "==7== Events    : Ir\n==7== Collected : 123456\n==7==\n==7== I   refs:      123,456";
        assert_eq!(super::parse_collected(report), Some(123_456));
    }
}
