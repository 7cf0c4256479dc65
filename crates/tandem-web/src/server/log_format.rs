//! aiohttp's access log format strings (`access_log_format`), parsed once when the server is
//! configured into a list of atoms, so a request only copies text and formats numbers.
//!
//! Unlike aiohttp, which prints an unknown `%x` as it is, an unknown atom is an error: a
//! typo shows when the server is configured, not as a column of stray text in the log.

use std::{
    fmt::{self, Write as _},
    net::SocketAddr,
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use http::header::HeaderName;

use crate::{Error, log::ClfTime};

/// aiohttp's default `access_log_format`: the Common Log Format with the referer and the
/// user agent (Apache's "combined" format).
pub const DEFAULT_ACCESS_LOG_FORMAT: &str = r#"%a %t "%r" %s %b "%{Referer}i" "%{User-Agent}i""#;

/// An access log format, aiohttp's `access_log_format`, checked as it is made. Its atoms:
///
/// | atom | what it prints |
/// |---|---|
/// | `%a` | the client's IP address ([`TrustedProxies`](crate::TrustedProxies)' client) |
/// | `%t` | when the request started, `[10/Oct/2000:13:55:36 +0000]` |
/// | `%P` | the server's process id |
/// | `%r` | the request line, `GET /path?q=1 HTTP/1.1` |
/// | `%s` | the response status |
/// | `%b` | the response body's bytes that reached the client |
/// | `%T` | the time the request took, in whole seconds |
/// | `%Tf` | the same in seconds with six decimals, `0.001234` |
/// | `%D` | the same in microseconds |
/// | `%{Name}i` | the request header `Name` |
/// | `%{Name}o` | the response header `Name`, as the handler set it[^written] |
/// | `%{NAME}e` | the environment variable `NAME` |
/// | `%%` | a `%` |
///
/// [^written]: Not `Date`, `Content-Length` and the others the server adds as it writes.
///
/// A value that is missing prints `-`. Text from the client (the request line, its
/// headers) has `"`, `\` and control characters escaped (`\"`, `\\`, `\x0a`), so no
/// request can end a quoted field early or forge a line of its own.
///
/// ```
/// use tandem_web::AccessLogFormat;
///
/// let format = AccessLogFormat::new(r#"%a "%r" %s %b %Tf "%{X-Request-Id}i""#)?;
/// assert_eq!(format.as_str(), r#"%a "%r" %s %b %Tf "%{X-Request-Id}i""#);
/// assert!(AccessLogFormat::new("%a %q").unwrap_err().is_access_log_format());
/// # Ok::<(), tandem_web::Error>(())
/// ```
#[derive(Clone)]
pub struct AccessLogFormat {
    parsed: Arc<Parsed>,
}

struct Parsed {
    source: Box<str>,
    atoms: Box<[Atom]>,
    request_headers: Box<[HeaderName]>,
    response_headers: Box<[HeaderName]>,
}

enum Atom {
    Text(Box<str>),
    Client,
    StartTime,
    Pid,
    RequestLine,
    Status,
    BodyBytes,
    Seconds,
    SecondsFraction,
    Micros,
    /// The nth of `request_headers`.
    RequestHeader(usize),
    /// The nth of `response_headers`.
    ResponseHeader(usize),
    Env(Box<str>),
}

/// Why a format string was refused: what [`Error::is_access_log_format`] recognises.
#[derive(Debug)]
pub(crate) struct FormatError(String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

impl AccessLogFormat {
    /// Parses `format`; an unknown atom (`%q`), a `%{` without its `}` and atom letter, or
    /// a header name that is not one, is an error.
    pub fn new(format: &str) -> Result<Self, Error> {
        let refused = |why| Error::new(FormatError(format!("access log format {format:?}: {why}")));
        parse(format).map_err(refused)
    }

    /// The format string, as given.
    pub fn as_str(&self) -> &str {
        &self.parsed.source
    }

    /// The request headers the format prints, captured as a request starts.
    pub(crate) fn request_headers(&self) -> &[HeaderName] {
        &self.parsed.request_headers
    }

    /// The response headers the format prints, captured as its response is written.
    pub(crate) fn response_headers(&self) -> &[HeaderName] {
        &self.parsed.response_headers
    }

    /// Appends the line for `fields` to `out`, without a newline.
    pub(crate) fn render(&self, fields: &Fields<'_>, out: &mut String) {
        let parsed = &*self.parsed;
        for atom in &parsed.atoms {
            // Writing to a `String` cannot fail.
            let _ = match atom {
                Atom::Text(text) => out.write_str(text),
                Atom::Client => match fields.client {
                    Some(addr) => write!(out, "{}", addr.ip().to_canonical()),
                    None => out.write_char('-'),
                },
                Atom::StartTime => write!(out, "{}", ClfTime(fields.at)),
                Atom::Pid => write!(out, "{}", std::process::id()),
                Atom::RequestLine => {
                    let (method, target) = (fields.method, Escaped(fields.target));
                    write!(out, "{method} {target} {:?}", fields.version)
                }
                Atom::Status => write!(out, "{}", fields.status),
                Atom::BodyBytes => write!(out, "{}", fields.bytes),
                Atom::Seconds => write!(out, "{}", fields.took.as_secs_f64().round()),
                Atom::SecondsFraction => write!(out, "{:.6}", fields.took.as_secs_f64()),
                Atom::Micros => write!(out, "{}", fields.took.as_micros()),
                Atom::RequestHeader(n) => out.write_str(fields.captured.get(*n)),
                Atom::ResponseHeader(n) => {
                    out.write_str(fields.captured.get(parsed.request_headers.len() + n))
                }
                Atom::Env(name) => match std::env::var_os(&**name) {
                    Some(value) => write!(out, "{}", Escaped(&value.to_string_lossy())),
                    None => out.write_char('-'),
                },
            };
        }
    }
}

impl fmt::Debug for AccessLogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AccessLogFormat").field(&self.as_str()).finish()
    }
}

impl FromStr for AccessLogFormat {
    type Err = Error;

    fn from_str(format: &str) -> Result<Self, Error> {
        Self::new(format)
    }
}

fn parse(format: &str) -> Result<AccessLogFormat, String> {
    let mut atoms = Vec::new();
    let mut request_headers = Vec::new();
    let mut response_headers = Vec::new();
    let mut text = String::new();
    let mut rest = format;
    while let Some(at) = rest.find('%') {
        text.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (atom, len) = match after.as_bytes().first() {
            Some(b'%') => {
                text.push('%');
                rest = &after[1..];
                continue;
            }
            Some(b'a') => (Atom::Client, 1),
            Some(b't') => (Atom::StartTime, 1),
            Some(b'P') => (Atom::Pid, 1),
            Some(b'r') => (Atom::RequestLine, 1),
            Some(b's') => (Atom::Status, 1),
            Some(b'b') => (Atom::BodyBytes, 1),
            Some(b'D') => (Atom::Micros, 1),
            Some(b'T') if after.as_bytes().get(1) == Some(&b'f') => (Atom::SecondsFraction, 2),
            Some(b'T') => (Atom::Seconds, 1),
            Some(b'{') => {
                let close = after.find('}').ok_or("a `%{` without its `}`")?;
                let name = &after[1..close];
                let kind = after.as_bytes().get(close + 1).copied();
                let atom = match kind {
                    Some(b'i' | b'o') => {
                        let header = HeaderName::from_bytes(name.as_bytes())
                            .map_err(|_| format!("`{name}` is not a header name"))?;
                        if kind == Some(b'i') {
                            request_headers.push(header);
                            Atom::RequestHeader(request_headers.len() - 1)
                        } else {
                            response_headers.push(header);
                            Atom::ResponseHeader(response_headers.len() - 1)
                        }
                    }
                    Some(b'e') if !name.is_empty() && !name.contains(['=', '\0']) => {
                        Atom::Env(name.into())
                    }
                    Some(b'e') => return Err(format!("`{name}` is not a variable name")),
                    _ => return Err(format!("`%{{{name}}}` needs `i`, `o` or `e` after it")),
                };
                (atom, close + 2)
            }
            Some(_) => {
                let atom = after.chars().next().unwrap_or_default();
                return Err(format!("unknown atom `%{atom}`"));
            }
            None => return Err("a `%` at the end (`%%` is a `%`)".to_owned()),
        };
        if !text.is_empty() {
            atoms.push(Atom::Text(std::mem::take(&mut text).into()));
        }
        atoms.push(atom);
        rest = &after[len..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        atoms.push(Atom::Text(text.into()));
    }
    Ok(AccessLogFormat {
        parsed: Arc::new(Parsed {
            source: format.into(),
            atoms: atoms.into(),
            request_headers: request_headers.into(),
            response_headers: response_headers.into(),
        }),
    })
}

/// What one request's line is made of.
pub(crate) struct Fields<'a> {
    pub(crate) client: Option<SocketAddr>,
    pub(crate) at: std::time::SystemTime,
    pub(crate) method: &'a http::Method,
    pub(crate) target: &'a str,
    pub(crate) version: http::Version,
    pub(crate) status: u16,
    pub(crate) bytes: u64,
    pub(crate) took: Duration,
    pub(crate) captured: &'a Captured,
}

/// The header values a format prints, escaped as they are captured: the request's first,
/// then the response's, in one string, so a request allocates once for them all.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    text: String,
    ends: Vec<usize>,
}

impl Captured {
    /// Appends a value: `-` if there is none.
    pub(crate) fn push(&mut self, value: Option<&[u8]>) {
        match value {
            Some(value) => {
                let _ = write!(self.text, "{}", Escaped(&String::from_utf8_lossy(value)));
            }
            None => self.text.push('-'),
        }
        self.ends.push(self.text.len());
    }

    /// The nth value pushed; `-` if there is no such value (its response never came).
    fn get(&self, n: usize) -> &str {
        let Some(&end) = self.ends.get(n) else { return "-" };
        let start = n.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.text[start..end]
    }
}

/// Text from the peer inside a log line: a quote, a backslash or a control character is
/// escaped, so no request can end a quoted field early or forge a line.
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if c.is_control() => write!(f, "\\x{:02x}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use http::{Method, Version};

    use super::*;

    fn line(format: &str, captured: &Captured) -> String {
        line_from(format, captured, Some(([192, 0, 2, 7], 5555).into()))
    }

    fn line_from(format: &str, captured: &Captured, client: Option<SocketAddr>) -> String {
        let format = AccessLogFormat::new(format).unwrap();
        let fields = Fields {
            client,
            at: UNIX_EPOCH + Duration::from_secs(784_111_777),
            method: &Method::GET,
            target: "/a?b=\"c\"",
            version: Version::HTTP_11,
            status: 404,
            bytes: 12,
            took: Duration::from_micros(1_501_234),
            captured,
        };
        let mut out = String::new();
        format.render(&fields, &mut out);
        out
    }

    #[test]
    fn every_atom_renders() {
        let mut captured = Captured::default();
        captured.push(Some(b"curl/8\n"));
        captured.push(None);
        let text = line("%a %t \"%r\" %s %b %T %Tf %D %% %{User-Agent}i %{X}o", &captured);
        assert_eq!(
            text,
            "192.0.2.7 [06/Nov/1994:08:49:37 +0000] \"GET /a?b=\\\"c\\\" HTTP/1.1\" 404 12 \
             2 1.501234 1501234 % curl/8\\x0a -"
        );
        assert_eq!(line("%P", &captured), std::process::id().to_string());
        assert_eq!(line("[%{NO_SUCH_VARIABLE_IN_TANDEM_TESTS}e]", &captured), "[-]");
        // A Unix socket's peer has no address; an IPv4 peer of a dual-stack listener is
        // shown as IPv4.
        assert_eq!(line_from("%a", &captured, None), "-");
        let mapped = std::net::Ipv4Addr::new(192, 0, 2, 8).to_ipv6_mapped();
        assert_eq!(line_from("%a", &captured, Some((mapped, 1).into())), "192.0.2.8");
    }

    #[test]
    fn a_bad_format_is_refused() {
        for bad in ["%q", "%", "ab%{Referer", "%{Referer}x", "%{bad name}i", "%{}e", "%Z"] {
            let err = AccessLogFormat::new(bad).unwrap_err();
            assert!(err.is_access_log_format(), "{bad}: {err}");
        }
        assert!(AccessLogFormat::new(DEFAULT_ACCESS_LOG_FORMAT).is_ok());
        assert_eq!(line("no atoms %%", &Captured::default()), "no atoms %");
    }

    #[test]
    fn peer_text_cannot_break_out_of_its_field() {
        let text = Escaped("a\"b\\c\x1bd\u{7f}").to_string();
        assert_eq!(text, r#"a\"b\\c\x1bd\x7f"#);
    }
}
