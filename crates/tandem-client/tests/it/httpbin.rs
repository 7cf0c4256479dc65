//! The client against httpbin under gunicorn, from the project's `.venv` (made by
//! `cargo xtask peers`): a real third-party server, as issue 4's "Proving it against
//! something real" asks.
//!
//! One gunicorn serves the whole module. It is started by the one test below, which checks
//! every endpoint in sequence and kills gunicorn when it ends (or panics), so no server
//! outlives the test binary.

use std::{
    fs::File,
    net::TcpListener as StdListener,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use http::StatusCode;
use serde_json::{Value, json};
use tandem_client::{
    ClientNext, ClientRequest, ClientSession, CookieJar, DigestAuth, FormData, Phase, USER_AGENT,
};
use tokio::{
    net::TcpStream,
    process::{Child, Command},
};

use crate::support::{ACCEPT_ENCODING, session, within};

/// How long gunicorn may take to boot before the test fails.
const STARTUP: Duration = Duration::from_secs(30);

/// httpbin under gunicorn on a free port; killed when dropped.
struct Httpbin {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Httpbin {
    async fn start() -> Httpbin {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let gunicorn = root.join(".venv/bin/gunicorn");
        assert!(gunicorn.exists(), "{} is missing: run `cargo xtask peers`", gunicorn.display());
        let port = StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("httpbin-gunicorn-{}.log", std::process::id()));
        let log_file = File::create(&log).unwrap();
        let child = Command::new(&gunicorn)
            .args(["-b", &format!("127.0.0.1:{port}"), "-w", "2"])
            // No control socket: its default path is shared by every gunicorn of the user.
            .args(["--no-control-socket", "--log-level", "warning", "--graceful-timeout", "3"])
            .arg("httpbin:app")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{} does not start ({e}): run `cargo xtask peers`", gunicorn.display())
            });
        let mut server = Httpbin { child, port, log };
        server.wait_ready().await;
        server
    }

    /// Polls until gunicorn accepts connections and a worker answers, failing fast if it
    /// exits and after [`STARTUP`] at most.
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("gunicorn exited ({status}): run `cargo xtask peers`\n{}", self.log());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "gunicorn did not listen in time\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Listening is the master's doing; a worker must also have booted to answer.
        let left = deadline.saturating_duration_since(Instant::now());
        let resp = tokio::time::timeout(left, session().get(&self.url("/status/204")).send())
            .await
            .unwrap_or_else(|_| panic!("no httpbin worker answered in time\n{}", self.log()))
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Httpbin {
    /// SIGINT is gunicorn's quick shutdown: the master stops its workers, even one asleep
    /// in `/delay`, and waits for them. Killing only the master would orphan the workers
    /// for seconds. The wait is bounded, with SIGKILL after it.
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.start_kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// GETs `url`, expecting 200, and returns the JSON body.
async fn get_json(s: &ClientSession, url: &str) -> Value {
    let mut resp = within(s.get(url).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{url}");
    within(resp.json()).await.unwrap()
}

#[tokio::test]
async fn against_httpbin() {
    let hb = Httpbin::start().await;
    let s = session();
    get_echoes_query_and_headers(&hb, &s).await;
    post_bodies(&hb, &s).await;
    basic_auth(&hb, &s).await;
    status_and_bytes(&hb, &s).await;
    redirects(&hb, &s).await;
    cookies(&hb, &s).await;
    // httpbin encodes these whatever was asked, so without decoders they stay encoded.
    if cfg!(feature = "compression") {
        decompression(&hb, &s).await;
    }
    streaming(&hb, &s).await;
    digest_auth(&hb).await;
    // Last: it keeps one of the two workers asleep for three seconds.
    delay_cut_short(&hb, &s).await;
}

async fn get_echoes_query_and_headers(hb: &Httpbin, s: &ClientSession) {
    let mut resp = within(
        s.get(&hb.url("/get"))
            .query(&[("a", "1"), ("a", "2 3"), ("b", "é")])
            .header("X-Tandem", "yes")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = within(resp.json()).await.unwrap();
    assert_eq!(v["args"], json!({"a": ["1", "2 3"], "b": "é"}));
    assert_eq!(v["headers"]["X-Tandem"], "yes");
    assert_eq!(v["headers"]["Accept-Encoding"], ACCEPT_ENCODING);
    assert_eq!(v["headers"]["User-Agent"], USER_AGENT);
}

async fn post_bodies(hb: &Httpbin, s: &ClientSession) {
    let body = json!({"n": 1, "s": "é", "list": [true, null]});
    let mut resp = within(s.post(&hb.url("/post")).json(&body).send()).await.unwrap();
    let v: Value = within(resp.json()).await.unwrap();
    assert_eq!(v["json"], body);
    assert_eq!(v["headers"]["Content-Type"], "application/json");

    let mut resp =
        within(s.post(&hb.url("/post")).form(&[("k", "v1"), ("k", "v2"), ("x", "y z&")]).send())
            .await
            .unwrap();
    let v: Value = within(resp.json()).await.unwrap();
    assert_eq!(v["form"], json!({"k": ["v1", "v2"], "x": "y z&"}));
    assert_eq!(v["headers"]["Content-Type"], "application/x-www-form-urlencoded");

    let form = FormData::new().text("field", "value").file(
        "upload",
        "hello.txt",
        "text/plain",
        &b"file contents\n"[..],
    );
    let mut resp = within(s.post(&hb.url("/post")).multipart(&form).send()).await.unwrap();
    let v: Value = within(resp.json()).await.unwrap();
    assert_eq!(v["form"], json!({"field": "value"}));
    assert_eq!(v["files"], json!({"upload": "file contents\n"}));
    assert!(
        v["headers"]["Content-Type"]
            .as_str()
            .unwrap()
            .starts_with("multipart/form-data; boundary="),
        "{v}"
    );
}

async fn basic_auth(hb: &Httpbin, s: &ClientSession) {
    let url = hb.url("/basic-auth/u/p");
    let resp = within(s.get(&url).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = within(s.get(&url).basic_auth("u", "wrong").send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let mut resp = within(s.get(&url).basic_auth("u", "p").send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = within(resp.json()).await.unwrap();
    assert_eq!(v, json!({"authenticated": true, "user": "u"}));
}

async fn status_and_bytes(hb: &Httpbin, s: &ClientSession) {
    let resp = within(s.get(&hb.url("/status/418")).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::IM_A_TEAPOT);
    let e = resp.error_for_status().unwrap_err();
    assert!(e.is_status() && !e.is_response(), "{e}");
    assert_eq!(e.status(), Some(StatusCode::IM_A_TEAPOT));
    assert_eq!(e.url().unwrap().path(), "/status/418");

    // The session-wide switch raises the same error from `send()` itself.
    let strict = ClientSession::builder().raise_for_status(true).build();
    let e = within(strict.get(&hb.url("/status/503")).send()).await.unwrap_err();
    assert_eq!(e.status(), Some(StatusCode::SERVICE_UNAVAILABLE), "{e}");

    let mut resp = within(s.get(&hb.url("/bytes/4096")).send()).await.unwrap();
    assert_eq!(resp.content_type(), "application/octet-stream");
    assert_eq!(within(resp.read()).await.unwrap().len(), 4096);
}

async fn redirects(hb: &Httpbin, s: &ClientSession) {
    let mut resp = within(s.get(&hb.url("/redirect/3")).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.url().path(), "/get");
    let hops: Vec<_> = resp.history().iter().map(|h| h.url().path().to_owned()).collect();
    assert_eq!(hops, ["/redirect/3", "/relative-redirect/2", "/relative-redirect/1"]);
    assert!(resp.history().iter().all(|h| h.status() == StatusCode::FOUND));
    let v: Value = within(resp.json()).await.unwrap();
    assert_eq!(v["url"], hb.url("/get"));

    let resp = within(s.get(&hb.url("/absolute-redirect/2")).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.url().path(), "/get");
    assert_eq!(resp.history().len(), 2);
    let location = resp.history()[0].headers()["location"].to_str().unwrap();
    assert_eq!(location, hb.url("/absolute-redirect/1"));

    let e = within(s.get(&hb.url("/redirect/3")).max_redirects(2).send()).await.unwrap_err();
    assert!(e.is_too_many_redirects() && e.is_redirect(), "{e}");

    let resp = within(s.get(&hb.url("/redirect/1")).allow_redirects(false).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert!(resp.history().is_empty());
}

async fn cookies(hb: &Httpbin, s: &ClientSession) {
    // The 302 sets the cookie; the jar sends it on the redirect it follows.
    let mut resp =
        within(s.get(&hb.url("/cookies/set")).query(&[("a", "b")]).send()).await.unwrap();
    assert_eq!(resp.history().len(), 1);
    assert_eq!(resp.url().path(), "/cookies");
    let v: Value = within(resp.json()).await.unwrap();
    assert_eq!(v, json!({"cookies": {"a": "b"}}));

    // And on later requests too.
    assert_eq!(get_json(s, &hb.url("/cookies")).await, json!({"cookies": {"a": "b"}}));

    // A session of its own starts with an empty jar.
    assert_eq!(get_json(&session(), &hb.url("/cookies")).await, json!({"cookies": {}}));

    let v = get_json(s, &hb.url("/cookies/delete?a")).await;
    assert_eq!(v, json!({"cookies": {}}));
}

async fn decompression(hb: &Httpbin, s: &ClientSession) {
    for (path, encoding, flag) in [
        ("/gzip", "gzip", "gzipped"),
        ("/deflate", "deflate", "deflated"),
        ("/brotli", "br", "brotli"),
    ] {
        let mut resp = within(s.get(&hb.url(path)).send()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-encoding"], encoding, "{path}");
        let v: Value = within(resp.json()).await.unwrap();
        assert_eq!(v[flag], true, "{path}: {v}");
    }
}

async fn streaming(hb: &Httpbin, s: &ClientSession) {
    let mut resp = within(s.get(&hb.url("/stream/5")).send()).await.unwrap();
    let mut ids = Vec::new();
    loop {
        let line = within(resp.content().readline()).await.unwrap();
        if line.is_empty() {
            break;
        }
        assert_eq!(line.last(), Some(&b'\n'));
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["url"], hb.url("/stream/5"));
        ids.push(v["id"].as_u64().unwrap());
    }
    assert_eq!(ids, [0, 1, 2, 3, 4]);

    // Five bytes, one every 200 ms: they arrive as they are sent, not all at the end.
    let started = Instant::now();
    let mut resp =
        within(s.get(&hb.url("/drip")).query(&[("numbytes", "5"), ("duration", "1")]).send())
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = within(resp.content().chunk()).await.unwrap() {
        body.extend_from_slice(&chunk);
        chunks += 1;
    }
    assert_eq!(body, b"*****");
    assert!(chunks >= 2, "the drip came in {chunks} chunk(s)");
    assert!(started.elapsed() >= Duration::from_millis(500), "{:?}", started.elapsed());
}

async fn delay_cut_short(hb: &Httpbin, s: &ClientSession) {
    let started = Instant::now();
    let e = within(s.get(&hb.url("/delay/3")).total_timeout(Duration::from_millis(300)).send())
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert_eq!(e.timeout_phase(), Some(Phase::Total));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(2), "{took:?}");
}

/// `DigestAuth` against httpbin's `/digest-auth/{qop}/{user}/{passwd}/{algorithm}[/{stale_after}]`:
/// each algorithm httpbin has and both qops, challenged once then preemptive; wrong
/// credentials; and a nonce httpbin declares stale after one use.
async fn digest_auth(hb: &Httpbin) {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    let sends = Arc::new(AtomicUsize::new(0));
    let count = sends.clone();
    // Inside the digest middleware: counts what reaches httpbin.
    let counted = move |req: ClientRequest, next: ClientNext| {
        count.fetch_add(1, Ordering::SeqCst);
        next.run(req)
    };
    let counted = Arc::new(counted);
    // httpbin keeps its stale-nonce state in cookies.
    let digest_session = |password: &str| {
        ClientSession::builder()
            .cookie_jar(CookieJar::unsafe_hosts())
            .middleware(DigestAuth::new("user", password))
            .build()
    };
    let get = |s: &ClientSession, path: &str| {
        let counted = counted.clone();
        let req = s
            .get(&hb.url(path))
            .middleware(move |req: ClientRequest, next: ClientNext| counted(req, next));
        async move {
            let mut resp = within(req.send()).await.unwrap();
            let status = resp.status();
            let body = within(resp.text()).await.unwrap();
            (status, body)
        }
    };
    for qop in ["auth", "auth-int"] {
        for alg in ["MD5", "SHA-256", "SHA-512"] {
            let s = digest_session("passwd");
            let path = format!("/digest-auth/{qop}/user/passwd/{alg}");
            sends.store(0, Ordering::SeqCst);
            let (status, body) = get(&s, &path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body, json!({"authenticated": true, "user": "user"}));
            assert_eq!(sends.load(Ordering::SeqCst), 2, "{path}: challenged, then answered");
            let (status, _) = get(&s, &path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(sends.load(Ordering::SeqCst), 3, "{path}: preemptive");
        }
    }

    let s = digest_session("wrong");
    sends.store(0, Ordering::SeqCst);
    let (status, _) = get(&s, "/digest-auth/auth/user/passwd/MD5").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(sends.load(Ordering::SeqCst), 2);

    // Stale after one use: the second request's preemptive credentials meet a stale
    // challenge, and are sent again with the new nonce.
    let s = digest_session("passwd");
    sends.store(0, Ordering::SeqCst);
    let path = "/digest-auth/auth/user/passwd/MD5/1";
    assert_eq!(get(&s, path).await.0, StatusCode::OK);
    assert_eq!(sends.load(Ordering::SeqCst), 2);
    assert_eq!(get(&s, path).await.0, StatusCode::OK);
    assert_eq!(sends.load(Ordering::SeqCst), 4, "preemptive, stale, answered");
}
