//! docs/deployment.md's setup on loopback, for the scale-out and fault tests: redis-server
//! with its append-only file, a `PostgreSQL` cluster, `polls` processes sharing them, and
//! nginx in front, configured by the guide's own nginx file.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, ChildStdout, Command},
};

use crate::{postgres_server::Postgres, redis_server::Redis, support::within};

/// The guide whose nginx file the tests run.
const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/deployment.md");

/// How long an instance may take to finish its requests after SIGTERM: well past what a
/// request takes here, short enough that a stuck shutdown fails the test.
const SHUTDOWN_TIMEOUT_SECS: u64 = 5;

/// Where the app is reached: one instance directly, or nginx in front of them all.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Front {
    Direct,
    Nginx,
}

/// Everything the deployment runs; each part is stopped when dropped.
pub(crate) struct Deployment {
    pub(crate) redis: Redis,
    pub(crate) postgres: Postgres,
    pub(crate) instances: Vec<Instance>,
    pub(crate) nginx: Option<Nginx>,
    _dir: tempfile::TempDir,
}

impl Deployment {
    pub(crate) async fn start(instances: usize, front: Front) -> Deployment {
        let redis = Redis::start().await;
        let postgres = Postgres::start().await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("polls.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nport = 0\nshutdown_timeout_secs = {SHUTDOWN_TIMEOUT_SECS}\n\
                 [database]\nurl = {:?}\n\
                 [session]\nstorage = \"redis\"\nredis_url = {:?}\n",
                postgres.url(),
                redis.url()
            ),
        )
        .unwrap();
        let mut started = Vec::new();
        for _ in 0..instances {
            started.push(Instance::start(&config).await);
        }
        let nginx = match front {
            Front::Direct => None,
            Front::Nginx => {
                let upstreams: Vec<&str> = started.iter().map(|i| i.addr.as_str()).collect();
                Some(Nginx::start(dir.path(), &upstreams).await)
            }
        };
        Deployment { redis, postgres, instances: started, nginx, _dir: dir }
    }

    /// The base URL clients use: nginx's, or the one instance's.
    pub(crate) fn front(&self) -> String {
        match &self.nginx {
            Some(nginx) => format!("http://127.0.0.1:{}", nginx.port),
            None => format!("http://{}", self.instances[0].addr),
        }
    }

    /// The ids of the votes the database holds.
    pub(crate) async fn counted_votes(&self) -> BTreeSet<String> {
        let client = self.postgres.client().await;
        let rows = within(client.query("SELECT id FROM vote", &[])).await.unwrap();
        rows.iter().map(|row| row.get(0)).collect()
    }

    /// The session ids Redis holds.
    pub(crate) async fn sessions(&self) -> BTreeSet<String> {
        let mut conn = self.redis.conn().await;
        let keys: Vec<String> =
            within(redis::AsyncCommands::keys(&mut conn, "polls_session:*")).await.unwrap();
        keys.iter().filter_map(|k| k.strip_prefix("polls_session:")).map(str::to_owned).collect()
    }
}

/// A `polls` process, killed when dropped.
pub(crate) struct Instance {
    /// `http` or `https`.
    scheme: &'static str,
    /// `127.0.0.1:port`, the same across restarts.
    pub(crate) addr: String,
    config: PathBuf,
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Instance {
    /// Starts `polls --config CONFIG` and waits for the line it prints once it listens.
    pub(crate) async fn start(config: &Path) -> Instance {
        // Its access log and errors, out of the test's output.
        let log = config.with_extension("log");
        let stderr = std::fs::File::options().create(true).append(true).open(&log).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_polls"))
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("start the polls binary");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        within(stdout.read_line(&mut line)).await.unwrap();
        let (scheme, addr) = line
            .trim()
            .strip_prefix("polls: listening on ")
            .and_then(|a| a.strip_suffix('/'))
            .and_then(|a| a.split_once("://"))
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("polls printed {line:?}, not its address: {log}")
            });
        let scheme = if scheme == "https" { "https" } else { "http" };
        Instance { scheme, addr: addr.to_owned(), config: config.to_owned(), child, stdout }
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.addr.rsplit_once(':').unwrap().1.parse().unwrap()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// SIGKILL, as a crash or the OOM killer would: nothing is finished.
    pub(crate) async fn kill(&mut self) {
        self.child.start_kill().unwrap();
        within(self.child.wait()).await.unwrap();
    }

    /// SIGTERM, as systemd or an orchestrator stops it; waits for it to exit, and returns
    /// how it did and what it printed last.
    pub(crate) async fn terminate(&mut self) -> (ExitStatus, String) {
        let pid = self.child.id().expect("the instance runs").to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let status = within(self.child.wait()).await.unwrap();
        let mut rest = String::new();
        within(tokio::io::AsyncReadExt::read_to_string(&mut self.stdout, &mut rest)).await.unwrap();
        (status, rest)
    }

    /// Starts it again on the same port, after [`kill`](Self::kill) or
    /// [`terminate`](Self::terminate): its config with the port it had.
    pub(crate) async fn restart(&mut self) {
        let port = self.port();
        let text = std::fs::read_to_string(&self.config).unwrap();
        assert!(text.contains("port = 0\n"), "the config picks a free port: {text}");
        let config = self.config.with_extension(format!("{port}.toml"));
        std::fs::write(&config, text.replacen("port = 0\n", &format!("port = {port}\n"), 1))
            .unwrap();
        let again = Instance::start(&config).await;
        assert_eq!(again.addr, self.addr);
        (self.child, self.stdout) = (again.child, again.stdout);
    }
}

/// nginx in the foreground with everything it writes under one folder; killed when dropped.
pub(crate) struct Nginx {
    pub(crate) port: u16,
    _child: Child,
}

/// How many free ports to try: another process may take one between our probe and
/// nginx's bind.
const NGINX_START_ATTEMPTS: usize = 3;

impl Nginx {
    async fn start(dir: &Path, upstreams: &[&str]) -> Nginx {
        let guide = std::fs::read_to_string(GUIDE).unwrap();
        for _ in 0..NGINX_START_ATTEMPTS {
            let port =
                std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            std::fs::write(dir.join("nginx.conf"), nginx_conf(&guide, dir, port, upstreams))
                .unwrap();
            let mut child = Command::new("nginx")
                .arg("-e")
                .arg(dir.join("error.log"))
                .args(["-g", "daemon off;", "-p"])
                .arg(dir)
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .kill_on_drop(true)
                .spawn()
                .expect("nginx on PATH (`cargo xtask peers` installs it)");
            if listening(&mut child, port).await {
                return Nginx { port, _child: child };
            }
        }
        panic!("nginx did not start on a free port in {NGINX_START_ATTEMPTS} attempts");
    }
}

/// Connects until nginx accepts, or it exits, or the test's timeout passes.
async fn listening(child: &mut Child, port: u16) -> bool {
    let deadline = tokio::time::Instant::now() + crate::support::TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return true;
        }
        // A bounded retry on connect: nginx is not listening yet.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The `upstream` and `server` blocks of the guide's nginx file, with the test's port and
/// instances (each with the guide's parameters), inside what running it from a folder
/// needs. `X-Upstream` names the instance that answered. `master_process off` runs nginx
/// as one process, so killing it leaves no worker behind; neither belongs in production.
fn nginx_conf(guide: &str, dir: &Path, port: u16, upstreams: &[&str]) -> String {
    let start = guide.find("```nginx\n").expect("the guide's nginx file") + "```nginx\n".len();
    let end = guide[start..].find("```").unwrap() + start;
    let mut blocks = String::new();
    let mut servers_written = false;
    for line in guide[start..end].lines() {
        let trimmed = line.trim_start();
        if let Some(server) = trimmed.strip_prefix("server 127.0.0.1:") {
            if !servers_written {
                // The guide's parameters (max_fails, fail_timeout) on every test instance.
                let params = server.split_once(' ').map_or(";", |(_, params)| params);
                for upstream in upstreams {
                    let _ = writeln!(blocks, "        server {upstream} {params}");
                }
                servers_written = true;
            }
        } else if trimmed.starts_with("listen ") {
            let _ = writeln!(blocks, "        listen 127.0.0.1:{port};");
        } else {
            let _ = writeln!(blocks, "    {line}");
        }
    }
    assert!(servers_written, "an upstream block in the guide's nginx file:\n{blocks}");
    let dir = dir.display();
    format!(
        "master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    add_header X-Upstream $upstream_addr always;
{blocks}}}
"
    )
}
