//! `DigestAuth` against a Tandem server that checks RFC 7616 itself: every algorithm and
//! its `-sess` form, `auth` and `auth-int`, a nonce going stale, preemptive reuse inside
//! the protection space and not outside it, and credentials pinned to the first origin.
//! (httpbin's `/digest-auth` endpoints are in `httpbin.rs`.)

use std::fmt::Write as _;
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use bytes::Bytes;
use http::StatusCode;
use sha2::Digest as _;
use tandem_client::{ClientNext, ClientRequest, ClientSession, DigestAuth};
use tandem_web::{Application, Request, Response};

use crate::support::{Server, within};

const USER: &str = "Mufasa";
const PASSWORD: &str = "Circle of Life";
const REALM: &str = "http-auth@example.org";

/// What the server asks for and how it has been answered.
struct Auth {
    algorithm: &'static str,
    qop: &'static str,
    domain: Option<&'static str>,
    /// The nonce is replaced after this many successful uses.
    stale_after: usize,
    nonce: u32,
    uses: usize,
    last_nc: u32,
    /// Every request: its path and whether it carried `Authorization`.
    seen: Vec<(String, bool)>,
}

impl Auth {
    fn new(algorithm: &'static str, qop: &'static str) -> Arc<Mutex<Auth>> {
        Arc::new(Mutex::new(Auth {
            algorithm,
            qop,
            domain: None,
            stale_after: usize::MAX,
            nonce: 1,
            uses: 0,
            last_nc: 0,
            seen: Vec::new(),
        }))
    }

    /// A 401 with a fresh nonce, as servers give one per challenge.
    fn challenge(&mut self, stale: bool) -> Response {
        self.nonce += 1;
        self.uses = 0;
        self.last_nc = 0;
        let mut value = format!(
            "Digest realm=\"{REALM}\", nonce=\"n{}\", opaque=\"op\", algorithm={}, stale={stale}",
            self.nonce, self.algorithm
        );
        if !self.qop.is_empty() {
            let _ = write!(value, ", qop=\"{}\"", self.qop);
        }
        if let Some(domain) = self.domain {
            let _ = write!(value, ", domain=\"{domain}\"");
        }
        // An unrelated scheme first: the client must pick the Digest one.
        Response::text("no")
            .with_status(StatusCode::UNAUTHORIZED)
            .with_header("www-authenticate", "Basic realm=\"other\"")
            .append_header("www-authenticate", &value)
    }
}

fn h(algorithm: &str, data: &[u8]) -> String {
    let base = algorithm.to_ascii_uppercase();
    let base = base.trim_end_matches("-SESS");
    let digest: Vec<u8> = match base {
        "MD5" => md5_rustcrypto::Md5::digest(data).to_vec(),
        "SHA-256" => sha2::Sha256::digest(data).to_vec(),
        "SHA-512-256" => sha2::Sha512_256::digest(data).to_vec(),
        other => panic!("unknown algorithm {other}"),
    };
    digest.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The `name=value` pairs of a `Digest` credentials field (values without quotes; this
/// server's values hold no commas or escapes).
fn params(value: &str) -> Vec<(String, String)> {
    value
        .strip_prefix("Digest ")
        .unwrap()
        .split(", ")
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

/// Checks the request's credentials as RFC 7616 §3.4 says; a 401 unless they hold.
async fn guarded(mut req: Request, auth: Arc<Mutex<Auth>>) -> Response {
    let body = req.read().await.unwrap_or_default();
    let authorization = req.header("authorization").map(str::to_owned);
    let mut auth = auth.lock().unwrap();
    let path = match req.query_string() {
        "" => req.raw_path().to_owned(),
        q => format!("{}?{q}", req.raw_path()),
    };
    auth.seen.push((path, authorization.is_some()));
    let Some(authorization) = authorization else { return auth.challenge(false) };
    let p = params(&authorization);
    let get = |k: &str| p.iter().find(|(n, _)| n == k).map_or("", |(_, v)| v.as_str());
    if get("nonce") != format!("n{}", auth.nonce) {
        return auth.challenge(true);
    }
    let alg = auth.algorithm;
    assert_eq!(get("algorithm"), alg);
    assert_eq!((get("username"), get("realm"), get("opaque")), (USER, REALM, "op"));
    let target = match req.query_string() {
        "" => req.raw_path().to_owned(),
        q => format!("{}?{q}", req.raw_path()),
    };
    assert_eq!(get("uri"), target);
    let mut ha1 = h(alg, format!("{USER}:{REALM}:{PASSWORD}").as_bytes());
    if alg.ends_with("-sess") {
        ha1 = h(alg, format!("{ha1}:{}:{}", get("nonce"), get("cnonce")).as_bytes());
    }
    let method = req.method().as_str();
    let ha2 = if get("qop") == "auth-int" {
        h(alg, format!("{method}:{}:{}", get("uri"), h(alg, &body)).as_bytes())
    } else {
        h(alg, format!("{method}:{}", get("uri")).as_bytes())
    };
    let expected = if get("qop").is_empty() {
        h(alg, format!("{ha1}:{}:{ha2}", get("nonce")).as_bytes())
    } else {
        let nc = u32::from_str_radix(get("nc"), 16).unwrap();
        // A nonce count that does not go up is a replay.
        if nc <= auth.last_nc {
            return auth.challenge(false);
        }
        auth.last_nc = nc;
        let tail = format!("{}:{}:{}:{}:{ha2}", get("nonce"), get("nc"), get("cnonce"), get("qop"));
        h(alg, format!("{ha1}:{tail}").as_bytes())
    };
    if get("response") != expected {
        return auth.challenge(false);
    }
    auth.uses += 1;
    if auth.uses >= auth.stale_after {
        auth.nonce += 1;
        auth.uses = 0;
        auth.last_nc = 0;
    }
    Response::text(format!("in with {}", get("qop")))
}

fn app(auth: &Arc<Mutex<Auth>>) -> Application {
    let mut app = Application::new();
    let a = auth.clone();
    app.add_route(None, "/private/{tail:.*}", move |req: Request| guarded(req, a.clone()));
    let a = auth.clone();
    app.add_get("/public", move |req: Request| {
        a.lock().unwrap().seen.push(("/public".to_owned(), req.header("authorization").is_some()));
        async { Response::text("open") }
    });
    app
}

fn digest_session(password: &str) -> ClientSession {
    ClientSession::builder().middleware(DigestAuth::new(USER, password)).build()
}

/// How many times the server was asked, per path and with or without credentials.
fn seen(auth: &Arc<Mutex<Auth>>) -> Vec<(String, bool)> {
    std::mem::take(&mut auth.lock().unwrap().seen)
}

fn hit(path: &str, with_credentials: bool) -> (String, bool) {
    (path.to_owned(), with_credentials)
}

#[tokio::test]
async fn every_algorithm_and_qop_then_preemptive() {
    for alg in ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess"] {
        for qop in ["auth", "auth-int", "auth, auth-int", ""] {
            if qop.is_empty() && alg.ends_with("-sess") {
                // Unanswerable (see `sess_without_qop`), so not asked.
                continue;
            }
            let auth = Auth::new(alg, qop);
            let server = Server::start(app(&auth)).await;
            let s = digest_session(PASSWORD);
            for round in 0..2 {
                let req = s.post(&server.url("/private/x?q=1")).body("the body");
                let mut resp = within(req.send()).await.unwrap();
                assert_eq!(resp.status(), StatusCode::OK, "{alg} {qop:?} round {round}");
                let expected_qop = if qop.contains("auth-int") { "auth-int" } else { qop };
                assert_eq!(within(resp.text()).await.unwrap(), format!("in with {expected_qop}"));
            }
            // Challenged once, then preemptive.
            let path = "/private/x?q=1";
            assert_eq!(seen(&auth), [hit(path, false), hit(path, true), hit(path, true)]);
            server.stop().await;
        }
    }
}

#[tokio::test]
async fn a_stale_nonce_is_answered_once_more() {
    let auth = Auth::new("SHA-256", "auth");
    auth.lock().unwrap().stale_after = 2;
    let server = Server::start(app(&auth)).await;
    let s = digest_session(PASSWORD);
    for _ in 0..3 {
        let resp = within(s.get(&server.url("/private/a")).send()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let p = "/private/a";
    // 1: challenged, answered (use 1). 2: preemptive (use 2, the nonce is replaced).
    // 3: preemptive with the old nonce, stale, answered with the new one.
    assert_eq!(
        seen(&auth),
        [hit(p, false), hit(p, true), hit(p, true), hit(p, true), hit(p, true)]
    );
    server.stop().await;
}

#[tokio::test]
async fn wrong_credentials_give_the_401_after_one_answer() {
    let auth = Auth::new("MD5", "auth");
    let server = Server::start(app(&auth)).await;
    let resp = within(digest_session("wrong").get(&server.url("/private/a")).send()).await;
    assert_eq!(resp.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(seen(&auth), [hit("/private/a", false), hit("/private/a", true)]);
    server.stop().await;
}

#[tokio::test]
async fn preemptive_only_inside_the_protection_space() {
    let auth = Auth::new("SHA-256", "auth");
    auth.lock().unwrap().domain = Some("/private/");
    let server = Server::start(app(&auth)).await;
    let s = digest_session(PASSWORD);
    for path in ["/private/a", "/public", "/private/b"] {
        let resp = within(s.get(&server.url(path)).send()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
    }
    assert_eq!(
        seen(&auth),
        [
            hit("/private/a", false),
            hit("/private/a", true),
            hit("/public", false),
            hit("/private/b", true)
        ]
    );

    // Not preemptive: every request is challenged first.
    let s = ClientSession::builder()
        .middleware(DigestAuth::new(USER, PASSWORD).preemptive(false))
        .build();
    for _ in 0..2 {
        let resp = within(s.get(&server.url("/private/a")).send()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let p = "/private/a";
    assert_eq!(seen(&auth), [hit(p, false), hit(p, true), hit(p, false), hit(p, true)]);
    server.stop().await;
}

#[tokio::test]
async fn credentials_stay_with_the_first_origin() {
    let first = Auth::new("MD5", "auth");
    let other = Auth::new("MD5", "auth");
    let a = Server::start(app(&first)).await;
    let b = Server::start(app(&other)).await;
    let s = digest_session(PASSWORD);
    assert_eq!(within(s.get(&a.url("/private/a")).send()).await.unwrap().status(), 200);
    // Another origin challenges: the middleware does not answer it.
    let resp = within(s.get(&b.url("/private/a")).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(seen(&other), [hit("/private/a", false)]);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_streamed_body_is_not_sent_twice() {
    let auth = Auth::new("MD5", "auth");
    let server = Server::start(app(&auth)).await;
    let sends = Arc::new(AtomicUsize::new(0));
    let count = sends.clone();
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from("x"))]);
    let req = digest_session(PASSWORD)
        .post(&server.url("/private/a"))
        .body_stream(stream)
        .middleware(move |req: ClientRequest, next: ClientNext| {
            count.fetch_add(1, Ordering::SeqCst);
            next.run(req)
        });
    let resp = within(req.send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sends.load(Ordering::SeqCst), 1);
    server.stop().await;
}
