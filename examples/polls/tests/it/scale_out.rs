//! The scale-out setup of docs/deployment.md on loopback: redis-server, two `polls`
//! processes sharing it and one `SQLite` file, and nginx balancing between them. A session
//! started on one instance is used on the other.

use std::{fmt::Write as _, path::Path, process::Stdio, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, ChildStdout, Command},
};

use crate::{
    redis_server::Redis,
    support::{browser, choices, csrf_token, form_action, get, read, within},
};

/// A `polls` process, killed when dropped.
struct Instance {
    addr: String,
    _child: Child,
    // Held so the process never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Instance {
    async fn start(config: &Path) -> Instance {
        let mut child = Command::new(env!("CARGO_BIN_EXE_polls"))
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the polls binary");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        within(stdout.read_line(&mut line)).await.unwrap();
        let addr = line
            .trim()
            .strip_prefix("polls: listening on http://")
            .and_then(|a| a.strip_suffix('/'))
            .unwrap_or_else(|| panic!("polls printed {line:?}, not its address"))
            .to_owned();
        Instance { addr, _child: child, _stdout: stdout }
    }
}

/// nginx in the foreground with everything it writes under one folder; killed when dropped.
struct Nginx {
    port: u16,
    _child: Child,
}

/// How many free ports to try: another process may take one between our probe and
/// nginx's bind.
const NGINX_START_ATTEMPTS: usize = 3;

impl Nginx {
    async fn start(dir: &Path, upstreams: &[&str]) -> Nginx {
        for _ in 0..NGINX_START_ATTEMPTS {
            let port =
                std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            std::fs::write(dir.join("nginx.conf"), nginx_conf(dir, port, upstreams)).unwrap();
            let mut child = Command::new("nginx")
                .args(["-e", "stderr", "-g", "daemon off;", "-p"])
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

/// docs/deployment.md's configuration, with test paths and ports, and the upstream that
/// answered in `X-Upstream`. `master_process off` runs nginx as one process, so killing it
/// leaves no worker behind, and round robin alternates strictly.
fn nginx_conf(dir: &Path, port: u16, upstreams: &[&str]) -> String {
    let dir = dir.display();
    let servers = upstreams.iter().fold(String::new(), |mut out, u| {
        let _ = writeln!(out, "        server {u};");
        out
    });
    format!(
        "master_process off;
pid {dir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream polls {{
{servers}        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://polls;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"
    )
}

fn upstream(resp: &tandem_client::ClientResponse) -> String {
    resp.headers()["x-upstream"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn two_instances_behind_nginx_share_sessions_in_redis() {
    let redis = Redis::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("polls.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nport = 0\n[database]\npath = {:?}\n[session]\nstorage = \"redis\"\nredis_url = {:?}\n",
            dir.path().join("polls.sqlite3"),
            redis.url()
        ),
    )
    .unwrap();
    let one = Instance::start(&config).await;
    let two = Instance::start(&config).await;
    let nginx = Nginx::start(dir.path(), &[&one.addr, &two.addr]).await;
    let front = format!("http://127.0.0.1:{}", nginx.port);
    let client = browser();

    // The form comes from one instance, which starts the session and its CSRF token...
    let resp = within(client.get(&format!("{front}/poll/1")).send()).await.unwrap();
    let shown_by = upstream(&resp);
    let (status, page) = read(resp).await;
    assert_eq!(status, 200);
    // ...and the vote goes to the other, which finds the token in the shared session.
    let resp = within(
        client
            .post(&format!("{front}{}", form_action(&page)))
            .form(&[("csrf_token", csrf_token(&page).as_str()), ("choice", &choices(&page)[0])])
            .allow_redirects(false)
            .send(),
    )
    .await
    .unwrap();
    let voted_on = upstream(&resp);
    assert_ne!(shown_by, voted_on, "nginx alternates between the instances");
    assert_eq!(resp.status(), 302);
    let results = resp.headers()["location"].to_str().unwrap().to_owned();
    let (_, results) = get(&client, &format!("{front}{results}")).await;
    assert!(results.contains("<li class=\"mine\">Not much -- 1 vote</li>"), "{results}");

    // The session is in Redis under the demo's prefix, not in the cookie.
    let mut conn = redis.conn().await;
    let keys: Vec<String> =
        within(redis::AsyncCommands::keys(&mut conn, "polls_session:*")).await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");

    // Each instance, asked directly, knows what this visitor voted for.
    for instance in [&one, &two] {
        let (status, page) = get(&client, &format!("http://{}/poll/1", instance.addr)).await;
        assert_eq!(status, 200);
        assert!(page.contains("You voted for “Not much”"), "{}: {page}", instance.addr);
    }
}
