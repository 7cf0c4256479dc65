//! A `PostgreSQL` server of the test's own: a fresh cluster in a temporary folder, on a free
//! loopback port, stopped when dropped. Debian's `postgresql` package provides the programs
//! in `/usr/lib/postgresql/<version>/bin`, not on PATH.

use std::{
    fs::File,
    os::unix::{fs::MetadataExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::support::{TIMEOUT, within};

const BIN_ROOT: &str = "/usr/lib/postgresql";
const INSTALL: &str = "PostgreSQL's server in /usr/lib/postgresql/<version>/bin \
                       (`cargo xtask peers` installs Debian's `postgresql`)";

/// The cluster's superuser, and the database the app gets.
const USER: &str = "polls";
const DATABASE: &str = "polls";

/// How many free ports to try: another process may take one between our probe and the
/// server's bind.
const START_ATTEMPTS: usize = 3;

/// The cluster's server, stopped (and its folder removed) when dropped.
pub(crate) struct Postgres {
    child: Child,
    port: u16,
    cluster: Cluster,
    _dir: tempfile::TempDir,
}

/// What it takes to start the cluster's server (again).
struct Cluster {
    bin: PathBuf,
    owner: Owner,
    data: PathBuf,
    log: PathBuf,
}

impl Cluster {
    fn spawn(&self, port: u16) -> Child {
        self.owner
            .command(self.bin.join("postgres"))
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k"])
            // Its Unix socket in the cluster's folder rather than /var/run/postgresql.
            .arg(&self.data)
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .stdout(Stdio::null())
            .stderr(File::options().create(true).append(true).open(&self.log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("run postgres: {e}; {INSTALL}"))
    }
}

impl Postgres {
    pub(crate) async fn start() -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap();
        let owner = Owner::of_cluster(dir.path());
        let data = dir.path().join("data");
        let initdb = owner
            .command(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            // Trust: only this test's loopback clients reach the cluster. No fsync: the
            // cluster is thrown away.
            .args(["-U", USER, "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"])
            .output()
            .unwrap_or_else(|e| panic!("run initdb: {e}; {INSTALL}"));
        assert!(
            initdb.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&initdb.stdout),
            String::from_utf8_lossy(&initdb.stderr)
        );
        let cluster = Cluster { bin, owner, data, log: dir.path().join("postgres.log") };
        for _ in 0..START_ATTEMPTS {
            let port =
                std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut child = cluster.spawn(port);
            if ready(&mut child, port).await {
                let (client, connection) = connect(port, "postgres").await.unwrap();
                tokio::spawn(connection);
                within(client.batch_execute(&format!("CREATE DATABASE {DATABASE}"))).await.unwrap();
                return Postgres { child, port, cluster, _dir: dir };
            }
            stop(&mut child);
        }
        panic!(
            "postgres did not start on a free port in {START_ATTEMPTS} attempts: {}",
            std::fs::read_to_string(&cluster.log).unwrap_or_default()
        );
    }

    /// The app's database.
    pub(crate) fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// A connection to the app's database, to count what the app wrote.
    pub(crate) async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = connect(self.port, DATABASE).await.unwrap();
        tokio::spawn(connection);
        client
    }

    /// Stops the server as `pg_ctl restart -m fast` does (its sessions ended, their
    /// transactions rolled back) and starts it again on the same port, once it has exited;
    /// returns once it accepts connections again.
    pub(crate) async fn restart(&mut self) {
        stop(&mut self.child);
        self.child = self.cluster.spawn(self.port);
        assert!(
            ready(&mut self.child, self.port).await,
            "postgres did not start again: {}",
            std::fs::read_to_string(&self.cluster.log).unwrap_or_default()
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// SIGINT, `PostgreSQL`'s fast shutdown: it ends its sessions and removes its shared memory
/// segment, which SIGKILL would leave behind.
fn stop(child: &mut Child) {
    // The child is not reaped yet, so its pid cannot have been reused.
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let _ = child.wait();
}

/// The newest installed version's programs.
fn bin_dir() -> PathBuf {
    let versions =
        std::fs::read_dir(BIN_ROOT).unwrap_or_else(|e| panic!("{BIN_ROOT}: {e}; {INSTALL}"));
    versions
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .max()
        .map_or_else(
            || panic!("no version in {BIN_ROOT}; {INSTALL}"),
            |version| Path::new(BIN_ROOT).join(version.to_string()).join("bin"),
        )
}

/// Who runs initdb and postgres.
#[derive(Clone, Copy)]
enum Owner {
    /// This process's user.
    Me,
    /// Another, for a test running as root: initdb and postgres refuse to run as root.
    User { uid: u32, gid: u32 },
}

impl Owner {
    /// Decides for the cluster in `dir`, a folder this process just made, and gives it to
    /// the `postgres` user (which the Debian package creates) when this process is root.
    fn of_cluster(dir: &Path) -> Owner {
        if dir.metadata().unwrap().uid() != 0 {
            return Owner::Me;
        }
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, "postgres"]).output().unwrap();
            let id = String::from_utf8_lossy(&out.stdout).trim().parse();
            id.unwrap_or_else(|_| panic!("no `postgres` user to run the server as; {INSTALL}"))
        };
        let (uid, gid) = (id("-u"), id("-g"));
        std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
        Owner::User { uid, gid }
    }

    fn command(&self, program: PathBuf) -> Command {
        let mut command = Command::new(program);
        if let Owner::User { uid, gid } = *self {
            // As root, std also drops the supplementary groups.
            command.uid(uid).gid(gid);
        }
        command
    }
}

type Connection =
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>;

async fn connect(
    port: u16,
    database: &str,
) -> Result<(tokio_postgres::Client, Connection), tokio_postgres::Error> {
    let url = format!("postgres://{USER}@127.0.0.1:{port}/{database}");
    within(tokio_postgres::connect(&url, tokio_postgres::NoTls)).await
}

/// Connects until the server answers, or it exits, or [`TIMEOUT`] passes.
async fn ready(child: &mut Child, port: u16) -> bool {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        // Refused while it is not listening yet; "the database system is starting up"
        // while it recovers.
        if connect(port, "postgres").await.is_ok() {
            return true;
        }
        // A bounded retry on connect.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
