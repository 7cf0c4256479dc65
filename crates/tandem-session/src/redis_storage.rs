//! `RedisStorage`: the session in Redis, its random id in the cookie.

use std::{fmt, time::Duration};

use redis::{
    FromRedisValue,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Storage, StorageFuture, Stored};

/// The default [`RedisStorage::key_prefix`]: a session with id `ID` is the Redis key
/// `tandem_session:ID`.
pub const DEFAULT_KEY_PREFIX: &str = "tandem_session:";

/// The default [`RedisStorage::ttl`]: one day. Each save sets the key to expire this long
/// after it; keep it at least the cookie's `max_age`, or sessions end before their cookies.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The default time [`RedisStorage::connect`] gives one attempt to connect to Redis, the
/// redis crate's own: on loopback or a LAN a refusal comes at once; this bounds a server
/// that does not answer at all.
pub const DEFAULT_REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The default time [`RedisStorage::connect`] gives one command, the redis crate's own: Redis
/// answers a session's `GET` or `SET` in well under a millisecond, so a command this slow
/// means the server is stuck, and the request that needed it gets a 503 rather than a hang.
pub const DEFAULT_REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

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

    /// Connects to the Redis server at `url` (`redis://127.0.0.1:6379/0`) with
    /// [`manager_config`](Self::manager_config)'s settings.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(url, Self::manager_config()).await
    }

    /// Connects to the Redis server at `url` with `config`: start from
    /// [`manager_config`](Self::manager_config) to change a timeout.
    pub async fn connect_with(url: &str, config: ConnectionManagerConfig) -> Result<Self, Error> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::storage(format!("bad Redis URL {url:?}"), e))?;
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| Error::storage(format!("cannot connect to Redis at {url}"), e))?;
        Ok(Self::new(conn))
    }

    /// The connection manager settings [`connect`](Self::connect) uses, made for a store
    /// that every request may need: one connection attempt per command while Redis is
    /// unreachable, under [`DEFAULT_REDIS_CONNECT_TIMEOUT`], and each command under
    /// [`DEFAULT_REDIS_RESPONSE_TIMEOUT`].
    ///
    /// The redis crate's own default retries a lost connection six times with exponential
    /// backoff, and every command waits for those attempts: requests would hang for seconds
    /// while Redis is down, and a backoff step could hold them up to seconds after it is
    /// back. Without retries a command fails at once (its request gets a 503), and the next
    /// command tries again, so service resumes with the first request after Redis returns.
    pub fn manager_config() -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(DEFAULT_REDIS_CONNECT_TIMEOUT))
            .set_response_timeout(Some(DEFAULT_REDIS_RESPONSE_TIMEOUT))
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

    /// Runs `cmd` (`name` in an error), and once more if it failed for want of a
    /// connection. The connection manager learns that its connection is gone
    /// from the command that fails, and only then starts to reconnect: without the second
    /// try, the first request after Redis returns would fail too. Every command here (`GET`,
    /// `SET` with an expiry, `DEL`, `PING`) may safely run twice.
    async fn run<T: FromRedisValue>(&self, name: &str, cmd: &redis::Cmd) -> Result<T, Error> {
        let mut conn = self.conn.clone();
        let result = match cmd.query_async(&mut conn).await {
            Err(e) if e.is_io_error() || e.is_unrecoverable_error() => {
                cmd.query_async(&mut conn).await
            }
            result => result,
        };
        result.map_err(|e| Error::storage(format!("Redis {name} failed"), e))
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
            let json: Option<String> =
                self.run("GET", redis::cmd("GET").arg(self.key(cookie))).await?;
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
            let mut set = redis::cmd("SET");
            set.arg(self.key(&identity)).arg(json).arg("EX").arg(self.ttl.as_secs().max(1));
            let () = self.run("SET", &set).await?;
            Ok(identity)
        })
    }

    fn delete<'a>(&'a self, identity: &'a str) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            let _: i64 = self.run("DEL", redis::cmd("DEL").arg(self.key(identity))).await?;
            Ok(())
        })
    }

    fn check(&self) -> StorageFuture<'_, ()> {
        Box::pin(async move {
            let _: String = self.run("PING", &redis::cmd("PING")).await?;
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
