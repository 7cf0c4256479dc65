//! `CookieStorage`: the whole session sealed into the cookie.

use std::fmt;

use cookie::{Cookie, CookieJar, Key};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Storage, StorageFuture, Stored};

/// The shortest secret [`CookieStorage::new`] accepts: 32 bytes, the 256 bits HKDF needs
/// to derive the AES-256-GCM key.
pub const MIN_SECRET_LEN: usize = 32;

/// The default [`CookieStorage::max_cookie_size`]: 4096 bytes, the size every browser keeps
/// for one cookie (RFC 6265 section 6.1's minimum). A larger session could be set but would
/// be dropped by the browser, so saving it is an error instead; an incoming value over the
/// limit is not opened at all.
pub const DEFAULT_MAX_COOKIE_SIZE: usize = 4096;

/// The associated data every session value is bound to, so a value sealed for another
/// purpose under the same key (the identity cookie's, [`CookieStorage::for_purpose`]) does
/// not open as a session.
const SEAL_NAME: &str = "tandem-session";

/// `aiohttp_session`'s `EncryptedCookieStorage`: the session, as JSON, sealed into the cookie
/// with AES-256-GCM (the `cookie` crate's private jar), so the client can neither read nor
/// change it. No server-side state, so any instance holding the same secret opens it.
///
/// A value that does not open (tampered, sealed under another key, truncated, not base64,
/// over the size limit) or whose JSON is not a session loads as a fresh empty session.
#[derive(Clone)]
pub struct CookieStorage {
    key: Key,
    max_cookie_size: usize,
    /// The associated data its values are sealed with: [`SEAL_NAME`] for sessions.
    purpose: &'static str,
}

impl fmt::Debug for CookieStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("CookieStorage")
            .field("max_cookie_size", &self.max_cookie_size)
            .finish_non_exhaustive()
    }
}

/// `aiohttp_session`'s cookie layout.
#[derive(Serialize, Deserialize)]
struct Sealed {
    created: u64,
    session: Map<String, Value>,
}

impl CookieStorage {
    /// A storage whose key is derived (HKDF-SHA256) from `secret`, which must be random and
    /// at least [`MIN_SECRET_LEN`] bytes. Every instance that shares sessions needs the same
    /// secret; changing it logs everyone out.
    pub fn new(secret: &[u8]) -> Result<Self, Error> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(Error::config(format!(
                "the cookie storage secret is {} bytes; it needs at least {MIN_SECRET_LEN}",
                secret.len()
            )));
        }
        Ok(Self::with_key(Key::derive_from(secret)))
    }

    /// A storage with a random key: sessions last as long as the process, for development.
    pub fn generate() -> Self {
        Self::with_key(Key::generate())
    }

    fn with_key(key: Key) -> Self {
        CookieStorage { key, max_cookie_size: DEFAULT_MAX_COOKIE_SIZE, purpose: SEAL_NAME }
    }

    /// The same storage sealing values for `purpose` instead of sessions: under one key, a
    /// value sealed for one purpose never opens for another.
    pub(crate) fn for_purpose(mut self, purpose: &'static str) -> Self {
        self.purpose = purpose;
        self
    }

    /// The largest cookie value to write or to open (default [`DEFAULT_MAX_COOKIE_SIZE`]).
    #[must_use]
    pub fn max_cookie_size(mut self, bytes: usize) -> Self {
        self.max_cookie_size = bytes;
        self
    }

    fn seal(&self, plaintext: String) -> String {
        let mut jar = CookieJar::new();
        jar.private_mut(&self.key).add(Cookie::new(self.purpose, plaintext));
        jar.get(self.purpose).map(|c| c.value().to_owned()).unwrap_or_default()
    }

    fn open(&self, value: &str) -> Option<Stored> {
        if value.len() > self.max_cookie_size {
            return None;
        }
        let jar = CookieJar::new();
        let opened = jar.private(&self.key).decrypt(Cookie::new(self.purpose, value.to_owned()))?;
        let sealed: Sealed = serde_json::from_str(opened.value()).ok()?;
        Some(Stored { identity: None, created: sealed.created, data: sealed.session })
    }
}

impl Storage for CookieStorage {
    fn load<'a>(&'a self, cookie: &'a str) -> StorageFuture<'a, Option<Stored>> {
        Box::pin(async move { Ok(self.open(cookie)) })
    }

    fn save<'a>(&'a self, session: &'a Stored) -> StorageFuture<'a, String> {
        Box::pin(async move {
            let sealed = Sealed { created: session.created, session: session.data.clone() };
            let json = serde_json::to_string(&sealed)
                .map_err(|e| Error::storage("cannot serialise the session", e))?;
            let value = self.seal(json);
            if value.len() > self.max_cookie_size {
                return Err(Error::too_large(value.len(), self.max_cookie_size));
            }
            Ok(value)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn stored() -> Stored {
        let mut data = Map::new();
        data.insert("user".into(), Value::from("ann"));
        Stored { identity: None, created: 1_700_000_000, data }
    }

    fn block_on<T>(fut: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(fut)
    }

    #[test]
    fn round_trip_hides_the_data() {
        let storage = CookieStorage::new(SECRET).unwrap();
        let value = block_on(storage.save(&stored())).unwrap();
        assert!(!value.contains("ann"), "the value is encrypted: {value}");
        assert_eq!(block_on(storage.load(&value)).unwrap(), Some(stored()));
    }

    #[test]
    fn hostile_values_open_as_nothing() {
        let storage = CookieStorage::new(SECRET).unwrap();
        let value = block_on(storage.save(&stored())).unwrap();
        let mut flipped = value.clone().into_bytes();
        let middle = flipped.len() / 2;
        flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
        let other_key = CookieStorage::new(&[7; 32]).unwrap();
        let huge = "A".repeat(DEFAULT_MAX_COOKIE_SIZE + 1);
        for hostile in [
            String::from_utf8(flipped).unwrap(),
            value[..value.len() - 1].to_owned(),
            String::new(),
            "%%%not base64%%%".to_owned(),
            "AAAA".to_owned(),
            huge,
            block_on(other_key.save(&stored())).unwrap(),
        ] {
            assert_eq!(block_on(storage.load(&hostile)).unwrap(), None, "{hostile:.40}");
        }
    }

    #[test]
    fn sealed_json_that_is_not_a_session_opens_as_nothing() {
        let storage = CookieStorage::new(SECRET).unwrap();
        let value = storage.seal("[1, 2, 3]".to_owned());
        assert_eq!(block_on(storage.load(&value)).unwrap(), None);
    }

    #[test]
    fn short_secret_and_oversized_session_are_errors() {
        assert!(CookieStorage::new(b"short").unwrap_err().is_config());
        let storage = CookieStorage::generate().max_cookie_size(64);
        let mut big = stored();
        big.data.insert("blob".into(), Value::from("x".repeat(100)));
        assert!(block_on(storage.save(&big)).unwrap_err().is_too_large());
    }
}
