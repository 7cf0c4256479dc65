//! Independent clients against the server: curl, and Python's aiohttp client from the
//! project's `.venv` (made by `cargo xtask peers`). Each runs as a subprocess, bounded by a
//! timeout. Their uploads are multipart forms, so they need the `multipart` feature.
#![cfg(feature = "multipart")]

use std::{path::Path, process::Output, time::Duration};

use tandem_web::{Application, CookieOptions, Error, FormValue, HttpError, Request, Response};

use crate::support::Server;

/// How long one client process may run.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// FNV-1a, to compare uploaded bytes without sending them back.
fn fnv(data: &[u8]) -> u64 {
    data.iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn app() -> Application {
    let mut app = Application::new();
    app.add_get("/hello", |_req: Request| async { "Hello, client" });
    app.add_post("/form", |mut req: Request| async move {
        let form = req.post().await?;
        let tags: Vec<&str> = form.get_all("tag").collect();
        Ok::<_, HttpError>(Response::text(format!(
            "name={};tags={}",
            form.get("name").unwrap_or("-"),
            tags.join(",")
        )))
    });
    app.add_post("/upload", |mut req: Request| async move {
        let mut out = Vec::new();
        for (name, value) in req.post().await? {
            out.push(match value {
                FormValue::Text(text) => format!("{name}={text}"),
                FormValue::Bytes(bytes) => format!("{name}=<{} bytes>", bytes.len()),
                FormValue::File(mut file) => {
                    let data = file.read_to_end().await?;
                    format!(
                        "{name}={}:{}:{}:{:x}",
                        file.filename(),
                        file.content_type(),
                        data.len(),
                        fnv(&data)
                    )
                }
            });
        }
        Ok::<_, Error>(Response::text(out.join(";")))
    });
    app.add_get("/login", |_req: Request| async {
        let mut response = Response::text("logged in");
        let options = CookieOptions::default().with_httponly(true);
        response.set_cookie("session", "s3cret value", &options)?;
        Ok::<_, Error>(response)
    });
    app.add_get("/whoami", |req: Request| async move {
        Response::text(format!("session={}", req.cookie("session").unwrap_or("none")))
    });
    app
}

/// Upload data with every byte value, so nothing is mangled as text.
fn upload_file(dir: &Path) -> (std::path::PathBuf, Vec<u8>) {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let path = dir.join("data.bin");
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

async fn run(program: &str, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(program);
    command.args(args).kill_on_drop(true);
    let output = tokio::time::timeout(PROCESS_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{program} did not finish in time"))
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

async fn curl(args: &[&str]) -> String {
    let mut all = vec!["-sS", "--max-time", "30"];
    all.extend_from_slice(args);
    String::from_utf8(run("curl", &all).await.stdout).unwrap()
}

#[tokio::test]
async fn curl_get_form_upload_cookies_and_404() {
    let server = Server::start(app()).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = upload_file(dir.path());

    assert_eq!(curl(&[&server.url("/hello")]).await, "Hello, client");
    assert_eq!(
        curl(&["-d", "name=ann lee", "-d", "tag=a", "-d", "tag=b&c", &server.url("/form")]).await,
        "name=ann lee;tags=a,b"
    );
    assert_eq!(
        curl(&["--data-urlencode", "name=a&b", &server.url("/form")]).await,
        "name=a&b;tags="
    );
    let file_arg = format!("file=@{};type=application/x-test", path.display());
    assert_eq!(
        curl(&["-F", "note=hi there", "-F", &file_arg, &server.url("/upload")]).await,
        format!("note=hi there;file=data.bin:application/x-test:{}:{:x}", data.len(), fnv(&data))
    );

    let jar = dir.path().join("jar.txt");
    let jar = jar.to_str().unwrap();
    assert_eq!(curl(&["-c", jar, &server.url("/login")]).await, "logged in");
    assert_eq!(curl(&["-b", jar, &server.url("/whoami")]).await, "session=s3cret value");
    assert_eq!(curl(&[&server.url("/whoami")]).await, "session=none");

    let status = curl(&["-o", "/dev/null", "-w", "%{http_code}", &server.url("/missing")]).await;
    assert_eq!(status, "404");
    server.stop().await;
}

const AIOHTTP_CLIENT: &str = r#"
import asyncio, json, sys
import aiohttp

async def main(base, path):
    out = {}
    # Cookies from an IP-address host are kept only by an "unsafe" jar.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.get(base + "/hello") as r:
            out["get"] = [r.status, await r.text()]
        async with s.post(base + "/form", data=[("name", "ann"), ("tag", "x"), ("tag", "y")]) as r:
            out["form"] = [r.status, await r.text()]
        with open(path, "rb") as f:
            form = aiohttp.FormData()
            form.add_field("note", "from aiohttp")
            form.add_field("file", f, filename="data.bin", content_type="application/octet-stream")
            async with s.post(base + "/upload", data=form) as r:
                out["upload"] = [r.status, await r.text()]
        async with s.get(base + "/login") as r:
            out["login"] = [r.status, await r.text()]
        async with s.get(base + "/whoami") as r:
            out["whoami"] = [r.status, await r.text()]
        async with s.get(base + "/missing") as r:
            out["missing"] = [r.status, await r.text()]
    print(json.dumps(out))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"#;

#[tokio::test]
async fn aiohttp_client_get_form_upload_cookies_and_404() {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");
    assert!(
        Path::new(python).exists(),
        "{python} is missing: run `cargo xtask peers` to install aiohttp for the interop tests"
    );
    let server = Server::start(app()).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = upload_file(dir.path());
    let base = server.url("");
    let output = run(python, &["-c", AIOHTTP_CLIENT, &base, path.to_str().unwrap()]).await;
    let out: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));

    assert_eq!(out["get"], serde_json::json!([200, "Hello, client"]));
    assert_eq!(out["form"], serde_json::json!([200, "name=ann;tags=x,y"]));
    let upload = format!(
        "note=from aiohttp;file=data.bin:application/octet-stream:{}:{:x}",
        data.len(),
        fnv(&data)
    );
    assert_eq!(out["upload"], serde_json::json!([200, upload]));
    assert_eq!(out["login"], serde_json::json!([200, "logged in"]));
    assert_eq!(out["whoami"], serde_json::json!([200, "session=s3cret value"]));
    assert_eq!(out["missing"], serde_json::json!([404, "404: Not Found"]));
    server.stop().await;
}
