//! The configuration file: TOML, every key optional, defaults that work on a laptop.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

/// Everything the app reads from its config file (`config/polls.toml` shows every key).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where to listen.
    pub server: Server,
    /// The database: `SQLite` by default, or `PostgreSQL`.
    pub database: Database,
    /// Where sessions live and how their cookie looks.
    pub session: Session,
    /// Where the CSS comes from.
    #[serde(rename = "static")]
    pub static_files: Static,
    /// The admin page.
    pub admin: Admin,
}

/// `[admin]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Admin {
    /// The password of `/admin/login`. Empty (the default): nobody logs in.
    pub password: String,
}

/// `[server]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// Default `127.0.0.1`.
    pub host: String,
    /// Default 8080; 0 picks a free port (the address is printed).
    pub port: u16,
    /// A PEM certificate chain (leaf first, as certbot's `fullchain.pem`): with `tls_key`,
    /// the app is served over HTTPS. Empty (the default): plain HTTP.
    pub tls_cert: PathBuf,
    /// The PEM private key of `tls_cert`.
    pub tls_key: PathBuf,
    /// On SIGTERM or Ctrl+C, how long in-flight requests may take to finish before they are
    /// dropped, in seconds (default [`tandem_web::DEFAULT_SHUTDOWN_TIMEOUT`], 60).
    pub shutdown_timeout_secs: u64,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            host: "127.0.0.1".to_owned(),
            port: 8080,
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            shutdown_timeout_secs: tandem_web::DEFAULT_SHUTDOWN_TIMEOUT.as_secs(),
        }
    }
}

impl Server {
    /// `shutdown_timeout_secs` as a duration.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

/// `[database]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// A `PostgreSQL` server to use instead of `SQLite`, such as
    /// `postgres://polls@127.0.0.1:5432/polls` (no TLS). Empty (the default): `SQLite`.
    pub url: String,
    /// The `SQLite` file, created and seeded on first run. Default `polls.sqlite3` in the
    /// working directory (gitignored in this repository).
    pub path: PathBuf,
    /// How long a write waits for another instance's, in milliseconds (default
    /// [`crate::db::DEFAULT_BUSY_TIMEOUT`], 5000).
    pub busy_timeout_ms: u64,
    /// The most `PostgreSQL` connections this instance opens (default
    /// [`crate::db::DEFAULT_POOL_SIZE`], 16).
    pub pool_size: usize,
    /// How long a request waits for a `PostgreSQL` connection, free or new, before it is
    /// answered 503, in milliseconds (default [`crate::db::DEFAULT_POOL_TIMEOUT`], 2000).
    pub pool_timeout_ms: u64,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            url: String::new(),
            path: PathBuf::from("polls.sqlite3"),
            busy_timeout_ms: millis(crate::db::DEFAULT_BUSY_TIMEOUT),
            pool_size: crate::db::DEFAULT_POOL_SIZE,
            pool_timeout_ms: millis(crate::db::DEFAULT_POOL_TIMEOUT),
        }
    }
}

impl Database {
    /// `busy_timeout_ms` as a duration.
    pub fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.busy_timeout_ms)
    }

    /// `pool_timeout_ms` as a duration.
    pub fn pool_timeout(&self) -> Duration {
        Duration::from_millis(self.pool_timeout_ms)
    }
}

/// A default duration as the config writes it. Every default is seconds long.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Which session storage.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// The encrypted cookie: no server needed.
    #[default]
    Cookie,
    /// Redis, for several instances behind a load balancer.
    Redis,
}

/// `[session]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Session {
    /// `cookie` (default) or `redis`.
    pub storage: StorageKind,
    /// The cookie storage's secret, at least 32 bytes. Empty (the default): a random key
    /// for this run, so sessions end when the process does.
    pub secret_key: String,
    /// The Redis server, for `storage = "redis"`.
    pub redis_url: String,
    /// The Redis key prefix.
    pub key_prefix: String,
    /// How long a Redis session lives after its last change, in seconds.
    pub ttl_secs: u64,
    /// How long one attempt to connect to Redis may take, in milliseconds (default
    /// [`tandem_session::DEFAULT_REDIS_CONNECT_TIMEOUT`], 1000).
    pub redis_connect_timeout_ms: u64,
    /// How long one Redis command may take, in milliseconds (default
    /// [`tandem_session::DEFAULT_REDIS_RESPONSE_TIMEOUT`], 500).
    pub redis_response_timeout_ms: u64,
    /// The session cookie's name.
    pub cookie_name: String,
    /// The cookie's `Max-Age` in seconds; 0 (the default) for a browser-session cookie.
    pub max_age_secs: i64,
    /// The cookie's `Secure` attribute: turn it on behind HTTPS.
    pub secure: bool,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            storage: StorageKind::Cookie,
            secret_key: String::new(),
            redis_url: "redis://127.0.0.1:6379/0".to_owned(),
            key_prefix: "polls_session:".to_owned(),
            ttl_secs: tandem_session::DEFAULT_TTL.as_secs(),
            redis_connect_timeout_ms: millis(tandem_session::DEFAULT_REDIS_CONNECT_TIMEOUT),
            redis_response_timeout_ms: millis(tandem_session::DEFAULT_REDIS_RESPONSE_TIMEOUT),
            cookie_name: "POLLS_SESSION".to_owned(),
            max_age_secs: 0,
            secure: false,
        }
    }
}

/// `[static]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Static {
    /// The folder served at `/static`. Default: this package's `static/` folder.
    pub dir: PathBuf,
}

impl Default for Static {
    fn default() -> Self {
        Static { dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("static") }
    }
}

impl Config {
    /// Reads and parses the TOML file at `path`.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("config {}: {e}", path.display()))
    }

    /// Parses a TOML config.
    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_all_defaults() {
        let config = Config::parse("").unwrap();
        assert_eq!((config.server.host.as_str(), config.server.port), ("127.0.0.1", 8080));
        assert_eq!(config.session.storage, StorageKind::Cookie);
        assert_eq!(config.database.path, Path::new("polls.sqlite3"));
        assert_eq!(config.database.url, "", "SQLite unless PostgreSQL is asked for");
        assert_eq!(config.database.busy_timeout(), crate::db::DEFAULT_BUSY_TIMEOUT);
        assert_eq!(config.database.pool_timeout(), crate::db::DEFAULT_POOL_TIMEOUT);
        assert_eq!(config.server.shutdown_timeout(), tandem_web::DEFAULT_SHUTDOWN_TIMEOUT);
        assert!(config.static_files.dir.join("style.css").is_file());
    }

    #[test]
    fn keys_override_and_typos_are_refused() {
        let config = Config::parse(
            "[server]\nport = 0\n[session]\nstorage = \"redis\"\nkey_prefix = \"p:\"\n",
        )
        .unwrap();
        assert_eq!(config.server.port, 0);
        assert_eq!(config.session.storage, StorageKind::Redis);
        assert_eq!(config.session.key_prefix, "p:");
        assert_eq!(config.session.cookie_name, "POLLS_SESSION");
        assert!(Config::parse("[server]\nprot = 1\n").is_err());
        assert!(Config::parse("[session]\nstorage = \"memcached\"\n").is_err());
    }

    #[test]
    fn the_shipped_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/polls.toml");
        Config::load(&path).unwrap();
    }
}
