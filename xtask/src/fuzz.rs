//! `cargo xtask fuzz [--secs N] [--sanitizer S] [TARGET...]`: run the
//! cargo-fuzz targets in `fuzz/` for a bounded time each.
//!
//! `fuzz/` is a cargo-fuzz crate with its own `[workspace]` (and so its own
//! `fuzz/target/`), outside the main workspace because it builds with
//! sanitizer flags that would otherwise invalidate the main build cache.
//!
//! The machine's toolchain is stable only. cargo-fuzz 0.13 passes
//! `-Zsanitizer=address` for its default sanitizer, which stable rustc
//! rejects; `RUSTC_BOOTSTRAP=1` lets the stable compiler accept it, and the
//! address-sanitizer runtime ships with stable's rust-std, so it really
//! links and runs.
//! Everything else cargo-fuzz needs (`-Cpasses=sancov-module`, the coverage
//! `-Cllvm-args`, `--cfg fuzzing`) is stable, so `--sanitizer none` needs no
//! bootstrap at all.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use crate::{Cmd, Result, arg_parser, bad_arg, fmt_duration};

const DEFAULT_SECS: u64 = 60;
const FUZZ_DIR: &str = "fuzz";

struct Opts {
    secs: u64,
    sanitizer: String,
    targets: Vec<String>,
}

const USAGE: &str = "cargo xtask fuzz [--secs N] [--sanitizer address|none] [TARGET...]";

fn parse(args: &[String]) -> Result<Opts> {
    use lexopt::prelude::*;
    let mut opts = Opts { secs: DEFAULT_SECS, sanitizer: "address".into(), targets: Vec::new() };
    let mut parser = arg_parser(args);
    let text = |value: std::ffi::OsString| value.to_string_lossy().into_owned();
    while let Some(arg) = parser.next().map_err(|e| bad_arg(&e, USAGE))? {
        match arg {
            Long("secs") => {
                let v = text(parser.value().map_err(|e| bad_arg(&e, USAGE))?);
                opts.secs =
                    v.parse().map_err(|_| format!("--secs wants whole seconds, got `{v}`"))?;
            }
            Long("sanitizer") => {
                opts.sanitizer = text(parser.value().map_err(|e| bad_arg(&e, USAGE))?);
            }
            Value(target) => opts.targets.push(text(target)),
            _ => return Err(bad_arg(&arg.unexpected(), USAGE)),
        }
    }
    Ok(opts)
}

pub(crate) fn run(args: &[String]) -> Result {
    let opts = parse(args)?;
    if !Path::new(FUZZ_DIR).join("Cargo.toml").exists() {
        return Err("fuzz/Cargo.toml does not exist: there is no fuzz crate yet".into());
    }
    let all = list_targets()?;
    let targets = if opts.targets.is_empty() {
        all
    } else {
        if let Some(bad) = opts.targets.iter().find(|t| !all.contains(t)) {
            return Err(format!("no fuzz target `{bad}`; targets are: {}", all.join(", ")));
        }
        opts.targets.clone()
    };
    if targets.is_empty() {
        return Err("fuzz/fuzz_targets/ holds no *.rs targets".into());
    }
    ensure_cargo_fuzz()?;

    let mut results: Vec<(String, String)> = Vec::new();
    for target in &targets {
        println!("\n==> fuzz: {target} for {} s", opts.secs);
        let t = Instant::now();
        let outcome = seed_corpus(target).and_then(|corpus| run_target(target, &corpus, &opts));
        match outcome {
            Ok(done) => {
                results.push((target.clone(), format!("{done}  ({})", fmt_duration(t.elapsed()))));
            }
            Err(e) => {
                results.push((target.clone(), "FAILED".into()));
                summary(&results);
                return Err(format!(
                    "fuzz target `{target}` failed: {e}\n  crash inputs, if any, are in fuzz/artifacts/{target}/; \
                     replay one with: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz {target} fuzz/artifacts/{target}/<file>"
                ));
            }
        }
    }
    summary(&results);
    Ok(())
}

/// Target names are the file stems in `fuzz/fuzz_targets/` (cargo-fuzz's
/// convention: `cargo fuzz add NAME` writes `fuzz_targets/NAME.rs`).
fn list_targets() -> Result<Vec<String>> {
    let dir = Path::new(FUZZ_DIR).join("fuzz_targets");
    let entries = fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
        .collect();
    names.sort();
    Ok(names)
}

fn ensure_cargo_fuzz() -> Result {
    if Cmd::cargo().args(["fuzz", "--version"]).probe() {
        return Ok(());
    }
    // --locked: cargo-fuzz's own lockfile, so a new release of one of its
    // dependencies cannot break the install.
    Cmd::cargo().args(["install", "cargo-fuzz", "--locked"]).run()
}

/// `fuzz/corpus/<target>` is scratch (gitignored) and grows as the fuzzer
/// finds new paths; it starts from the committed `fuzz/seeds/<target>/`.
/// Seeds are copied in, not passed as a second corpus dir, so libFuzzer's
/// input reduction can never rewrite a committed file.
fn seed_corpus(target: &str) -> Result<PathBuf> {
    let corpus = Path::new(FUZZ_DIR).join("corpus").join(target);
    fs::create_dir_all(&corpus).map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
    let seeds = Path::new(FUZZ_DIR).join("seeds").join(target);
    let Ok(entries) = fs::read_dir(&seeds) else {
        println!("note: no {} to seed from; starting from an empty corpus", seeds.display());
        return Ok(corpus);
    };
    let mut copied = 0;
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let Some(name) = path.file_name() else {
            continue;
        };
        let dest = corpus.join(name);
        if path.is_file() && !dest.exists() {
            fs::copy(&path, &dest).map_err(|e| {
                format!("cannot copy {} to {}: {e}", path.display(), dest.display())
            })?;
            copied += 1;
        }
    }
    println!("seeded {} with {copied} new file(s) from {}", corpus.display(), seeds.display());
    Ok(corpus)
}

/// Runs one target and returns libFuzzer's final `#N DONE ... exec/s: R` line.
fn run_target(target: &str, corpus: &Path, opts: &Opts) -> Result<String> {
    let mut cmd = Cmd::cargo();
    if opts.sanitizer != "none" {
        // See the module comment: stable rustc accepts -Zsanitizer only so.
        cmd = cmd.env("RUSTC_BOOTSTRAP", "1");
    }
    let cmd = cmd
        .args(["fuzz", "run", "--fuzz-dir", FUZZ_DIR])
        // -O alone would drop cargo-fuzz's default -Cdebug-assertions; -a
        // keeps them, so overflows and debug_asserts are crashes while fuzzing.
        .args(["--release", "--debug-assertions"])
        .args(["--sanitizer", &opts.sanitizer])
        .arg(target)
        .arg(corpus)
        .arg("--")
        .arg(format!("-max_total_time={}", opts.secs));

    println!("$ {}", cmd.display());
    // libFuzzer reports on stderr: echo it live and keep the DONE line.
    let mut child = cmd
        .command()
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start `{}`: {e}", cmd.display()))?;
    let mut done = None;
    if let Some(stderr) = child.stderr.take() {
        let mut reader = BufReader::new(stderr);
        let mut line = Vec::new();
        let mut out = std::io::stderr().lock();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let _ = out.write_all(&line);
                    let text = String::from_utf8_lossy(&line);
                    // e.g. "#1239839\tDONE   cov: 20 ft: 33 ... exec/s: 206639 rss: 179Mb"
                    if text.starts_with('#') && text.contains("DONE") {
                        done = Some(text.split_whitespace().collect::<Vec<_>>().join(" "));
                    }
                }
            }
        }
    }
    let status = child.wait().map_err(|e| format!("waiting for cargo fuzz: {e}"))?;
    if !status.success() {
        return Err(format!("`{}` failed ({status})", cmd.display()));
    }
    done.ok_or_else(|| "cargo fuzz exited 0 but libFuzzer printed no `DONE` line".into())
}

fn summary(results: &[(String, String)]) {
    println!("\n==> fuzz: summary");
    for (target, line) in results {
        println!("  {target:<16} {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    use crate::test_args as args;

    #[test]
    fn defaults_and_flags() {
        let o = parse(&[]).unwrap();
        assert_eq!((o.secs, o.sanitizer.as_str()), (60, "address"));
        assert!(o.targets.is_empty());

        let o = parse(&args(&["--secs", "5", "chunked", "--sanitizer=none", "x"])).unwrap();
        assert_eq!((o.secs, o.sanitizer.as_str()), (5, "none"));
        assert_eq!(o.targets, ["chunked", "x"]);

        assert!(parse(&args(&["--secs"])).is_err());
        assert!(parse(&args(&["--secs=soon"])).is_err());
        assert!(parse(&args(&["--bogus"])).is_err());
    }
}
