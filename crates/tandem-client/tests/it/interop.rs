//! Interop with Python's aiohttp server from the project's `.venv` (made by
//! `cargo xtask peers`).

use std::{path::PathBuf, process::Stdio};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::support::{session, within};

/// aiohttp's server, stopped when dropped.
struct Aiohttp {
    _child: Child,
    port: u16,
}

impl Aiohttp {
    async fn start() -> Aiohttp {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = root.join(".venv/bin/python");
        assert!(python.exists(), "{} is missing: run `cargo xtask peers`", python.display());
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/interop.py");
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        within(BufReader::new(stdout).read_line(&mut line)).await.unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            panic!("aiohttp did not print its port ({line:?}): run `cargo xtask peers`")
        });
        Aiohttp { _child: child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

#[tokio::test]
async fn against_aiohttp_server() {
    let server = Aiohttp::start().await;
    let s = session();

    let mut resp = within(s.get(&server.url("/hello")).send()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.reason(), "OK");
    assert_eq!(within(resp.text()).await.unwrap(), "Hello from aiohttp");

    let mut resp = within(
        s.post(&server.url("/echo"))
            .query(&[("a", "1 2"), ("a", "é")])
            .json(&serde_json::json!({"x": 1}))
            .send(),
    )
    .await
    .unwrap();
    let v: Value = within(resp.json()).await.unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["query"], "a=1+2&a=%C3%A9");
    assert_eq!(v["body"], r#"{"x":1}"#);
    assert_eq!(v["headers"]["content-type"], "application/json");

    // aiohttp compresses only what the session says it can decode.
    let mut resp = within(s.get(&server.url("/compressed")).send()).await.unwrap();
    assert_eq!(resp.headers().contains_key("content-encoding"), cfg!(feature = "compression"));
    assert_eq!(within(resp.text()).await.unwrap(), "aiohttp ".repeat(5000));

    let mut resp = within(s.get(&server.url("/stream")).send()).await.unwrap();
    let mut lines = 0;
    loop {
        let line = within(resp.content().readline()).await.unwrap();
        if line.is_empty() {
            break;
        }
        assert_eq!(line, format!("line {lines}\n").as_bytes());
        lines += 1;
    }
    assert_eq!(lines, 100);

    within(s.get(&server.url("/cookie")).send()).await.unwrap();
    let mut resp = within(s.post(&server.url("/redirect")).body("x").send()).await.unwrap();
    assert_eq!(resp.history().len(), 1);
    let v: Value = within(resp.json()).await.unwrap();
    assert_eq!(v["method"], "GET");
    assert!(v["headers"]["cookie"].as_str().unwrap().starts_with("aio="));
}
