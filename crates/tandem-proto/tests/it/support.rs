//! The harness every table runs through: a pipeline that parses messages one after the
//! other as a server or client connection would, three ways of delivering the same bytes to
//! it, and the table types ([`Case`], [`Expect`]).

use std::fmt;

use bytes::BytesMut;
use http::{HeaderMap, Method, Version};
use tandem_proto::{
    BodyDecoder, BodyEvent, BodyFraming, Error, ErrorKind, Fields, RequestParser, ResponseParser,
};

/// One message as the pipeline saw it: its head, its whole body and its trailers.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// The request method (empty for a response).
    pub(crate) method: String,
    /// The request target, or a response's reason phrase (lossy UTF-8).
    pub(crate) target: String,
    /// A response's status code (0 for a request).
    pub(crate) status: u16,
    pub(crate) version: Version,
    pub(crate) framing: BodyFraming,
    pub(crate) keep_alive: bool,
    pub(crate) expect_continue: bool,
    /// The protocol a request asks to upgrade to; `Some(empty)` for a 101 response.
    pub(crate) upgrade: Option<Vec<u8>>,
    /// Every head field, names as sent.
    pub(crate) fields: Vec<(String, Vec<u8>)>,
    pub(crate) body: Vec<u8>,
    /// Trailer fields, lower-cased by `HeaderMap`.
    pub(crate) trailers: Vec<(String, Vec<u8>)>,
}

impl Message {
    /// The value of the first head field called `name` (any case).
    pub(crate) fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// The value of the first trailer called `name` (any case).
    pub(crate) fn trailer(&self, name: &str) -> Option<&[u8]> {
        self.trailers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }
}

fn pairs(fields: &Fields) -> Vec<(String, Vec<u8>)> {
    fields.iter().map(|(n, v)| (n.to_owned(), v.to_vec())).collect()
}

fn map_pairs(map: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    map.iter().map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec())).collect()
}

/// Shows at most this many bytes of a body or value, so a failing 1 MiB case stays readable.
const SHOWN: usize = 48;

fn show(bytes: &[u8]) -> String {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(SHOWN)]).into_owned();
    if bytes.len() > SHOWN {
        format!("{head:?}…({} bytes)", bytes.len())
    } else {
        format!("{head:?}")
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields: Vec<String> =
            self.fields.iter().take(8).map(|(n, v)| format!("{n}: {}", show(v))).collect();
        let trailers: Vec<String> =
            self.trailers.iter().take(8).map(|(n, v)| format!("{n}: {}", show(v))).collect();
        f.debug_struct("Message")
            .field("method", &self.method)
            .field("target", &show(self.target.as_bytes()))
            .field("status", &self.status)
            .field("version", &self.version)
            .field("framing", &self.framing)
            .field("keep_alive", &self.keep_alive)
            .field("expect_continue", &self.expect_continue)
            .field("upgrade", &self.upgrade.as_deref().map(show))
            .field("fields", &format_args!("{} {fields:?}", self.fields.len()))
            .field("body", &format_args!("{}", show(&self.body)))
            .field("trailers", &format_args!("{} {trailers:?}", self.trailers.len()))
            .finish()
    }
}

/// What a connection made of its bytes: the messages, in order, and the first error, after
/// which nothing more was read (nothing after a bad message is ever dispatched).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) messages: Vec<Message>,
    pub(crate) error: Option<Error>,
}

impl Outcome {
    pub(crate) fn kind(&self) -> Option<ErrorKind> {
        self.error.map(Error::kind)
    }

    /// The only message of an accepted input.
    pub(crate) fn only(&self) -> Result<&Message, String> {
        match (&self.messages[..], self.error) {
            ([message], None) => Ok(message),
            _ => Err(format!("expected exactly one message and no error, got {self:?}")),
        }
    }

    /// The targets of the messages, in order.
    pub(crate) fn targets(&self) -> Vec<&str> {
        self.messages.iter().map(|m| m.target.as_str()).collect()
    }
}

/// Either side's head parser, behind one interface for the pipeline.
trait HeadParser {
    fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, Error>;
    fn eof(&self, buf: &BytesMut) -> Result<(), Error>;
}

struct Requests(RequestParser);

impl HeadParser for Requests {
    fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, Error> {
        Ok(self.0.parse(buf)?.map(|head| Message {
            method: head.method().as_str().to_owned(),
            target: head.target().to_owned(),
            status: 0,
            version: head.version(),
            framing: head.framing(),
            keep_alive: head.keep_alive(),
            expect_continue: head.expect_continue(),
            upgrade: head.upgrade().map(<[u8]>::to_vec),
            fields: pairs(head.fields()),
            body: Vec::new(),
            trailers: Vec::new(),
        }))
    }

    fn eof(&self, buf: &BytesMut) -> Result<(), Error> {
        self.0.parse_eof(buf)
    }
}

struct Responses {
    parser: ResponseParser,
    /// The method of the request every response in the input answers.
    method: Method,
}

impl HeadParser for Responses {
    fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, Error> {
        Ok(self.parser.parse(buf, &self.method)?.map(|head| Message {
            method: String::new(),
            target: String::from_utf8_lossy(head.reason()).into_owned(),
            status: head.status().as_u16(),
            version: head.version(),
            framing: head.framing(),
            keep_alive: head.keep_alive(),
            expect_continue: false,
            upgrade: head.is_upgrade().then(Vec::new),
            fields: pairs(head.fields()),
            body: Vec::new(),
            trailers: Vec::new(),
        }))
    }

    /// `ResponseParser` has no `parse_eof`: a client treats bytes of an unfinished head at
    /// close as an incomplete head, which is what this reports.
    fn eof(&self, buf: &BytesMut) -> Result<(), Error> {
        if buf.is_empty() { Ok(()) } else { Err(ErrorKind::IncompleteHead.into()) }
    }
}

/// A connection's read side: head, body to its end, next head, and so on.
struct Pipeline<P> {
    heads: P,
    body: Option<BodyDecoder>,
    buf: BytesMut,
    outcome: Outcome,
}

impl<P: HeadParser> Pipeline<P> {
    fn new(heads: P) -> Self {
        Pipeline { heads, body: None, buf: BytesMut::new(), outcome: Outcome::default() }
    }

    /// One read's worth of bytes.
    fn feed(&mut self, bytes: &[u8]) {
        if self.outcome.error.is_some() {
            return;
        }
        self.buf.extend_from_slice(bytes);
        if let Err(e) = self.drive() {
            self.outcome.error = Some(e);
        }
    }

    fn drive(&mut self) -> Result<(), Error> {
        loop {
            if let Some(body) = &mut self.body {
                let Some(event) = body.decode(&mut self.buf)? else { return Ok(()) };
                let message = self.outcome.messages.last_mut().expect("a body has a head");
                match event {
                    BodyEvent::Data(data) => message.body.extend_from_slice(&data),
                    BodyEvent::Trailers(map) => message.trailers.extend(map_pairs(&map)),
                    BodyEvent::End => self.body = None,
                }
            } else {
                let Some(message) = self.heads.parse(&mut self.buf)? else { return Ok(()) };
                self.body = Some(BodyDecoder::new(message.framing));
                self.outcome.messages.push(message);
            }
        }
    }

    /// The peer closed the connection.
    fn eof(mut self) -> Outcome {
        if self.outcome.error.is_none() {
            let result = match &mut self.body {
                Some(body) => body.decode_eof().map(|_| ()),
                None => self.heads.eof(&self.buf),
            };
            self.outcome.error = result.err();
        }
        self.outcome
    }
}

fn run<'a, P: HeadParser>(heads: P, reads: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut pipeline = Pipeline::new(heads);
    for read in reads {
        pipeline.feed(read);
    }
    pipeline.eof()
}

/// Inputs up to this size are split at every byte boundary. Each split costs a whole parse,
/// so the sweep is quadratic; a larger input gets a number of splits that keeps the bytes
/// parsed near [`SWEEP_BUDGET`]: half of them at its two ends (where heads, chunk lines and
/// limits sit), half at a stride through the middle.
const FULL_SWEEP: usize = 9 * 1024;
/// Roughly how many bytes the splits of one large input may parse in all.
const SWEEP_BUDGET: usize = 16 << 20;

fn split_points(len: usize) -> Vec<usize> {
    if len <= FULL_SWEEP {
        return (1..len).collect();
    }
    let runs = (SWEEP_BUDGET / len).clamp(4, 1024);
    let edge = runs / 4;
    let stride = (len - 2 * edge) / (runs - 2 * edge);
    let mut points: Vec<usize> = (1..=edge).collect();
    points.extend((edge + stride..len - edge).step_by(stride));
    points.extend(len - edge..len);
    points
}

/// Delivers `input` whole, in two reads split at each boundary, and one byte per read, and
/// returns the outcome if all agree.
fn deliveries<P: HeadParser>(input: &[u8], make: impl Fn() -> P) -> Result<Outcome, String> {
    let whole = run(make(), [input]);
    for at in split_points(input.len()) {
        let split = run(make(), [&input[..at], &input[at..]]);
        ensure!(
            split == whole,
            "delivery changes the outcome: whole gave\n  {whole:?}\nbut two reads split at \
             byte {at} gave\n  {split:?}"
        );
    }
    let dribbled = run(make(), input.chunks(1));
    ensure!(
        dribbled == whole,
        "delivery changes the outcome: whole gave\n  {whole:?}\nbut one byte per read gave\n  \
         {dribbled:?}"
    );
    Ok(whole)
}

/// Parses `input` as the requests of one connection, three ways; see [`deliveries`].
pub(crate) fn try_check_request(input: &[u8]) -> Result<Outcome, String> {
    deliveries(input, || Requests(RequestParser::new()))
}

/// Parses `input` as the requests of one connection, in one read only.
pub(crate) fn parse_whole(input: &[u8]) -> Outcome {
    run(Requests(RequestParser::new()), [input])
}

/// [`try_check_request`], panicking if the deliveries disagree.
pub(crate) fn check_request(input: &[u8]) -> Outcome {
    try_check_request(input).unwrap_or_else(|e| panic!("{e}"))
}

/// Parses `input` as the responses of one client connection to requests made with
/// `method`, three ways; see [`deliveries`].
pub(crate) fn try_check_response(input: &[u8], method: &Method) -> Result<Outcome, String> {
    deliveries(input, || Responses { parser: ResponseParser::new(), method: method.clone() })
}

/// What a request table expects of one input.
#[derive(Clone, Copy)]
pub(crate) enum Expect {
    /// Accepted as exactly one message, framed so, with this body.
    One(BodyFraming, &'static [u8]),
    /// Refused with this kind, which maps to this status. A head error dispatches nothing;
    /// a body error dispatches only the head whose body failed.
    Refuse(ErrorKind, u16),
    /// Anything else, checked by a function.
    Check(fn(&Outcome) -> Result<(), String>),
}

impl Expect {
    pub(crate) fn verify(self, outcome: &Outcome) -> Result<(), String> {
        match self {
            Expect::One(framing, body) => {
                let message = outcome.only()?;
                ensure!(
                    message.framing == framing,
                    "framing: {:?} != {framing:?}",
                    message.framing
                );
                ensure!(message.body == body, "body: {} != {}", show(&message.body), show(body));
            }
            Expect::Refuse(kind, status) => {
                let Some(error) = outcome.error else {
                    return Err(format!("accepted, expected {kind:?}: {outcome:?}"));
                };
                ensure!(error.kind() == kind, "refused with {:?}, expected {kind:?}", error.kind());
                ensure!(error.status() == status, "status {}, expected {status}", error.status());
                let heads = usize::from(error.is_body());
                ensure!(
                    outcome.messages.len() == heads,
                    "{} messages dispatched before a {kind:?}: {outcome:?}",
                    outcome.messages.len()
                );
            }
            Expect::Check(check) => check(outcome)?,
        }
        Ok(())
    }
}

/// One row of a request table.
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) input: Vec<u8>,
    pub(crate) expect: Expect,
}

impl Case {
    pub(crate) fn new(name: impl Into<String>, input: impl Into<Vec<u8>>, expect: Expect) -> Self {
        Case { name: name.into(), input: input.into(), expect }
    }
}

/// Runs every case through [`try_check_request`] and its expectation, then fails once,
/// listing every case that failed.
pub(crate) fn run_cases(cases: &[Case]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let result = try_check_request(&case.input).and_then(|o| case.expect.verify(&o));
            result.err().map(|e| format!("[{}] {e}", case.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// A `POST / HTTP/1.1` with `Host: a`, then `lines` (each ending in CRLF), the empty line,
/// and `rest`.
pub(crate) fn post(lines: &[u8], rest: &[u8]) -> Vec<u8> {
    [&b"POST / HTTP/1.1\r\nHost: a\r\n"[..], lines, b"\r\n", rest].concat()
}

/// A `GET / HTTP/1.1` with `Host: a`, then `lines` and the empty line.
pub(crate) fn get(lines: &[u8]) -> Vec<u8> {
    [&b"GET / HTTP/1.1\r\nHost: a\r\n"[..], lines, b"\r\n"].concat()
}

/// The harness itself: splits cover what they claim, and pipelining works.
#[test]
fn harness() {
    assert_eq!(split_points(4), [1, 2, 3]);
    let large = split_points(1 << 20);
    assert!(large.contains(&1) && large.contains(&((1 << 20) - 1)), "both ends");
    assert!(large.windows(2).all(|w| w[0] < w[1]), "each boundary once");
    let outcome =
        check_request(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(outcome.targets(), ["/1", "/2"]);
    assert_eq!(outcome.error, None);
}
