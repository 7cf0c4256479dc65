//! `cargo xtask bench build [--rounds R]`: what a user waits for the first time they build a
//! hello-world server, Tandem beside axum.
//!
//! Three scratch projects under `target/bench-build/`, each the ten-line server of its
//! README: axum 0.8 (with tokio's `macros` and `rt-multi-thread`), Tandem with
//! `default-features = false, features = ["server"]`, and Tandem with its default features.
//! Their sources are fetched first (`cargo fetch`, which may use the network); then each
//! round builds the three in turn, cold (their own `CARGO_TARGET_DIR`, emptied first), in
//! debug and `--offline`, so a figure is compile time alone. Tandem's crates, path
//! dependencies here, are compiled without incremental state, as published crates would be.
//! Tandem's projects start from the workspace's `Cargo.lock`, so they build the versions the
//! workspace tests; axum's lock is made on the first run and kept. The table shows each
//! project's median wall time and CPU time (of cargo and every compiler it ran, which other
//! load on the machine stretches far less than the wall time), the crates it compiled, and
//! its ratios to axum, each the median of the rounds' own ratios (other work on the machine
//! drifts between rounds more than within one). Targets, on wall time: server-only at most
//! 1.3× axum, default at most 2.5×. Each build also writes cargo's `--timings` report, the
//! place to look for what weighs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::load;
use super::server::{self, median};
use crate::{Cmd, Result, arg_parser, bad_arg, positive};

const USAGE: &str = "cargo xtask bench build [--rounds R]";

/// Where the scratch projects live (under the ignored `target/`).
const DIR: &str = "target/bench-build";

/// A hello-world project: its folder under [`DIR`], its label, its `[dependencies]`, its
/// `main.rs`, and its target ratio to axum (none for axum itself).
struct Project {
    dir: &'static str,
    label: &'static str,
    dependencies: fn(&Path) -> String,
    main: &'static str,
    target: Option<f64>,
}

const AXUM_MAIN: &str = r#"use axum::{Router, extract::Path, routing::get};

async fn hello(name: Option<Path<String>>) -> String {
    let name = name.map_or_else(|| "Anonymous".to_owned(), |Path(name)| name);
    format!("Hello, {name}")
}

#[tokio::main]
async fn main() {
    let app = Router::new().route("/", get(hello)).route("/hello/{name}", get(hello));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
    axum::serve(listener, app).await.unwrap();
}
"#;

/// README.md's ten-line server.
const TANDEM_MAIN: &str = r#"use tandem_http::web::{Application, Request, Response, run_app};

async fn hello(req: Request) -> Response {
    let name = req.match_info("name").unwrap_or("Anonymous");
    Response::text(format!("Hello, {name}"))
}

fn main() -> Result<(), tandem_http::web::Error> {
    let mut app = Application::new();
    app.add_get("/", hello);
    app.add_get("/hello/{name}", hello);
    run_app(app, "127.0.0.1", 8080)
}
"#;

const PROJECTS: [Project; 3] = [
    Project {
        dir: "axum",
        label: "axum 0.8",
        dependencies: |_| {
            "axum = \"0.8\"\ntokio = { version = \"1\", features = [\"macros\", \"rt-multi-thread\"] }\n"
                .to_owned()
        },
        main: AXUM_MAIN,
        target: None,
    },
    Project {
        dir: "tandem-server",
        label: "Tandem, server only",
        dependencies: |facade| {
            format!(
                "tandem-http = {{ path = '{}', default-features = false, features = [\"server\"] }}\n",
                facade.display()
            )
        },
        main: TANDEM_MAIN,
        target: Some(1.3),
    },
    Project {
        dir: "tandem-default",
        label: "Tandem, default features",
        dependencies: |facade| format!("tandem-http = {{ path = '{}' }}\n", facade.display()),
        main: TANDEM_MAIN,
        target: Some(2.5),
    },
];

/// One cold build's outcome.
struct Built {
    secs: f64,
    /// CPU time of cargo and every compiler it ran: the work, which other load on the
    /// machine stretches far less than the wall time.
    cpu_secs: f64,
    crates: usize,
}

pub(crate) fn run(args: &[String]) -> Result {
    use lexopt::prelude::*;
    let mut rounds = 1;
    let mut parser = arg_parser(args);
    while let Some(arg) = parser.next().map_err(|e| bad_arg(&e, USAGE))? {
        match arg {
            Long("rounds") => rounds = positive(&mut parser, "--rounds")?,
            _ => return Err(bad_arg(&arg.unexpected(), USAGE)),
        }
    }
    // main() has made the workspace root the working directory.
    let root = std::env::current_dir().map_err(|e| e.to_string())?;
    let facade = root.join("crates").join("tandem-http");
    for project in &PROJECTS {
        let dir = write_project(&root, project, &facade)?;
        Cmd::cargo().arg("fetch").arg("--manifest-path").arg(dir.join("Cargo.toml")).run()?;
    }
    let clk_tck = load::clk_tck();
    // samples[project]: one a round.
    let mut samples: Vec<Vec<Built>> = PROJECTS.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        println!("\n==> bench build: round {round}/{rounds}");
        for (project, samples) in PROJECTS.iter().zip(&mut samples) {
            samples.push(cold_build(&root.join(DIR).join(project.dir), clk_tck)?);
        }
    }
    let report = report(&samples, rounds);
    println!("\n{report}");
    server::save("build", &report);
    Ok(())
}

/// Writes the project's manifest and `main.rs` (and, for Tandem, the workspace's lock).
fn write_project(root: &Path, project: &Project, facade: &Path) -> Result<PathBuf> {
    let dir = root.join(DIR).join(project.dir);
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(|e| format!("create {}: {e}", src.display()))?;
    // `[workspace]`: a project of its own, not a stray member of ours above it. The profile
    // override: Tandem's crates are path dependencies here, which cargo compiles
    // incrementally (saving query results for a rebuild that never comes), while it never
    // does so for a registry crate, as `tandem-http = "0.1"` from crates.io would be; so every
    // dependency builds as in a user's project. axum's are registry crates, unaffected.
    let manifest = format!(
        "[package]\nname = \"hello\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\n{}\n[workspace]\n\n[profile.dev.package.\"*\"]\nincremental = false\n",
        (project.dependencies)(facade)
    );
    let write = |path: PathBuf, text: &str| {
        std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))
    };
    write(dir.join("Cargo.toml"), &manifest)?;
    write(src.join("main.rs"), project.main)?;
    if project.dir.starts_with("tandem") {
        let lock = dir.join("Cargo.lock");
        std::fs::copy(root.join("Cargo.lock"), &lock)
            .map_err(|e| format!("copy Cargo.lock to {}: {e}", lock.display()))?;
    }
    Ok(dir)
}

/// Builds the project in `dir` from an empty target folder, offline, and times it.
fn cold_build(dir: &Path, clk_tck: u64) -> Result<Built> {
    let target = dir.join("target");
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(|e| format!("empty {}: {e}", target.display()))?;
    }
    let cmd = Cmd::cargo()
        .args(["build", "--offline", "--timings", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target);
    println!("$ {}", cmd.display());
    let load_before = load_average();
    let cpu_before = load::waited_children_cpu_ticks()?;
    let start = Instant::now();
    let out = cmd.command().output().map_err(|e| format!("could not start cargo: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    let cpu_secs =
        load::to_f64(load::waited_children_cpu_ticks()? - cpu_before) / load::to_f64(clk_tck);
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("`{}` failed ({}):\n{log}", cmd.display(), out.status));
    }
    // One `Compiling` line a package, the project itself included.
    let crates = log.lines().filter(|l| l.trim_start().starts_with("Compiling ")).count();
    println!(
        "{secs:.1} s ({cpu_secs:.1} s CPU), {crates} crates; load average {load_before} before, \
         {} after; timings: {}",
        load_average(),
        target.join("cargo-timings").join("cargo-timing.html").display()
    );
    Ok(Built { secs, cpu_secs, crates })
}

/// The one-minute load average, which says how much else the two cores were doing.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn report(samples: &[Vec<Built>], rounds: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## bench build: a hello-world server, cold debug build, medians of {rounds} round(s)\n"
    );
    let _ = writeln!(
        out,
        "| project | wall s | CPU s | crates | × axum (wall) | × axum (CPU) | target (wall) |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let axum = &samples[0];
    for (project, built) in PROJECTS.iter().zip(samples) {
        let secs = median(built.iter().map(|b| b.secs).collect());
        let cpu = median(built.iter().map(|b| b.cpu_secs).collect());
        let crates = built.last().map_or(0, |b| b.crates);
        let ratio = median(built.iter().zip(axum).map(|(b, a)| b.secs / a.secs).collect());
        let cpu_ratio =
            median(built.iter().zip(axum).map(|(b, a)| b.cpu_secs / a.cpu_secs).collect());
        let target = project.target.map_or_else(String::new, |t| {
            format!("≤ {t:.1}: {}", if ratio <= t { "met" } else { "MISSED" })
        });
        let _ = writeln!(
            out,
            "| {} | {secs:.1} | {cpu:.1} | {crates} | {ratio:.2} | {cpu_ratio:.2} | {target} |",
            project.label
        );
    }
    let rounds_line = samples
        .iter()
        .map(|b| b.iter().map(|b| format!("{:.1}", b.secs)).collect::<Vec<_>>().join(", "))
        .collect::<Vec<_>>()
        .join(" / ");
    let _ = writeln!(out, "\nEach round's seconds (axum / server only / default): {rounds_line}");
    out
}
