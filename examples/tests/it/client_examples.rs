//! The client examples' work, against Tandem servers under `TestClient`.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tandem_http::{
    ClientSession,
    bytes::Bytes,
    test::TestClient,
    web::{Application, Request, Response},
};

use crate::{concurrent_fetch, download, loadtest, upload_file};

/// Counts requests in flight in the handler, and the most seen at once.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

/// A server whose handler yields a few times while it counts itself in flight, so that
/// concurrent requests overlap in it.
async fn counting_server() -> (TestClient, Arc<InFlight>) {
    let in_flight = Arc::new(InFlight::default());
    let counter = Arc::clone(&in_flight);
    let mut app = Application::new();
    app.add_get("/", move |_req: Request| {
        let counter = Arc::clone(&counter);
        async move {
            let now = counter.now.fetch_add(1, Ordering::SeqCst) + 1;
            counter.max.fetch_max(now, Ordering::SeqCst);
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            counter.now.fetch_sub(1, Ordering::SeqCst);
            Response::text("0123456789")
        }
    });
    (TestClient::new(app).await.unwrap(), in_flight)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_limit_bounds_concurrency() {
    let (server, in_flight) = counting_server().await;
    let lengths = concurrent_fetch::with_connector_limit(&server.url("/"), 20, 3).await.unwrap();
    assert_eq!(lengths, vec![10; 20]);
    let max = in_flight.max.load(Ordering::SeqCst);
    assert!((1..=3).contains(&max), "{max} requests were in flight at once");
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_semaphore_bounds_concurrency() {
    let (server, in_flight) = counting_server().await;
    let lengths = concurrent_fetch::with_semaphore(&server.url("/"), 20, 2).await.unwrap();
    assert_eq!(lengths, vec![10; 20]);
    let max = in_flight.max.load(Ordering::SeqCst);
    assert!((1..=2).contains(&max), "{max} requests were in flight at once");
    server.close().await;
}

#[tokio::test]
async fn a_failed_fetch_is_an_error() {
    let server = TestClient::new(Application::new()).await.unwrap();
    let err = concurrent_fetch::with_semaphore(&server.url("/missing"), 3, 2).await.unwrap_err();
    assert!(err.is_status(), "{err:?}");
    server.close().await;
}

#[tokio::test]
async fn download_streams_the_body_to_a_file() {
    // 4 MiB in 64 KiB chunks, sent chunked as they are made.
    let chunk: Bytes = (0..65_536u32).map(|i| (i % 253) as u8).collect::<Vec<u8>>().into();
    let expected: Vec<u8> = chunk.iter().copied().cycle().take(64 * chunk.len()).collect();
    let mut app = Application::new();
    app.add_get("/big", move |_req: Request| {
        let chunk = chunk.clone();
        async move {
            let chunks = (0..64).map(move |_| Ok(chunk.clone()));
            Response::stream(futures_util::stream::iter(chunks))
        }
    });
    let server = TestClient::new(app).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    let session = ClientSession::new();
    let written = download::download(&session, &server.url("/big"), &path).await.unwrap();
    assert_eq!(written, expected.len() as u64);
    assert!(std::fs::read(&path).unwrap() == expected, "the file holds the body");

    let err = download::download(&session, &server.url("/missing"), &path).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    server.close().await;
}

#[tokio::test]
async fn upload_file_streams_the_file_as_the_body() {
    // More than one read of the file, and not a whole number of them.
    let sent: Vec<u8> = (0..(3 << 20) + 5u32).map(|i| (i % 251) as u8).collect();
    let expected = Arc::new(sent.clone());
    let mut app = Application::new();
    app.client_max_size(8 << 20);
    app.add_post("/upload", move |mut req: Request| {
        let expected = Arc::clone(&expected);
        async move {
            let body = req.read().await?;
            let same = if body == expected.as_slice() { "same" } else { "different" };
            Ok::<_, tandem_http::web::Error>(Response::text(format!("{} {same}", body.len())))
        }
    });
    let server = TestClient::new(app).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("up.bin");
    std::fs::write(&path, &sent).unwrap();
    let session = ClientSession::new();
    let (status, body) =
        upload_file::upload(&session, &path, &server.url("/upload")).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, format!("{} same", sent.len()));
    server.close().await;
}

/// Runs `loadtest` with `args` on a thread of its own, as its `main` does: it builds its own
/// runtime, which cannot start inside the test's.
async fn loadtest(args: &[&str]) -> loadtest::Report {
    let args = loadtest::parse_args(args.iter().map(|&a| a.to_owned())).unwrap();
    let run = std::thread::spawn(move || loadtest::run(args).map(|(report, _)| report));
    tokio::task::spawn_blocking(move || run.join().expect("loadtest panicked"))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadtest_counts_every_request() {
    let (server, in_flight) = counting_server().await;
    let mut app = Application::new();
    app.add_get("/fail", |_req: Request| async {
        tandem_http::http::StatusCode::SERVICE_UNAVAILABLE
    });
    let failing = TestClient::new(app).await.unwrap();

    let report = loadtest(&["-n", "300", "-c", "4", &server.url("/")]).await;
    assert_eq!(report.requests(), 300);
    assert_eq!(report.latency_us.len(), 300);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!((report.non_success, report.body_bytes), (0, 3_000));
    let max = in_flight.max.load(Ordering::SeqCst);
    assert!((1..=4).contains(&max), "{max} requests were in flight at once");

    // A 503 is a response, not an error; so is the 405 of a method the route does not take.
    let report = loadtest(&["-n", "20", "-c", "2", &failing.url("/fail")]).await;
    assert_eq!((report.requests(), report.non_success), (20, 20));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let report = loadtest(&["-n", "10", "-c", "2", "-m", "POST", &failing.url("/fail")]).await;
    assert_eq!((report.requests(), report.non_success), (10, 10));

    // Nothing listens on the server's port once it is closed: every request is an error.
    let closed = failing.url("/fail");
    failing.close().await;
    let report = loadtest(&["-n", "5", "-c", "2", &closed]).await;
    assert_eq!(report.errors.get("connect"), Some(&5), "{:?}", report.errors);
    assert_eq!(report.latency_us.len(), 0);
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadtest_drives_https_with_cacert_or_insecure() {
    use tandem_http::web::{AppRunner, Identity, ServerConfig, TlsConfig};

    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let identity =
        Identity::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();
    let mut app = Application::new();
    app.add_get("/", |req: Request| async move { Response::text(req.scheme()) });
    let config = ServerConfig::default().with_stderr_log(false);
    let mut runner = AppRunner::with_config(app, config).unwrap();
    runner.setup().await.unwrap();
    let tls = TlsConfig::builder(identity).build().unwrap();
    let addr = runner.tls_site("127.0.0.1", 0, &tls).await.unwrap();
    let url = format!("https://localhost:{}/", addr.port());
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.pem()).unwrap();

    let report = loadtest(&["-n", "50", "-c", "4", "--cacert", ca.to_str().unwrap(), &url]).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!((report.requests(), report.body_bytes), (50, 50 * "https".len() as u64));
    let report = loadtest(&["-n", "20", "-c", "2", "--insecure", &url]).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.requests(), 20);
    // The webpki roots do not know this certificate: every request fails to connect.
    let report = loadtest(&["-n", "5", "-c", "1", &url]).await;
    assert_eq!(report.errors.get("connect"), Some(&5), "{:?}", report.errors);
    assert!(runner.cleanup().await);
}
