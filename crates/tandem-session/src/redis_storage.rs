//! `RedisStorage`: the session in Redis, its random id in the cookie.

use std::{fmt, time::Duration};

use redis::{AsyncCommands, aio::ConnectionManager};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Storage, StorageFuture, Stored};

/// The default [`RedisStorage::key_prefix`]: a session with id `ID` is the Redis key
/// `tandem_session:ID`.
pub const DEFAULT_KEY_PREFIX: &str = "tandem_session:";

/// The default [`RedisStorage::ttl`]: one day. Each save sets the key to expire this long
/// after it; keep it at least the cookie's `max_age`, or sessions end before their cookies.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Session ids are 128 random bits as 32 lower-case hex digits (a v4 UUID without dashes).
const ID_LEN: usize = 32;

/// `aiohttp_session`'s `RedisStorage`: the cookie holds a random session id and the session,
/// as JSON, lives in Redis under [`key_prefix`](Self::key_prefix) plus the id, expiring
/// after [`ttl`](Self::ttl). Instances that share the Redis server share sessions.
///
/// Ids are made here, never taken from the client: a cookie that is not a well-formed id,
/// or names no record, loads as a fresh session that gets a new id when saved.
#[derive(Clone)]
pub struct RedisStorage {
    conn: ConnectionManager,
    key_prefix: String,
    ttl: Duration,
}

impl fmt::Debug for RedisStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStorage")
            .field("key_prefix", &self.key_prefix)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Record {
    created: u64,
    session: Map<String, Value>,
}

impl RedisStorage {
    /// A storage on `conn`, a connection manager that reconnects by itself.
    pub fn new(conn: ConnectionManager) -> Self {
        RedisStorage { conn, key_prefix: DEFAULT_KEY_PREFIX.to_owned(), ttl: DEFAULT_TTL }
    }

    /// Connects to the Redis server at `url` (`redis://127.0.0.1:6379/0`).
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::storage(format!("bad Redis URL {url:?}"), e))?;
        let conn = ConnectionManager::new(client)
            .await
            .map_err(|e| Error::storage(format!("cannot connect to Redis at {url}"), e))?;
        Ok(Self::new(conn))
    }

    /// The prefix of every session key (default [`DEFAULT_KEY_PREFIX`]), to keep several
    /// applications apart on one server.
    #[must_use]
    pub fn key_prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.key_prefix);
        self
    }

    /// How long a session lives after its last save (default [`DEFAULT_TTL`]; whole seconds,
    /// at least one).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The Redis key of the session with `identity`.
    pub fn key(&self, identity: &str) -> String {
        format!("{}{identity}", self.key_prefix)
    }

    fn redis_error(what: &str) -> impl FnOnce(redis::RedisError) -> Error + '_ {
        move |e| Error::storage(format!("Redis {what} failed"), e)
    }
}

fn is_identity(value: &str) -> bool {
    value.len() == ID_LEN && value.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Storage for RedisStorage {
    fn load<'a>(&'a self, cookie: &'a str) -> StorageFuture<'a, Option<Stored>> {
        Box::pin(async move {
            if !is_identity(cookie) {
                return Ok(None);
            }
            let mut conn = self.conn.clone();
            let json: Option<String> =
                conn.get(self.key(cookie)).await.map_err(Self::redis_error("GET"))?;
            // A record that is not a session (written by something else) is no session.
            let record = json.and_then(|j| serde_json::from_str::<Record>(&j).ok());
            Ok(record.map(|r| Stored {
                identity: Some(cookie.to_owned()),
                created: r.created,
                data: r.session,
            }))
        })
    }

    fn save<'a>(&'a self, session: &'a Stored) -> StorageFuture<'a, String> {
        Box::pin(async move {
            let identity = match &session.identity {
                Some(identity) => identity.clone(),
                None => uuid::Uuid::new_v4().simple().to_string(),
            };
            let record = Record { created: session.created, session: session.data.clone() };
            let json = serde_json::to_string(&record)
                .map_err(|e| Error::storage("cannot serialise the session", e))?;
            let mut conn = self.conn.clone();
            let () = conn
                .set_ex(self.key(&identity), json, self.ttl.as_secs().max(1))
                .await
                .map_err(Self::redis_error("SET"))?;
            Ok(identity)
        })
    }

    fn delete<'a>(&'a self, identity: &'a str) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let _: i64 = conn.del(self.key(identity)).await.map_err(Self::redis_error("DEL"))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_ids_are_looked_up() {
        let id = uuid::Uuid::new_v4().simple().to_string();
        assert!(is_identity(&id));
        for bad in ["", "abc", &id.to_uppercase(), &format!("{id}0"), "*", &"g".repeat(32)] {
            assert!(!is_identity(bad), "{bad}");
        }
    }
}
