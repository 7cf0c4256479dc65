//! HTTP Digest authentication (RFC 7616) as a client middleware: aiohttp's
//! `DigestAuthMiddleware`.

use std::{fmt::Write as _, sync::Mutex};

use http::{HeaderValue, StatusCode, header};
use url::Url;

use crate::{
    ClientNext, ClientRequest, ClientResponse, Error,
    middleware::{BoxFuture, Middleware},
};

/// HTTP Digest authentication (RFC 7616), as aiohttp's `DigestAuthMiddleware`: a `401`
/// with a `Digest` challenge is answered by sending the request again with credentials.
///
/// - Algorithms `MD5`, `SHA-256` and `SHA-512-256`, and their `-sess` forms (and `SHA-512`,
///   which is not in the RFC but which httpbin and aiohttp speak); among several challenges
///   the strongest is taken.
/// - `qop` `auth-int` (the body's hash signed too) when offered and the body is whole,
///   `auth` otherwise, and RFC 2069's no-`qop` form.
/// - A `401` whose challenge says `stale=true` (the nonce expired, not the credentials) is
///   answered once more with the new nonce; any other `401` after credentials were sent is
///   the response.
/// - Preemptive (by default): once a challenge was answered, later requests within its
///   protection space (its `domain` URIs, or the whole origin) carry credentials from the
///   start, with the nonce count going up, so they take one round trip instead of two.
/// - Pinned: credentials go only to the origin of the first request the middleware sees,
///   so a redirect to another host never gets them, even when it challenges.
/// - A streamed body cannot be sent again: its `401` is the response.
///
/// ```no_run
/// use tandem_client::{ClientSession, DigestAuth};
///
/// # async fn demo() -> Result<(), tandem_client::Error> {
/// let session = ClientSession::builder().middleware(DigestAuth::new("user", "passwd")).build();
/// let resp = session.get("http://127.0.0.1:8080/digest-auth/auth/user/passwd").send().await?;
/// assert_eq!(resp.status(), 200);
/// # Ok(()) }
/// ```
pub struct DigestAuth {
    user: String,
    password: String,
    preemptive: bool,
    state: Mutex<State>,
}

impl std::fmt::Debug for DigestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestAuth")
            .field("user", &self.user)
            .field("preemptive", &self.preemptive)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    /// The origin credentials are pinned to: the first request's.
    origin: Option<String>,
    /// The last challenge answered, for preemptive use.
    last: Option<Answered>,
}

/// A challenge that was answered, and how many times its nonce has been used.
#[derive(Clone)]
struct Answered {
    challenge: Challenge,
    cnonce: String,
    nc: u32,
    /// URL prefixes of the protection space (RFC 7616 §3.3 `domain`); the origin when empty.
    space: Vec<String>,
}

impl DigestAuth {
    /// Credentials for `user`, preemptive.
    pub fn new(user: &str, password: &str) -> Self {
        DigestAuth {
            user: user.to_owned(),
            password: password.to_owned(),
            preemptive: true,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether to send credentials before being challenged, within the protection space of
    /// the last challenge answered (default: yes; aiohttp's `preemptive`).
    #[must_use]
    pub fn preemptive(mut self, yes: bool) -> Self {
        self.preemptive = yes;
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `url` is on the pinned origin (pinning it if it is the first).
    fn pinned(&self, url: &Url) -> bool {
        let origin = url.origin().ascii_serialization();
        let mut state = self.state();
        state.origin.get_or_insert(origin.clone()) == &origin
    }

    /// The `Authorization` value for `req` under the stored challenge, if `req` is within
    /// its protection space; the nonce count goes up.
    fn preemptive_value(&self, req: &ClientRequest) -> Option<HeaderValue> {
        let mut state = self.state();
        let last = state.last.as_mut()?;
        let url = req.url().as_str();
        let origin = req.url().origin().ascii_serialization();
        let within = if last.space.is_empty() {
            true
        } else {
            last.space.iter().any(|prefix| url.starts_with(prefix.as_str()))
        };
        if !within || !url.starts_with(&origin) {
            return None;
        }
        last.nc += 1;
        let last = last.clone();
        self.authorization(req, &last)
    }

    /// Stores `challenge` as answered and returns the value that answers it.
    fn answer(&self, req: &ClientRequest, challenge: Challenge) -> Option<HeaderValue> {
        let space = challenge
            .domain
            .as_deref()
            .map(|domain| {
                domain
                    .split_ascii_whitespace()
                    .filter_map(|uri| req.url().join(uri).ok())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let answered = Answered { challenge, cnonce: cnonce(), nc: 1, space };
        let value = self.authorization(req, &answered)?;
        self.state().last = Some(answered);
        Some(value)
    }

    /// The `Authorization` field for `req` (RFC 7616 §3.4).
    fn authorization(&self, req: &ClientRequest, answered: &Answered) -> Option<HeaderValue> {
        let Answered { challenge: c, cnonce, nc, .. } = answered;
        let alg = c.algorithm;
        let uri = &req.url()[url::Position::BeforePath..url::Position::AfterQuery];
        let qop = c.qop(!req.is_streamed());
        if qop == Some(Qop::AuthInt) && req.is_streamed() {
            // A stream's hash is not known before it is sent.
            return None;
        }
        let mut ha1 = alg.hash(format!("{}:{}:{}", self.user, c.realm, self.password));
        if alg.sess {
            ha1 = alg.hash(format!("{ha1}:{}:{cnonce}", c.nonce));
        }
        let method = req.method().as_str();
        let ha2 = match qop {
            Some(Qop::AuthInt) => {
                let body = req.body().map_or(&b""[..], |b| &b[..]);
                alg.hash(format!("{method}:{uri}:{}", alg.hash(body)))
            }
            _ => alg.hash(format!("{method}:{uri}")),
        };
        let nc = format!("{nc:08x}");
        let response = match qop {
            Some(qop) => {
                alg.hash(format!("{ha1}:{}:{nc}:{cnonce}:{}:{ha2}", c.nonce, qop.as_str()))
            }
            None => alg.hash(format!("{ha1}:{}:{ha2}", c.nonce)),
        };
        let mut out = String::from("Digest ");
        let _ = write!(
            out,
            "username={}, realm={}, nonce={}, uri={}, algorithm={}, response=\"{response}\"",
            quoted(&self.user),
            quoted(&c.realm),
            quoted(&c.nonce),
            quoted(uri),
            alg.name(),
        );
        if let Some(qop) = qop {
            let _ = write!(out, ", qop={}, nc={nc}, cnonce=\"{cnonce}\"", qop.as_str());
        }
        if let Some(opaque) = &c.opaque {
            let _ = write!(out, ", opaque={}", quoted(opaque));
        }
        let mut value = HeaderValue::try_from(out).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

impl Middleware for DigestAuth {
    fn handle(
        &self,
        mut req: ClientRequest,
        next: ClientNext,
    ) -> BoxFuture<'_, Result<ClientResponse, Error>> {
        Box::pin(async move {
            if !self.pinned(req.url()) || req.headers().contains_key(header::AUTHORIZATION) {
                return next.run(req).await;
            }
            let mut sent_credentials = false;
            if self.preemptive
                && let Some(value) = self.preemptive_value(&req)
            {
                req.headers_mut().insert(header::AUTHORIZATION, value);
                sent_credentials = true;
            }
            // At most: the first send, the answer to its challenge, and one more for a
            // stale nonce.
            for _ in 0..2 {
                let again = req.try_clone();
                let mut resp = next.run(req).await?;
                if resp.status() != StatusCode::UNAUTHORIZED {
                    return Ok(resp);
                }
                let Some(challenge) = Challenge::best(&resp) else { return Ok(resp) };
                if sent_credentials && !challenge.stale {
                    // The credentials themselves were refused.
                    return Ok(resp);
                }
                let Some(mut again) = again else { return Ok(resp) };
                let Some(value) = self.answer(&again, challenge) else { return Ok(resp) };
                resp.release().await;
                again.headers_mut().insert(header::AUTHORIZATION, value);
                sent_credentials = true;
                req = again;
            }
            next.run(req).await
        })
    }
}

/// `s` as a quoted-string, with `"` and `\` escaped.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A client nonce: 16 random bytes, hex.
fn cnonce() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: a clock reading still differs per challenge.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = nanos.to_le_bytes();
    }
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A hash function of RFC 7616 §6.1, and whether it is the `-sess` form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Algorithm {
    hash: Hash,
    sess: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Hash {
    Md5,
    Sha256,
    Sha512_256,
    /// Not RFC 7616's, but httpbin's and aiohttp's `SHA-512`.
    Sha512,
}

impl Algorithm {
    fn parse(name: &str) -> Option<Algorithm> {
        let upper = name.to_ascii_uppercase();
        let (base, sess) = match upper.strip_suffix("-SESS") {
            Some(base) => (base, true),
            None => (upper.as_str(), false),
        };
        let hash = match base {
            "MD5" => Hash::Md5,
            "SHA-256" => Hash::Sha256,
            "SHA-512-256" => Hash::Sha512_256,
            "SHA-512" => Hash::Sha512,
            _ => return None,
        };
        Some(Algorithm { hash, sess })
    }

    fn name(self) -> &'static str {
        match (self.hash, self.sess) {
            (Hash::Md5, false) => "MD5",
            (Hash::Md5, true) => "MD5-sess",
            (Hash::Sha256, false) => "SHA-256",
            (Hash::Sha256, true) => "SHA-256-sess",
            (Hash::Sha512_256, false) => "SHA-512-256",
            (Hash::Sha512_256, true) => "SHA-512-256-sess",
            (Hash::Sha512, false) => "SHA-512",
            (Hash::Sha512, true) => "SHA-512-sess",
        }
    }

    /// Preference among several challenges: RFC 7616's SHA-512-256, then SHA-256, then
    /// SHA-512, then MD5.
    fn rank(self) -> u8 {
        match self.hash {
            Hash::Md5 => 0,
            Hash::Sha512 => 1,
            Hash::Sha256 => 2,
            Hash::Sha512_256 => 3,
        }
    }

    /// The lower-case hex digest of `data`.
    fn hash(self, data: impl AsRef<[u8]>) -> String {
        let data = data.as_ref();
        let sha = |algorithm| hex(ring::digest::digest(algorithm, data).as_ref());
        match self.hash {
            Hash::Md5 => hex(&md5::compute(data).0),
            Hash::Sha256 => sha(&ring::digest::SHA256),
            Hash::Sha512_256 => sha(&ring::digest::SHA512_256),
            Hash::Sha512 => sha(&ring::digest::SHA512),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Qop {
    Auth,
    AuthInt,
}

impl Qop {
    fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// A `Digest` challenge from `WWW-Authenticate`.
#[derive(Clone, Debug)]
struct Challenge {
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: Algorithm,
    /// The `qop` options offered; none for RFC 2069's form.
    qops: Vec<Qop>,
    stale: bool,
    domain: Option<String>,
}

impl Challenge {
    /// `auth-int` when offered and the body can be hashed, else `auth` if offered (or
    /// `auth-int` alone, over an empty body), else none.
    fn qop(&self, body_whole: bool) -> Option<Qop> {
        if self.qops.contains(&Qop::AuthInt) && (body_whole || !self.qops.contains(&Qop::Auth)) {
            return Some(Qop::AuthInt);
        }
        self.qops.contains(&Qop::Auth).then_some(Qop::Auth)
    }

    /// The strongest `Digest` challenge the response carries that we can answer.
    fn best(resp: &ClientResponse) -> Option<Challenge> {
        resp.headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("digest"))
            .filter_map(|(_, params)| Challenge::from_params(&params))
            .max_by_key(|c| c.algorithm.rank())
    }

    fn from_params(params: &[(String, String)]) -> Option<Challenge> {
        let get = |name: &str| {
            params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
        };
        let algorithm = match get("algorithm") {
            Some(name) => Algorithm::parse(&name)?,
            None => Algorithm { hash: Hash::Md5, sess: false },
        };
        let qops = get("qop")
            .map(|q| {
                q.split(',')
                    .filter_map(|q| match q.trim() {
                        q if q.eq_ignore_ascii_case("auth") => Some(Qop::Auth),
                        q if q.eq_ignore_ascii_case("auth-int") => Some(Qop::AuthInt),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        // A `qop` offering only options we do not know cannot be answered, and neither can
        // a `-sess` algorithm without one: its key needs a `cnonce`, which RFC 2617 forbids
        // sending without `qop`.
        if (get("qop").is_some() || algorithm.sess) && qops.is_empty() {
            return None;
        }
        Some(Challenge {
            realm: get("realm").unwrap_or_default(),
            nonce: get("nonce")?,
            opaque: get("opaque"),
            algorithm,
            qops,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
            domain: get("domain"),
        })
    }
}

/// The challenges in one `WWW-Authenticate` value (RFC 9110 §11.6.1): each a scheme and its
/// `name=value` parameters, values unquoted. A `token68` is skipped.
fn parse_challenges(value: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let bytes = value.as_bytes();
    let mut i = 0;
    let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && matches!(bytes[*i], b' ' | b'\t' | b',') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= bytes.len() {
            return out;
        }
        let start = i;
        while i < bytes.len() && is_token(bytes[i]) {
            i += 1;
        }
        if i == start {
            // Not a token: skip the byte rather than loop on it.
            i += 1;
            continue;
        }
        let token = &value[start..i];
        let mut j = i;
        while j < bytes.len() && matches!(bytes[j], b' ' | b'\t') {
            j += 1;
        }
        if j < bytes.len() && bytes[j] == b'=' && !out.is_empty() {
            // A parameter of the current challenge (or a token68's padding).
            j += 1;
            while j < bytes.len() && matches!(bytes[j], b' ' | b'\t') {
                j += 1;
            }
            let mut val = String::new();
            if j < bytes.len() && bytes[j] == b'"' {
                j += 1;
                let mut chars = value[j..].char_indices();
                let mut end = value.len();
                while let Some((k, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                val.push(escaped);
                            }
                        }
                        '"' => {
                            end = j + k + 1;
                            break;
                        }
                        c => val.push(c),
                    }
                }
                j = end;
            } else {
                let vstart = j;
                while j < bytes.len() && bytes[j] != b',' {
                    j += 1;
                }
                value[vstart..j].trim().clone_into(&mut val);
            }
            if let Some((_, params)) = out.last_mut() {
                params.push((token.to_owned(), val));
            }
            i = j;
        } else {
            out.push((token.to_owned(), Vec::new()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 §3.9.1's example, MD5 and SHA-256.
    #[test]
    fn each_hash_gives_its_known_answer() {
        // FIPS 180-4's and RFC 1321's digests of "abc".
        let abc = |hash| Algorithm { hash, sess: false }.hash("abc");
        assert_eq!(abc(Hash::Md5), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            abc(Hash::Sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            abc(Hash::Sha512_256),
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
        );
        assert_eq!(
            abc(Hash::Sha512),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
    }

    #[test]
    fn rfc_7616_examples() {
        let c = "realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=ALG, \
                 nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                 opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
        for (alg, expected) in [
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
            ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ] {
            let header = format!("Digest {}", c.replace("ALG", alg));
            let parsed = parse_challenges(&header);
            assert_eq!(parsed.len(), 1);
            let challenge = Challenge::from_params(&parsed[0].1).unwrap();
            assert_eq!(challenge.qops, [Qop::Auth, Qop::AuthInt]);
            let a = challenge.algorithm;
            let ha1 = a.hash("Mufasa:http-auth@example.org:Circle of Life");
            let ha2 = a.hash("GET:/dir/index.html");
            let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
            let response =
                a.hash(format!("{ha1}:{}:00000001:{cnonce}:auth:{ha2}", challenge.nonce));
            assert_eq!(response, expected, "{alg}");
        }
    }

    #[test]
    fn challenges_are_split_and_unquoted() {
        let parsed = parse_challenges(
            r#"Basic realm="x", Digest realm="a \"b\", c", nonce=n1, algorithm=SHA-256-sess, qop=auth, stale=TRUE, Bearer"#,
        );
        let schemes: Vec<_> = parsed.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(schemes, ["Basic", "Digest", "Bearer"]);
        let c = Challenge::from_params(&parsed[1].1).unwrap();
        assert_eq!(c.realm, "a \"b\", c");
        assert_eq!(c.nonce, "n1");
        assert_eq!(c.algorithm, Algorithm { hash: Hash::Sha256, sess: true });
        assert!(c.stale);
        assert_eq!(c.qops, [Qop::Auth]);
        assert!(Challenge::from_params(&[("nonce".into(), "n".into())]).is_some());
        assert!(Challenge::from_params(&[("realm".into(), "r".into())]).is_none());
        let unknown = [("nonce".into(), "n".into()), ("algorithm".into(), "SHA-1".into())];
        assert!(Challenge::from_params(&unknown).is_none());
        let sess_without_qop =
            [("nonce".into(), "n".into()), ("algorithm".into(), "MD5-sess".into())];
        assert!(Challenge::from_params(&sess_without_qop).is_none());
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn qop_choice() {
        let mut c = Challenge::from_params(&[("nonce".into(), "n".into())]).unwrap();
        assert_eq!(c.qop(true), None);
        c.qops = vec![Qop::Auth, Qop::AuthInt];
        assert_eq!(c.qop(true), Some(Qop::AuthInt));
        assert_eq!(c.qop(false), Some(Qop::Auth));
        c.qops = vec![Qop::AuthInt];
        assert_eq!(c.qop(false), Some(Qop::AuthInt));
    }
}
