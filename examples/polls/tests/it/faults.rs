//! Faults the scale-out deployment survives, each under load (`load.rs`) on
//! docs/deployment.md's setup (`deployment.rs`): Redis crashing and coming back, `PostgreSQL`
//! restarting, an instance killed behind nginx and then each restarted gracefully, and one
//! instance shut down gracefully. Each prints its line of figures; `cargo xtask e2e` runs
//! them with `--nocapture` and a 10 s Redis outage.

use std::time::{Duration, Instant};

use tandem_client::ClientSession;
use tandem_ws::{CloseCode, Message, WsConnectExt as _};
use tokio::task::JoinHandle;

use crate::{
    deployment::{Deployment, Front},
    load::{Exchange, Figures, Load, Report, Step, VISITORS},
    support::within,
};

/// The cases take turns, so that each has the machine's cores to itself: their timings
/// and figures then mean what they say.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long Redis stays down when `POLLS_FAULT_OUTAGE_SECS` does not say: long enough for
/// hundreds of requests to meet the outage, short enough for CI. `cargo xtask e2e` sets
/// the 10 s.
const DEFAULT_OUTAGE: Duration = Duration::from_secs(3);

/// Every request that starts this long after Redis is back must succeed.
const RECOVERY: Duration = Duration::from_secs(2);

/// Votes acknowledged before a fault: the load is under way.
const WARM_UP_VOTES: usize = 40;

/// WebSocket clients on the live results while an instance shuts down.
const LIVE_CLIENTS: usize = 4;

fn outage() -> Duration {
    match std::env::var("POLLS_FAULT_OUTAGE_SECS") {
        Ok(secs) => Duration::from_secs(secs.parse().expect("POLLS_FAULT_OUTAGE_SECS: seconds")),
        Err(_) => DEFAULT_OUTAGE,
    }
}

fn acknowledged_vote(e: &Exchange) -> bool {
    e.step == Step::Vote && e.ok()
}

/// The instance that answered, by nginx's `X-Upstream` (the last of those it tried).
fn answered_by(e: &Exchange, addr: &str) -> bool {
    e.upstream.as_deref().and_then(|tried| tried.rsplit(", ").next()) == Some(addr)
}

/// A case under way: its turn on the machine, the deployment, the load past its warm-up,
/// and the sessions Redis held then, before the fault.
struct Case {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    deployment: Deployment,
    load: Load,
    sessions_before: Vec<String>,
}

impl Case {
    async fn start(instances: usize, front: Front) -> Case {
        let turn = ONE_AT_A_TIME.lock().await;
        let deployment = Deployment::start(instances, front).await;
        let mut load = Load::start(&deployment.front());
        load.wait_for("votes before the fault", WARM_UP_VOTES, acknowledged_vote).await;
        let sessions_before = deployment.sessions().await.into_iter().collect();
        Case { _turn: turn, deployment, load, sessions_before }
    }
}

/// The checks every case ends with: no session replaced, Redis still holding every session
/// it held before the fault, and the database holding exactly the votes acknowledged.
async fn nothing_lost(
    deployment: &Deployment,
    report: &Report,
    sessions_before: &[String],
) -> usize {
    for ids in report.sessions() {
        assert_eq!(ids.len(), 1, "a visitor's session was lost and replaced: {ids:?}");
    }
    let sessions = deployment.sessions().await;
    for id in sessions_before {
        assert!(sessions.contains(id), "session {id} from before the fault is gone");
    }
    let counted = deployment.counted_votes().await;
    assert_eq!(counted, report.acknowledged(), "the votes counted are the votes acknowledged");
    counted.len()
}

fn print(figures: &Figures, notes: &[String]) {
    println!("\n{}\n{figures}", Figures::HEAD);
    for note in notes {
        println!("  {note}");
    }
}

#[tokio::test]
async fn fault_redis_crashes_and_comes_back() {
    let Case { _turn, mut deployment, mut load, sessions_before } =
        Case::start(1, Front::Direct).await;
    let down = Instant::now();
    deployment.redis.kill();
    load.wait_for("a 503 while Redis is down", 1, |e| e.outcome == Ok(503)).await;
    // The outage's length is the case itself, not a wait for something to happen.
    tokio::time::sleep(outage().saturating_sub(down.elapsed())).await;
    deployment.redis.restart().await;
    let back = Instant::now();
    load.wait_for("votes after Redis is back", VISITORS, |e| {
        acknowledged_vote(e) && e.started >= back + RECOVERY
    })
    .await;
    let mut report = load.stop().await;
    report.resend_pending().await;

    let exchanges = report.exchanges();
    for e in &exchanges {
        assert!(e.ok() || e.is_clear_503(), "only the 503 page while Redis is down: {e:?}");
        assert!(e.ok() || e.started + e.took >= down, "a failure before the outage: {e:?}");
        assert!(e.ok() || e.started < back + RECOVERY, "a failure after recovery: {e:?}");
    }
    let failed: Vec<&Exchange> = exchanges.iter().filter(|e| !e.ok()).collect();
    let slowest = failed.iter().map(|e| e.took).max().unwrap_or_default();
    // Refused at once on loopback, and retried once (`RedisStorage`): no hang.
    let limit = 2 * tandem_session::DEFAULT_REDIS_CONNECT_TIMEOUT;
    assert!(slowest < limit, "a 503 took {slowest:?}");
    let last_failure = failed.iter().map(|e| e.started).max().unwrap();
    let first_after = exchanges.iter().filter(|e| e.ok() && e.started >= back).map(|e| e.started);
    let first_after = first_after.min().unwrap();
    let counted = nothing_lost(&deployment, &report, &sessions_before).await;

    let figures =
        report.figures(&format!("Redis down {:.1} s", (back - down).as_secs_f64()), counted);
    let since = |t: Instant| {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        if t >= back {
            format!("+{:.0} ms", ms(t - back))
        } else {
            format!("-{:.0} ms", ms(back - t))
        }
    };
    print(
        &figures,
        &[
            format!("slowest 503: {:.1} ms", slowest.as_secs_f64() * 1e3),
            format!(
                "Redis back at 0: first success started {}, last failure started {}",
                since(first_after),
                since(last_failure)
            ),
            format!("sessions from before the outage, all still there: {}", sessions_before.len()),
        ],
    );
}

#[tokio::test]
async fn fault_postgres_restarts() {
    let Case { _turn, mut deployment, mut load, sessions_before } =
        Case::start(1, Front::Direct).await;
    let down = Instant::now();
    deployment.postgres.restart().await;
    let back = Instant::now();
    load.wait_for("votes after the restart", WARM_UP_VOTES, |e| {
        acknowledged_vote(e) && e.started >= back
    })
    .await;
    let mut report = load.stop().await;
    report.resend_pending().await;

    let exchanges = report.exchanges();
    for e in &exchanges {
        assert!(e.ok() || e.is_clear_503(), "only the 503 page while PostgreSQL restarts: {e:?}");
        // The pool found its broken connections closed and made new ones.
        assert!(e.ok() || e.started < back, "a failure once PostgreSQL was back: {e:?}");
    }
    let during = exchanges.iter().filter(|e| e.started >= down && e.started < back).count();
    let counted = nothing_lost(&deployment, &report, &sessions_before).await;
    let figures = report
        .figures(&format!("PostgreSQL restart ({:.1} s)", (back - down).as_secs_f64()), counted);
    print(&figures, &[format!("requests started during the restart: {during}")]);
}

#[tokio::test]
async fn fault_an_instance_killed_then_each_restarted_gracefully() {
    let Case { _turn, mut deployment, mut load, sessions_before } =
        Case::start(3, Front::Nginx).await;

    let killed = Instant::now();
    deployment.instances[0].kill().await;
    load.wait_for("votes after the crash", WARM_UP_VOTES, |e| {
        acknowledged_vote(e) && e.started >= killed
    })
    .await;
    deployment.instances[0].restart().await;
    let addr = deployment.instances[0].addr.clone();
    let restarted = Instant::now();
    load.wait_for("the killed instance serving again", 1, |e| {
        e.ok() && answered_by(e, &addr) && e.started >= restarted
    })
    .await;

    for instance in &mut deployment.instances {
        let (status, printed) = instance.terminate().await;
        assert!(status.success() && printed.contains("polls: stopped"), "{status}: {printed}");
        let stopped = Instant::now();
        load.wait_for("votes while one is down", VISITORS, |e| {
            acknowledged_vote(e) && e.started >= stopped
        })
        .await;
        instance.restart().await;
        let restarted = Instant::now();
        load.wait_for("the instance serving again", 1, |e| {
            e.ok() && answered_by(e, &instance.addr) && e.started >= restarted
        })
        .await;
    }
    let mut report = load.stop().await;
    report.resend_pending().await;

    let exchanges = report.exchanges();
    for e in &exchanges {
        assert!(e.ok(), "every request answered, GETs and votes alike: {e:?}");
    }
    // nginx names every instance it tried: more than one means it retried elsewhere.
    let retried =
        exchanges.iter().filter(|e| e.upstream.as_deref().is_some_and(|u| u.contains(", ")));
    let retried = retried.count();
    let counted = nothing_lost(&deployment, &report, &sessions_before).await;
    let figures =
        report.figures("3 instances, one SIGKILLed, then each SIGTERMed in turn", counted);
    print(&figures, &[format!("answered by nginx's second try, on another instance: {retried}")]);
}

/// A WebSocket client of the live results, connected and shown the counts, then new
/// counts as the load's votes come in; its task returns the code the server closed with.
async fn live_client(url: &str) -> JoinHandle<Option<CloseCode>> {
    let mut ws = within(ClientSession::new().ws_connect(url).connect()).await.unwrap();
    for _ in ["the counts", "an update"] {
        let counts = within(ws.receive()).await;
        assert!(counts.as_text().is_some_and(|t| t.contains("\"votes\"")), "{counts:?}");
    }
    tokio::spawn(async move {
        loop {
            match ws.receive().await {
                Message::Close(code, _) => return Some(code),
                other if other.is_close() => return None,
                _ => {}
            }
        }
    })
}

#[tokio::test]
async fn fault_graceful_shutdown_under_load() {
    let Case { _turn, mut deployment, load, sessions_before } = Case::start(1, Front::Direct).await;
    let url = deployment.instances[0].url("/poll/1/live").replacen("http", "ws", 1);
    let mut live = Vec::new();
    for _ in 0..LIVE_CLIENTS {
        live.push(live_client(&url).await);
    }

    let term = Instant::now();
    let (status, printed) = deployment.instances[0].terminate().await;
    let exited = Instant::now();
    assert!(status.success() && printed.contains("polls: stopped"), "{status}: {printed}");
    let report = load.stop().await;

    for client in live {
        let code = within(client).await.unwrap();
        assert_eq!(code, Some(CloseCode::GOING_AWAY), "closed with 1001");
    }
    let exchanges = report.exchanges();
    for e in &exchanges {
        // Not accepted: refused once the listener was closed, or reset on a connection
        // still in the listener's queue when it closed, or (a vote: a GET is sent again by
        // the client itself) on a keep-alive connection closed while idle as it was sent.
        // That no such vote was read shows in the votes counted below. Anything else (a
        // 5xx, a body cut short, a timeout) would be a request dropped.
        let unaccepted = matches!(e.outcome, Err("connect" | "io" | "disconnected"));
        assert!(e.ok() || (unaccepted && e.started + e.took >= term), "{e:?}");
    }
    let in_flight = exchanges.iter().filter(|e| e.started < term && e.started + e.took > term);
    let finished = in_flight.filter(|e| e.ok()).count();
    let unacknowledged = report.unacknowledged();
    let counted = nothing_lost(&deployment, &report, &sessions_before).await;
    let figures = report.figures("one instance SIGTERMed under load", counted);
    print(
        &figures,
        &[
            format!("in flight at SIGTERM and answered: {finished}"),
            format!("exit {:.0} ms after SIGTERM", (exited - term).as_secs_f64() * 1e3),
            format!("votes sent and never answered, none counted: {}", unacknowledged.len()),
            format!(
                "live results clients, each shown new counts, closed with 1001: {LIVE_CLIENTS}"
            ),
        ],
    );
}
