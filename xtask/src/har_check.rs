//! `cargo xtask har-check` (and the last step of `cargo xtask e2e`): HAR files recorded by
//! `examples/fetch --har`, over plain HTTP and HTTPS, parsed by the HAR parser of Chromium's
//! `DevTools` (`HARFormat.ts` from the `chrome-devtools-frontend` npm package, behind the
//! Network panel's "Import HAR"), run under node by `xtask/assets/har-check.mjs`.
//!
//! The packages are pinned and fetched with `npm pack` into `target/har-check` once; the
//! parser is TypeScript, so TypeScript's own transpiler (also pinned) strips its types.

use std::{
    fs,
    path::{Path, PathBuf},
};

use crate::{
    Cmd, Result,
    bench::{
        Server, path_str,
        server::{cargo_build_profile, find_exe},
    },
    peers,
};

/// The `DevTools` front end whose HAR parser is the reference, pinned.
const DEVTOOLS: &str = "chrome-devtools-frontend@1.0.1705227";
/// The transpiler that strips the parser's types.
const TYPESCRIPT: &str = "typescript@5.6.3";
const WORK_DIR: &str = "target/har-check";

pub(crate) fn run() -> Result {
    peers::ensure_commands(&[("nodejs", "node"), ("npm", "npm"), ("openssl", "openssl")])?;
    let dir = Path::new(WORK_DIR);
    let har_format = unpack(dir, DEVTOOLS, "package/front_end/models/har/HARFormat.ts")?;
    let typescript = unpack(dir, TYPESCRIPT, "package/lib/typescript.js")?;

    let built = cargo_build_profile(false, &["--example", "fetch", "--example", "bench_server"])?;
    let (fetch, bench_server) = (find_exe(&built, "fetch")?, find_exe(&built, "bench_server")?);
    let tls = crate::bench::tls_scratch()?;
    let (cert, key) = (tls.path().join("cert.pem"), tls.path().join("key.pem"));
    let plain = Server::start("bench_server", &bench_server, &["--workers", "1"])?;
    let tls_args = ["--workers", "1", "--tls-cert", path_str(&cert)?, "--tls-key", path_str(&key)?];
    let https = Server::start("bench_server (TLS)", &bench_server, &tls_args)?;

    let mut check = Cmd::new("node").arg("xtask/assets/har-check.mjs").arg(&typescript);
    check = check.arg(&har_format);
    for (name, url) in [
        ("http.har", format!("http://127.0.0.1:{}/json", plain.port())),
        ("https.har", format!("https://localhost:{}/plaintext", https.port())),
    ] {
        let har = dir.join(name);
        Cmd::new(&fetch).args(["--insecure", "--har"]).arg(&har).arg(&url).capture()?;
        check = check.arg(har);
    }
    check.run()
}

/// `file` of the npm package `spec`, fetched and unpacked under `dir` unless it already is.
fn unpack(dir: &Path, spec: &str, file: &str) -> Result<PathBuf> {
    let into = dir.join(spec.replace('@', "-"));
    let path = into.join(file);
    if path.is_file() {
        return Ok(path);
    }
    fs::create_dir_all(&into).map_err(|e| format!("cannot create {}: {e}", into.display()))?;
    let tarball = Cmd::new("npm")
        .args(["pack", "--silent", spec, "--pack-destination"])
        .arg(&into)
        .capture()?;
    Cmd::new("tar")
        .arg("-xzf")
        .arg(into.join(tarball.trim()))
        .arg("-C")
        .arg(&into)
        .arg(file)
        .run()?;
    Ok(path)
}
