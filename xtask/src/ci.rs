//! `cargo xtask ci`: every check CI runs, in CI's order.
//!
//! `.ci/run` prepares PATH, turns incremental builds off and debug info down to line tables
//! (CI's disk is shared), and then execs this, so a green `cargo xtask ci` on a developer
//! machine means a green CI run; under `CI` the steps also give back disk they are done with.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::{Cmd, Result, autobahn, fmt_duration, peers};

/// What a step does: an in-process function or an external command.
enum Action {
    Func(fn() -> Result),
    Run(Cmd),
    /// Skipped with a note printed in its place.
    Skip(&'static str),
}

struct Step {
    name: &'static str,
    action: Action,
}

fn steps() -> Vec<Step> {
    let cargo = |args: &[&str]| Action::Run(Cmd::cargo().args(args));
    vec![
        // Peers first: tests may start aiohttp or curl against our code.
        Step { name: "peers", action: Action::Func(peers::run) },
        Step { name: "fmt", action: cargo(&["fmt", "--all", "--check"]) },
        Step {
            name: "clippy",
            action: cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
        },
        // The facade's features gate code in the crates below it, and nothing else builds
        // those crates lean, so the gates would rot unseen. Clippy costs what `check` does
        // and also fails on an import that a gate left unused.
        Step { name: "features (clippy)", action: Action::Func(lean_builds) },
        // A user's crate resolves our dependencies afresh, to their newest compatible
        // versions: a deprecation there (rustls 0.23.48 deprecated a function we call) would
        // warn in their build before ours. Checked with a copy of the workspace whose lock
        // file is updated, so ours stays as it is.
        Step { name: "fresh dependencies", action: Action::Func(fresh_dependencies) },
        Step { name: "test", action: cargo(&["test", "--workspace"]) },
        // WebSocket conformance, both sides, on the groups that take seconds; the whole
        // suite is `cargo xtask autobahn` (about half an hour).
        Step {
            name: "autobahn (quick)",
            action: Action::Func(|| autobahn::run(&["--quick".to_owned()])),
        },
        // The parser's tests again with overflow checks off (release profile).
        // aiohttp's CVE-2025-69227 was a guard that held only while Python's
        // asserts were on (`python -O` strips them, leaving a DoS). Rust's
        // analogue is arithmetic that panics in debug but wraps in release, so
        // the parser is tested both ways.
        Step {
            name: "test proto (release)",
            action: cargo(&["test", "-p", "tandem-proto", "--release"]),
        },
        Step {
            name: "doc",
            action: Action::Run(
                Cmd::cargo()
                    .args(["doc", "--workspace", "--no-deps"])
                    .env("RUSTDOCFLAGS", "-D rustdoc::broken-intra-doc-links -D warnings"),
            ),
        },
        // Every published crate packages and builds from its package alone: no doc test or
        // include_str! reaches outside its folder, and each crate's dependencies on the others
        // resolve among the packages being made.
        Step { name: "package", action: Action::Func(package) },
        // Benches rot silently when nobody runs them; building them is cheap.
        Step { name: "bench (build only)", action: cargo(&["bench", "--workspace", "--no-run"]) },
        // fuzz/ is its own workspace (cargo-fuzz's layout), so `--workspace`
        // above never sees it; check it compiles on its own. Plain stable
        // `check` is enough here: no sanitizer, no libFuzzer run.
        Step {
            name: "fuzz (check)",
            action: if Path::new("fuzz/Cargo.toml").exists() {
                cargo(&["check", "--manifest-path", "fuzz/Cargo.toml"])
            } else {
                Action::Skip("fuzz/Cargo.toml does not exist yet")
            },
        },
    ]
}

/// The facade with only the wire protocol, with a bare client (no TLS, hickory or decoders),
/// and with a bare server (no encoders, HTTP/2 or multipart), each also with WebSockets on
/// that side alone; then each crate that has features with none of them, its tests too (a
/// test may need a gate of its own). One crate a run: in one run a dev-dependency's features
/// would turn the others' back on.
fn lean_builds() -> Result {
    let lean: [&[&str]; 5] = [
        &[],
        &["--features", "client"],
        &["--features", "server"],
        &["--features", "client,ws"],
        &["--features", "server,ws"],
    ];
    for features in lean {
        Cmd::cargo()
            .args(["clippy", "-p", "tandem-http", "--no-default-features"])
            .args(features)
            .args(["--", "-D", "warnings"])
            .run()?;
    }
    for krate in ["tandem-io", "tandem-web", "tandem-client", "tandem-connect", "tandem-ws"] {
        Cmd::cargo()
            .args(["clippy", "-p", krate, "--no-default-features", "--all-targets"])
            .args(["--", "-D", "warnings"])
            .run()?;
    }
    Ok(())
}

/// Where [`fresh_dependencies`] copies the workspace, and builds it (a target folder of its
/// own, kept between runs, as every dependency is built with `-D warnings` flags).
const FRESH_DIR: &str = "target/fresh-deps";

/// `cargo check` of every target with warnings denied, in a copy of the workspace (its
/// tracked and untracked-but-not-ignored files) whose dependencies `cargo update` moved to
/// their newest compatible versions.
fn fresh_dependencies() -> Result {
    let copy = Path::new(FRESH_DIR).join("workspace");
    let _ = std::fs::remove_dir_all(&copy);
    let listed = Cmd::new("git")
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .capture()?;
    for file in listed.split('\0').filter(|f| !f.is_empty()) {
        let (from, to) = (Path::new(file), copy.join(file));
        // A tracked file deleted in the working tree is listed but gone.
        if !from.is_file() {
            continue;
        }
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        }
        std::fs::copy(from, &to).map_err(|e| format!("copy {file}: {e}"))?;
    }
    let manifest = copy.join("Cargo.toml");
    Cmd::cargo().arg("update").arg("--manifest-path").arg(&manifest).run()?;
    Cmd::cargo()
        .args(["check", "--workspace", "--all-targets", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", Path::new(FRESH_DIR).join("target"))
        .env("RUSTFLAGS", "-D warnings")
        .run()?;
    // Kept locally to make the next run quick; in CI (a fresh clone, a shared disk) its
    // gigabyte is better given back to the steps that follow.
    if in_ci() {
        std::fs::remove_dir_all(FRESH_DIR).map_err(|e| format!("remove {FRESH_DIR}: {e}"))?;
    }
    Ok(())
}

/// Whether this is a CI run (CI machines set `CI`), whose disk is shared and whose clone is
/// thrown away afterwards.
fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// `cargo package` for every crate under `crates/` (the published ones; a crate's folder is
/// its package's name), together, so that the unpublished crates' packages stand in for
/// crates.io, and verified (each is built from its `.crate`).
fn package() -> Result {
    let mut packages = Vec::new();
    for entry in std::fs::read_dir("crates").map_err(|e| format!("read crates/: {e}"))? {
        let path = entry.map_err(|e| format!("read crates/: {e}"))?.path();
        if path.join("Cargo.toml").exists()
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            packages.push(name.to_owned());
        }
    }
    packages.sort();
    // Cargo unpacks the packages it verifies into `$CARGO_HOME/registry/src/-HASH/NAME-VERSION`
    // and reuses that copy on the next run at the same version, so a later run would build a
    // crate against its dependencies as an earlier run packaged them. Remove our copies first.
    let cargo_home = std::env::var_os("CARGO_HOME").map(std::path::PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|home| std::path::PathBuf::from(home).join(".cargo"))
    });
    if let Some(src) = cargo_home.map(|home| home.join("registry").join("src"))
        && let Ok(registries) = std::fs::read_dir(&src)
    {
        for registry in registries.flatten() {
            // Overlay registries of local packages are the ones named `-HASH`.
            if !registry.file_name().to_string_lossy().starts_with('-') {
                continue;
            }
            for unpacked in std::fs::read_dir(registry.path()).into_iter().flatten().flatten() {
                let name = unpacked.file_name().to_string_lossy().into_owned();
                if packages.iter().any(|p| name.starts_with(&format!("{p}-"))) {
                    std::fs::remove_dir_all(unpacked.path())
                        .map_err(|e| format!("remove {}: {e}", unpacked.path().display()))?;
                }
            }
        }
    }
    // Cargo also takes a registry crate's build for fresh whatever its source now says: it
    // lists no source files to compare (the dep-info of a path crate lists its `src/` files;
    // a registry crate's lists none). Drop the builds of our packages that an earlier run
    // verified, found that way, and keep every other build.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| std::path::PathBuf::from("target"), std::path::PathBuf::from);
    let fingerprints = target.join("debug").join(".fingerprint");
    for entry in std::fs::read_dir(&fingerprints).into_iter().flatten().flatten() {
        if !entry.file_name().to_string_lossy().starts_with("tandem-") {
            continue;
        }
        let from_registry =
            std::fs::read_dir(entry.path()).into_iter().flatten().flatten().any(|file| {
                file.file_name().to_string_lossy().starts_with("dep-lib-")
                    && std::fs::read(file.path())
                        .is_ok_and(|info| !info.windows(4).any(|w| w == b"src/"))
            });
        if from_registry {
            std::fs::remove_dir_all(entry.path())
                .map_err(|e| format!("remove {}: {e}", entry.path().display()))?;
        }
    }
    let mut cmd = Cmd::cargo().args(["package", "--allow-dirty"]);
    for name in &packages {
        cmd = cmd.args(["-p", name]);
    }
    cmd.run()
}

pub(crate) fn run() -> Result {
    let start = Instant::now();
    let mut done: Vec<(&str, Duration, &str)> = Vec::new();
    for step in steps() {
        println!("\n==> ci: {}", step.name);
        let t = Instant::now();
        let outcome = match &step.action {
            Action::Func(f) => f(),
            Action::Run(cmd) => cmd.run(),
            Action::Skip(why) => {
                println!("skipped: {why}");
                done.push((step.name, t.elapsed(), "skipped"));
                continue;
            }
        };
        if in_ci() {
            // The disk left after each step, so a full disk names the step that filled it.
            let _ = Cmd::new("df").args(["-h", "."]).run();
        }
        match outcome {
            Ok(()) => done.push((step.name, t.elapsed(), "ok")),
            Err(e) => {
                done.push((step.name, t.elapsed(), "FAILED"));
                summary(&done, start.elapsed());
                return Err(format!("ci step `{}` failed: {e}", step.name));
            }
        }
    }
    summary(&done, start.elapsed());
    println!("ci: all steps passed");
    Ok(())
}

fn summary(done: &[(&str, Duration, &str)], total: Duration) {
    println!("\n==> ci: elapsed per step");
    for (name, d, outcome) in done {
        println!("  {name:<22} {:>9}  {outcome}", fmt_duration(*d));
    }
    println!("  {:<22} {:>9}", "total", fmt_duration(total));
}
