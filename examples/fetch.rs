//! A small curl on `tandem_http::ClientSession`: prints the status line (with the HTTP
//! version the exchange used), then the body. It follows redirects and keeps cookies for the
//! run; on failure it prints the error's kind and exits non-zero.
//!
//! As curl, it speaks HTTP/2 over TLS when the server chooses it by ALPN (`--http2` says so
//! explicitly), HTTP/1.1 otherwise; `--http1.1` never speaks HTTP/2, and
//! `--http2-prior-knowledge` speaks it without asking, h2c on plain http.
//!
//! ```text
//! cargo run --example fetch -- [-X METHOD] [-H 'K: V']... [-d DATA | --json JSON] [--proxy URL] [--insecure]
//!                               [--digest USER:PASS] [--retry N] [--har FILE]
//!                               [--http1.1 | --http2 | --http2-prior-knowledge] URL
//! cargo run --example fetch -- -X POST --json '{"a": 1}' http://127.0.0.1:8080/echo
//! cargo run --example fetch -- --http2-prior-knowledge http://127.0.0.1:8080/
//! ```

use std::process::ExitCode;

use tandem_http::{
    ClientSession,
    client::{
        Connector, CookieJar, DigestAuth, Error, HarRecorder, Http2, Retry, TlsConfig,
        parse_proxy_url,
    },
    http::Method,
};
use tokio::io::AsyncWriteExt;

const USAGE: &str = "usage: fetch [-X METHOD] [-H 'K: V']... [-d DATA | --json JSON] [--proxy URL] [--insecure] [--digest USER:PASS] [--retry N] [--har FILE] [--http1.1 | --http2 | --http2-prior-knowledge] URL";

struct Args {
    method: Option<Method>,
    headers: Vec<(String, String)>,
    data: Option<String>,
    json: bool,
    proxy: Option<String>,
    insecure: bool,
    /// Digest credentials, `USER:PASS`.
    digest: Option<(String, String)>,
    /// Retries of a failed idempotent request.
    retry: Option<u32>,
    /// Where to write the exchanges as a HAR log.
    har: Option<String>,
    /// `--http1.1`, `--http2` or `--http2-prior-knowledge`.
    http2: Option<Http2>,
    url: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut method = None;
    let mut headers = Vec::new();
    let mut data = None;
    let mut json = false;
    let mut proxy = None;
    let mut insecure = false;
    let (mut digest, mut retry, mut har, mut http2) = (None, None, None, None);
    let mut url = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "-X" | "--request" => {
                method = Some(Method::from_bytes(value()?.as_bytes()).map_err(|e| e.to_string())?);
            }
            "-H" | "--header" => {
                let header = value()?;
                let (name, val) =
                    header.split_once(':').ok_or_else(|| format!("bad header {header:?}"))?;
                headers.push((name.trim().to_owned(), val.trim().to_owned()));
            }
            "-d" | "--data" => data = Some(value()?),
            "--json" => {
                data = Some(value()?);
                json = true;
            }
            "--proxy" => proxy = Some(value()?),
            "-k" | "--insecure" => insecure = true,
            "--digest" => {
                let credentials = value()?;
                let (user, pass) = credentials.split_once(':').ok_or("--digest wants USER:PASS")?;
                digest = Some((user.to_owned(), pass.to_owned()));
            }
            "--retry" => retry = Some(value()?.parse().map_err(|_| "--retry wants a number")?),
            "--har" => har = Some(value()?),
            "--http1.1" => http2 = Some(Http2::Never),
            "--http2" => http2 = Some(Http2::Auto),
            "--http2-prior-knowledge" => http2 = Some(Http2::PriorKnowledge),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ if url.is_none() && !arg.starts_with('-') => url = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}\n{USAGE}")),
        }
    }
    let url = url.ok_or_else(|| USAGE.to_owned())?;
    Ok(Args { method, headers, data, json, proxy, insecure, digest, retry, har, http2, url })
}

async fn fetch(args: Args) -> Result<(), Error> {
    // Cookies are kept for this run, for IP hosts too (a local test server is the usual
    // target of a small curl).
    let mut session = ClientSession::builder().cookie_jar(CookieJar::unsafe_hosts());
    if let Some(proxy) = &args.proxy {
        session = session.proxy(parse_proxy_url(proxy)?);
    }
    if let Some(mode) = args.http2 {
        session = session.http2(mode);
    }
    if args.insecure {
        // Certificates are not checked: for test servers only.
        let tls = TlsConfig::builder().verify_ssl(false).build()?;
        session = session.connector(Connector::builder().tls(tls).build());
    }
    // Retries outermost, so each attempt is authenticated and recorded.
    if let Some(retries) = args.retry {
        session = session.middleware(Retry::new().max_retries(retries));
    }
    if let Some((user, pass)) = &args.digest {
        session = session.middleware(DigestAuth::new(user, pass));
    }
    let har = args.har.as_ref().map(|_| HarRecorder::new());
    if let Some(har) = &har {
        session = session.middleware(har.clone()).timings(true);
    }
    let session = session.build();
    let method =
        args.method.unwrap_or(if args.data.is_some() { Method::POST } else { Method::GET });
    let mut request = session.request(method, &args.url);
    for (name, value) in &args.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    if let Some(data) = args.data {
        if args.json {
            request = request.header("content-type", "application/json");
        }
        request = request.body(data);
    }
    let mut response = request.send().await?;
    println!("{:?} {} {}", response.version(), response.status().as_u16(), response.reason());
    let mut stdout = tokio::io::stdout();
    while let Some(chunk) = response.content().chunk().await? {
        // A closed stdout (`| head`) ends the run quietly.
        if stdout.write_all(&chunk).await.is_err() {
            return Ok(());
        }
    }
    let _ = stdout.flush().await;
    if let (Some(har), Some(path)) = (har, &args.har) {
        har.save(path).map_err(Error::middleware)?;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match fetch(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}`: the error and each of its causes (its `source()` chain).
            eprintln!("fetch: {} error: {:#}", e.kind_name(), anyhow::Error::from(e));
            ExitCode::FAILURE
        }
    }
}
