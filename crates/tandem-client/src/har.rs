//! HAR 1.2 recording and replay as client middlewares.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::{
    ClientNext, ClientRequest, ClientResponse, Error,
    faults::{fields_to_remake, made_up},
    middleware::{BoxFuture, Middleware},
};

/// Fields whose values a recording keeps out unless asked: credentials and cookies.
const SECRET_FIELDS: [HeaderName; 4] =
    [header::AUTHORIZATION, header::PROXY_AUTHORIZATION, header::COOKIE, header::SET_COOKIE];

/// Records every exchange of a session as a HAR 1.2 log (the format of browsers' network
/// panels): method, URL, fields, status, timings, and optionally bodies. Credential and
/// cookie values are written as `"[redacted]"` unless [`redact(false)`](Self::redact).
///
/// With [`bodies(true)`](Self::bodies) the recorder reads each response's body whole to
/// keep it, and hands over a response with that body (decoded, so without its
/// `Content-Encoding`). [`Timings`](crate::Timings) fill the entry's timings when the session
/// records them ([`timings(true)`](crate::ClientSessionBuilder::timings)).
///
/// ```no_run
/// use tandem_client::{ClientSession, HarRecorder};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let har = HarRecorder::new().bodies(true);
/// let session = ClientSession::builder().middleware(har.clone()).timings(true).build();
/// session.get("http://127.0.0.1:8080/").send().await?.text().await?;
/// har.save("session.har")?;
/// # Ok(()) }
/// ```
///
/// Cheap to clone: clones share the log, so one is given to the session and one kept.
#[derive(Clone, Debug, Default)]
pub struct HarRecorder {
    bodies: bool,
    keep_secrets: bool,
    entries: Arc<Mutex<Vec<Value>>>,
}

impl HarRecorder {
    /// A recorder without bodies, redacting credentials.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to keep request and response bodies (default: no).
    #[must_use]
    pub fn bodies(mut self, yes: bool) -> Self {
        self.bodies = yes;
        self
    }

    /// Whether to write credential and cookie values as `"[redacted]"` (default: yes).
    #[must_use]
    pub fn redact(mut self, yes: bool) -> Self {
        self.keep_secrets = !yes;
        self
    }

    /// The log so far, as HAR 1.2 JSON.
    pub fn to_json(&self) -> Value {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        json!({
            "log": {
                "version": "1.2",
                "creator": {"name": "tandem", "version": env!("CARGO_PKG_VERSION")},
                "pages": [],
                "entries": *entries,
            }
        })
    }

    /// Writes the log so far to `path`.
    ///
    /// # Errors
    ///
    /// If the file cannot be written.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(&self.to_json()).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }

    fn fields(&self, headers: &HeaderMap) -> Vec<Value> {
        headers
            .iter()
            .map(|(name, value)| {
                let value = if !self.keep_secrets && SECRET_FIELDS.contains(name) {
                    "[redacted]".into()
                } else {
                    String::from_utf8_lossy(value.as_bytes()).into_owned()
                };
                json!({"name": name.as_str(), "value": value})
            })
            .collect()
    }
}

/// A body as HAR content: text when it is UTF-8, base64 otherwise.
fn content_text(body: &[u8]) -> (String, Option<&'static str>) {
    match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), None),
        Err(_) => (STANDARD.encode(body), Some("base64")),
    }
}

fn ms(d: Option<Duration>) -> f64 {
    d.map_or(-1.0, |d| d.as_secs_f64() * 1000.0)
}

impl Middleware for HarRecorder {
    fn handle(
        &self,
        req: ClientRequest,
        next: ClientNext,
    ) -> BoxFuture<'_, Result<ClientResponse, Error>> {
        Box::pin(async move {
            let started = SystemTime::now();
            let clock = std::time::Instant::now();
            let method = req.method().clone();
            let url = req.url().clone();
            let request_headers = req.headers().clone();
            let request_body = req.body().cloned();
            let info = req.try_clone();
            let mut resp = next.run(req).await?;
            let head_at = clock.elapsed();
            let mut t = resp.timings();
            let mut body = None;
            if self.bodies {
                let status = resp.status();
                let kept = fields_to_remake(resp.headers());
                let bytes = resp.read().await?;
                t = resp.timings();
                if let Some(info) = info {
                    let history = resp.history().to_vec();
                    resp = made_up(&info, status, &kept, &bytes, bytes.len())?;
                    resp.set_history(history);
                }
                body = Some(bytes);
            }
            let total = t.and_then(|t| t.total).unwrap_or_else(|| clock.elapsed());
            let exchange = Exchange {
                started,
                method: &method,
                url: &url,
                request_headers: &request_headers,
                request_body: request_body.as_ref(),
                body: body.as_ref(),
                timings: t,
                head_at,
                total,
            };
            let entry = self.entry(&exchange, &resp);
            self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(entry);
            Ok(resp)
        })
    }
}

/// What one exchange left for its HAR entry.
struct Exchange<'a> {
    started: SystemTime,
    method: &'a http::Method,
    url: &'a url::Url,
    request_headers: &'a HeaderMap,
    request_body: Option<&'a Bytes>,
    body: Option<&'a Bytes>,
    timings: Option<crate::Timings>,
    head_at: Duration,
    total: Duration,
}

impl HarRecorder {
    /// The HAR entry of one exchange.
    fn entry(&self, r: &Exchange<'_>, resp: &ClientResponse) -> Value {
        let Exchange { started, method, url, request_headers, request_body, body, .. } = *r;
        let (t, head_at, total) = (r.timings, r.head_at, r.total);
        let query: Vec<_> =
            url.query_pairs().map(|(k, v)| json!({"name": k, "value": v})).collect();
        let mut request = json!({
            "method": method.as_str(),
            "url": url.as_str(),
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": self.fields(request_headers),
            "queryString": query,
            "headersSize": -1,
            "bodySize": request_body.map_or(0, Bytes::len),
        });
        if let (true, Some(b)) = (self.bodies, &request_body) {
            let (text, _) = content_text(b);
            let mime = request_headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream");
            request["postData"] = json!({"mimeType": mime, "text": text});
        }
        let mime = resp.content_type();
        let size = body.as_ref().map_or_else(
            || {
                resp.headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse::<i64>().ok())
                    .unwrap_or(-1)
            },
            |b| i64::try_from(b.len()).unwrap_or(i64::MAX),
        );
        let mut content = json!({"size": size, "mimeType": mime});
        if let Some(b) = &body {
            let (text, encoding) = content_text(b);
            content["text"] = text.into();
            if let Some(encoding) = encoding {
                content["encoding"] = encoding.into();
            }
        }
        let redirect = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let response = json!({
            "status": resp.status().as_u16(),
            "statusText": resp.reason(),
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": self.fields(resp.headers()),
            "content": content,
            "redirectURL": redirect,
            "headersSize": -1,
            "bodySize": size,
        });
        let first_byte = t.and_then(|t| t.first_byte).unwrap_or(head_at);
        let sent = t.and_then(|t| t.request_sent);
        let connect_end = t.and_then(|t| t.connect.map(|c| c + t.queued.unwrap_or_default()));
        let timings = json!({
            "blocked": ms(t.and_then(|t| t.queued)),
            "dns": ms(t.and_then(|t| t.dns)),
            "connect": ms(t.and_then(|t| t.connect)),
            "ssl": ms(t.and_then(|t| t.tls)),
            "send": ms(Some(sent.map_or(Duration::ZERO, |s| {
                s.saturating_sub(connect_end.unwrap_or_default())
            }))),
            "wait": ms(Some(first_byte.saturating_sub(sent.unwrap_or_default()))),
            "receive": ms(Some(total.saturating_sub(first_byte))),
        });
        let entry = json!({
            "startedDateTime": iso8601(started),
            "time": total.as_secs_f64() * 1000.0,
            "request": request,
            "response": response,
            "cache": {},
            "timings": timings,
        });
        entry
    }
}

/// `at` as an ISO 8601 UTC date and time with milliseconds, as HAR's `startedDateTime`.
fn iso8601(at: SystemTime) -> String {
    let since = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Answers requests from a HAR log, without the network: for offline tests. A request is
/// matched by method and URL; several entries for the same request are answered in turn
/// (the last one again after that). A request the log does not have fails with a
/// [middleware error](Error::is_middleware) naming it.
///
/// Bodies come from the entries' `content.text` (base64 when `encoding` says so); a log
/// recorded without bodies answers with empty ones.
///
/// ```no_run
/// use tandem_client::{ClientSession, HarReplay};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let replay = HarReplay::from_file("session.har")?;
/// let session = ClientSession::builder().middleware(replay).build();
/// let text = session.get("http://127.0.0.1:8080/").send().await?.text().await?;
/// # let _ = text; Ok(()) }
/// ```
#[derive(Debug)]
pub struct HarReplay {
    entries: HashMap<(String, String), Vec<Recorded>>,
    served: Mutex<HashMap<(String, String), usize>>,
}

#[derive(Debug, Clone)]
struct Recorded {
    status: StatusCode,
    fields: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

impl HarReplay {
    /// The log in the file at `path`.
    ///
    /// # Errors
    ///
    /// If the file cannot be read or is not a HAR log.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<HarReplay, Error> {
        let text = std::fs::read_to_string(path).map_err(Error::middleware)?;
        let value: Value = serde_json::from_str(&text).map_err(Error::middleware)?;
        HarReplay::from_json(&value)
    }

    /// The log `har` (as [`HarRecorder::to_json`] gives).
    ///
    /// # Errors
    ///
    /// If it is not a HAR log.
    pub fn from_json(har: &Value) -> Result<HarReplay, Error> {
        let entries = har["log"]["entries"]
            .as_array()
            .ok_or_else(|| Error::middleware("not a HAR log: no log.entries"))?;
        let mut by_request: HashMap<(String, String), Vec<Recorded>> = HashMap::new();
        for entry in entries {
            let (req, resp) = (&entry["request"], &entry["response"]);
            let key = (
                req["method"].as_str().unwrap_or("GET").to_ascii_uppercase(),
                req["url"].as_str().unwrap_or_default().to_owned(),
            );
            let status = resp["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .and_then(|s| StatusCode::from_u16(s).ok())
                .ok_or_else(|| Error::middleware("a HAR entry without a valid status"))?;
            let fields = resp["headers"]
                .as_array()
                .map(|fields| {
                    fields
                        .iter()
                        .filter_map(|f| {
                            let name = HeaderName::try_from(f["name"].as_str()?).ok()?;
                            let value = HeaderValue::try_from(f["value"].as_str()?).ok()?;
                            let framing = matches!(
                                name,
                                header::CONTENT_LENGTH
                                    | header::TRANSFER_ENCODING
                                    | header::CONTENT_ENCODING
                                    | header::CONNECTION
                            );
                            (!framing).then_some((name, value))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let content = &resp["content"];
            let text = content["text"].as_str().unwrap_or_default();
            let body = if content["encoding"].as_str() == Some("base64") {
                STANDARD.decode(text).map_err(Error::middleware)?.into()
            } else {
                Bytes::copy_from_slice(text.as_bytes())
            };
            by_request.entry(key).or_default().push(Recorded { status, fields, body });
        }
        Ok(HarReplay { entries: by_request, served: Mutex::default() })
    }
}

impl Middleware for HarReplay {
    fn handle(
        &self,
        req: ClientRequest,
        _next: ClientNext,
    ) -> BoxFuture<'_, Result<ClientResponse, Error>> {
        Box::pin(async move {
            let key = (req.method().as_str().to_owned(), req.url().as_str().to_owned());
            let Some(answers) = self.entries.get(&key) else {
                return Err(Error::middleware(format!("no HAR entry for {} {}", key.0, key.1))
                    .with_url(req.url()));
            };
            let turn = {
                let mut served =
                    self.served.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let n = served.entry(key).or_default();
                *n += 1;
                (*n - 1).min(answers.len() - 1)
            };
            let answer = &answers[turn];
            made_up(&req, answer.status, &answer.fields, &answer.body, answer.body.len())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso_8601() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_765_000_000_123);
        assert_eq!(iso8601(at), "2025-12-06T05:46:40.123Z");
        assert_eq!(iso8601(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(iso8601(leap), "2000-02-29T00:00:00.000Z");
    }
}
