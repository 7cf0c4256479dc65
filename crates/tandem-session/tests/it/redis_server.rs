//! A redis-server of the test's own on a free loopback port. Also compiled into the polls
//! demo's tests (by `#[path]`), which need the same server; it uses only `redis`, `tokio`
//! and `tempfile`.

use std::{
    future::Future,
    process::{Child, Command, Stdio},
    time::Duration,
};

/// The longest the server may take to answer a PING, and any wait on it.
const TIMEOUT: Duration = Duration::from_secs(10);

async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, fut).await.expect("the redis step finished in time")
}

/// A redis-server of the test's own on a free loopback port, with the append-only file of
/// docs/deployment.md (every write appended, the file synced every second, read back at
/// start), so that [`Redis::restart`] finds the data again; killed when dropped.
pub(crate) struct Redis {
    child: Child,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
}

/// How many free ports to try before giving up: another process may take the port between
/// our probe and redis-server's bind.
const REDIS_START_ATTEMPTS: usize = 3;

impl Redis {
    pub(crate) async fn start() -> Redis {
        for _ in 0..REDIS_START_ATTEMPTS {
            let port = free_port();
            let dir = tempfile::tempdir().unwrap();
            let child = spawn(port, dir.path());
            let mut redis = Redis { child, port, dir };
            if redis.ready().await {
                return redis;
            }
        }
        panic!("redis-server did not start on a free port in {REDIS_START_ATTEMPTS} attempts");
    }

    /// Kills the server with SIGKILL, as a crash would, and waits for it to be gone.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and folder, after [`Redis::kill`].
    pub(crate) async fn restart(&mut self) {
        self.child = spawn(self.port, self.dir.path());
        assert!(self.ready().await, "redis-server did not start again on port {}", self.port);
    }

    /// Pings until the server answers, or it exits, or [`TIMEOUT`] passes.
    async fn ready(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let client = redis::Client::open(self.url()).unwrap();
        while tokio::time::Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                let pong: redis::RedisResult<String> =
                    redis::cmd("PING").query_async(&mut conn).await;
                if pong.is_ok() {
                    return true;
                }
            }
            // A bounded retry on connect: the server is not listening yet.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// A plain connection, to look at what the storage wrote.
    pub(crate) async fn conn(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url()).unwrap();
        within(client.get_multiplexed_async_connection()).await.unwrap()
    }
}

fn spawn(port: u16, dir: &std::path::Path) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "yes", "--appendfsync", "everysec"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on PATH (`cargo xtask peers` installs it)")
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
