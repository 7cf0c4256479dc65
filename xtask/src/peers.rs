//! `cargo xtask peers`: install the real programs the tests talk to.
//!
//! Tandem is tested against real peers (aiohttp itself, httpbin, curl, wrk),
//! not only against itself. CI runs on a fresh machine where nothing installed
//! by hand survives, so this step must install everything, and it runs on every
//! `cargo xtask ci`, so when all is present it must only look, not install:
//! a handful of cheap probes and no network.

use std::path::Path;

use crate::{Cmd, Result};

/// The aiohttp the interop tests run against. 3.14.5 was the newest 3.x on
/// `PyPI` when this was pinned (`pip index versions aiohttp`). Pinned exactly
/// so a new aiohttp release can never turn CI red on its own; bump it on
/// purpose, in its own commit.
pub(crate) const AIOHTTP_VERSION: &str = "3.14.5";

/// httpbin, served by gunicorn, for tandem-client's tests against a real
/// third-party server (`crates/tandem-client/tests/it/httpbin.rs`). Both were
/// the newest on `PyPI` when pinned (`pip index versions httpbin`); httpbin
/// 0.10 runs on modern Python with the flask and werkzeug it declares, and
/// pulls in brotlicffi for `/brotli`. Pinned exactly for the same reason as
/// aiohttp.
const HTTPBIN_VERSION: &str = "0.10.4";
const GUNICORN_VERSION: &str = "27.0.1";

/// Python's websockets, an independent WebSocket client for tandem-ws's interop tests;
/// the newest on `PyPI` when pinned.
const WEBSOCKETS_VERSION: &str = "17.4";

/// Python's httpx with its HTTP/2 extra (the `h2` library), a second HTTP/2 client for
/// tandem-web's h2c tests (`crates/tandem-web/tests/it/h2.rs`); both the newest on `PyPI`
/// when pinned.
const HTTPX_VERSION: &str = "0.29.0";
const PY_H2_VERSION: &str = "4.4.1";

/// The Python environment for aiohttp and httpbin, at the project root
/// (gitignored).
const VENV: &str = ".venv";

/// How to tell that an apt package's job is already done without apt.
#[derive(Clone, Copy)]
enum Probe {
    /// The package provides this command on PATH (`command -v`).
    Command(&'static str),
    /// dpkg says the package is installed, for packages with no command of
    /// their own on PATH (postgresql's are in `/usr/lib/postgresql/<version>/bin`).
    Installed,
    /// `python3 -m venv` can create the project's venv. python3 here may be
    /// a pyenv build that has venv built in, in which case Debian's
    /// python3-venv is not needed at all.
    Venv,
}

struct AptPeer {
    package: &'static str,
    probe: Probe,
}

/// Every Debian package the tests need, in one place. A later peer is one
/// more entry: `Probe::Command` for a package with a command of its own,
/// `Probe::Installed` for one without (`postgresql`, whose commands are off PATH).
const APT_PEERS: &[AptPeer] = &[
    // HTTP/1.1 client other than our own, for interop and smoke tests.
    AptPeer { package: "curl", probe: Probe::Command("curl") },
    // `openssl s_client`, a TLS client other than rustls, for the HTTPS server's ALPN, SNI
    // and client-certificate tests.
    AptPeer { package: "openssl", probe: Probe::Command("openssl") },
    // Load generator for server throughput checks on loopback.
    AptPeer { package: "wrk", probe: Probe::Command("wrk") },
    // `nghttp`, an HTTP/2 client other than curl, for the server's h2c tests (several
    // streams on one connection, an upload cut short with a 413).
    AptPeer { package: "nghttp2-client", probe: Probe::Command("nghttp") },
    // `nghttpd`, an HTTP/2 server other than our own and hyper's, for tandem-client's HTTP/2
    // tests over TLS (ALPN) and h2c.
    AptPeer { package: "nghttp2-server", probe: Probe::Command("nghttpd") },
    // A real DNS server on loopback for tandem-connect's custom-nameserver test.
    AptPeer { package: "dnsmasq-base", probe: Probe::Command("dnsmasq") },
    // A real HTTP proxy on loopback for tandem-connect's CONNECT tunnel test.
    AptPeer { package: "tinyproxy-bin", probe: Probe::Command("tinyproxy") },
    // Session storage for tandem-session's Redis tests and the polls scale-out test.
    AptPeer { package: "redis-server", probe: Probe::Command("redis-server") },
    // The load balancer in front of two polls instances in the scale-out test.
    AptPeer { package: "nginx", probe: Probe::Command("nginx") },
    // The polls demo's PostgreSQL backend test, which runs initdb and postgres itself.
    AptPeer { package: "postgresql", probe: Probe::Installed },
    // For the .venv that holds aiohttp; only if python3 cannot make one.
    AptPeer { package: "python3-venv", probe: Probe::Venv },
];

pub(crate) fn run() -> Result {
    let mut venv_ready = venv_healthy();
    let mut missing = Vec::new();
    for peer in APT_PEERS {
        let present = match peer.probe {
            Probe::Command(cmd) => has_command(cmd),
            Probe::Installed => dpkg_installed(peer.package),
            Probe::Venv => {
                // Trying is the only reliable test: Debian's python3 imports
                // `venv` fine but fails at ensurepip without python3-venv.
                if !venv_ready {
                    venv_ready = create_venv().is_ok();
                    if !venv_ready {
                        println!("peers: python3 cannot make a venv yet; installing python3-venv");
                    }
                }
                venv_ready
            }
        };
        if !present {
            missing.push(peer.package);
        }
    }

    if missing.is_empty() {
        println!("peers: apt packages present");
    } else {
        apt_install(&missing)?;
    }

    if !venv_ready {
        create_venv()?;
    }
    install_aiohttp()?;
    install_httpbin()?;
    install_websockets()?;
    install_httpx()?;
    println!(
        "peers: ready (aiohttp {AIOHTTP_VERSION}, websockets {WEBSOCKETS_VERSION}, httpbin {HTTPBIN_VERSION}, \
         gunicorn {GUNICORN_VERSION}, httpx {HTTPX_VERSION} with h2 {PY_H2_VERSION} in {VENV})"
    );
    Ok(())
}

fn has_command(cmd: &str) -> bool {
    Cmd::new("sh").arg("-c").arg(format!("command -v {cmd}")).probe()
}

/// Installs those of `needed` (apt package, the command it provides) whose command is
/// missing: for peers that only `cargo xtask e2e` uses, such as the browser CI never runs.
pub(crate) fn ensure_commands(needed: &[(&str, &str)]) -> Result {
    let missing: Vec<&str> =
        needed.iter().filter(|(_, cmd)| !has_command(cmd)).map(|(package, _)| *package).collect();
    if missing.is_empty() { Ok(()) } else { apt_install(&missing) }
}

/// Installs those of `packages` that dpkg does not list as installed: for the peers of
/// `cargo xtask e2e` with no command on PATH (`postgresql`).
pub(crate) fn ensure_packages(packages: &[&str]) -> Result {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !dpkg_installed(p)).collect();
    if missing.is_empty() { Ok(()) } else { apt_install(&missing) }
}

fn dpkg_installed(package: &str) -> bool {
    // `dpkg -s` also succeeds for a removed package whose config files remain,
    // so ask for the status word itself.
    let status = Cmd::new("dpkg-query").args(["-W", "-f=${db:Status-Status}", package]).read();
    let ok = status.as_deref() == Some("installed");
    println!("? dpkg-query -W {package} -> {}", if ok { "installed" } else { "no" });
    ok
}

pub(crate) fn apt_install(packages: &[&str]) -> Result {
    println!("peers: missing apt packages: {}", packages.join(" "));
    if Cmd::new("sh").args(["-c", "command -v apt-get"]).read().is_none() {
        return Err(format!("apt-get not found; install these by hand: {}", packages.join(" ")));
    }
    // CI runs as root; a developer may not be, and then sudo asks once.
    let root = Cmd::new("id").arg("-u").read().as_deref() == Some("0");
    let apt = |args: &[&str]| {
        let cmd = if root { Cmd::new("apt-get") } else { Cmd::new("sudo").arg("apt-get") };
        // CI has no stdin: a debconf prompt would hang or fail the run.
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args)
    };
    // The package lists may be stale or absent on a fresh machine.
    apt(&["update"]).run()?;
    apt(&["install", "-y", "--no-install-recommends"]).args(packages).run()
}

pub(crate) fn venv_python() -> String {
    format!("{VENV}/bin/python")
}

/// The venv exists and its interpreter runs. A venv whose base Python was
/// removed (a pyenv version gone, a machine image changed) fails this and is
/// rebuilt with `--clear`.
fn venv_healthy() -> bool {
    Path::new(&venv_python()).exists() && Cmd::new(venv_python()).args(["-c", "import sys"]).probe()
}

fn create_venv() -> Result {
    Cmd::new("python3").args(["-m", "venv", "--clear", VENV]).run()
}

fn install_aiohttp() -> Result {
    let version = || {
        Cmd::new(venv_python()).args(["-c", "import aiohttp; print(aiohttp.__version__)"]).read()
    };
    install_pinned("aiohttp", AIOHTTP_VERSION, version, &[format!("aiohttp=={AIOHTTP_VERSION}")])
}

/// What the venv's httpbin and gunicorn are, as `"<httpbin> <gunicorn>"`, or
/// `None` if either fails to import (importing, not only asking pip's
/// metadata, catches a broken dependency such as a werkzeug httpbin cannot
/// load).
fn httpbin_versions() -> Option<String> {
    Cmd::new(venv_python())
        .args([
            "-c",
            "import httpbin, gunicorn; from importlib.metadata import version; \
             print(version('httpbin'), version('gunicorn'))",
        ])
        .read()
}

fn install_httpbin() -> Result {
    install_pinned(
        "httpbin, gunicorn",
        &format!("{HTTPBIN_VERSION} {GUNICORN_VERSION}"),
        httpbin_versions,
        &[format!("httpbin=={HTTPBIN_VERSION}"), format!("gunicorn=={GUNICORN_VERSION}")],
    )
}

fn install_websockets() -> Result {
    let version = || {
        Cmd::new(venv_python())
            .args(["-c", "import websockets; print(websockets.__version__)"])
            .read()
    };
    install_pinned(
        "websockets",
        WEBSOCKETS_VERSION,
        version,
        &[format!("websockets=={WEBSOCKETS_VERSION}")],
    )
}

fn install_httpx() -> Result {
    let versions = || {
        Cmd::new(venv_python())
            .args(["-c", "import httpx, h2; print(httpx.__version__, h2.__version__)"])
            .read()
    };
    install_pinned(
        "httpx, h2",
        &format!("{HTTPX_VERSION} {PY_H2_VERSION}"),
        versions,
        &[format!("httpx[http2]=={HTTPX_VERSION}"), format!("h2=={PY_H2_VERSION}")],
    )
}

/// Installs `requirements` with pip unless `installed()` already answers `want`, then
/// checks the answer again rather than trusting pip's exit code alone.
fn install_pinned(
    what: &str,
    want: &str,
    installed: impl Fn() -> Option<String>,
    requirements: &[String],
) -> Result {
    let found = installed();
    println!("? {VENV} {what} version -> {}", found.as_deref().unwrap_or("not installed"));
    if found.as_deref() == Some(want) {
        return Ok(());
    }
    Cmd::new(venv_python())
        .args(["-m", "pip", "install", "--disable-pip-version-check"])
        .args(requirements)
        .env("PIP_NO_INPUT", "1")
        .run()?;
    let now = installed();
    if now.as_deref() == Some(want) {
        Ok(())
    } else {
        Err(format!("after pip install, {VENV} has {what} {now:?}, want {want}"))
    }
}
