//! The Redis storage against a real redis-server on loopback.

use std::time::Duration;

use redis::AsyncCommands;
use tandem_session::{DEFAULT_COOKIE_NAME, RedisStorage, SessionMiddleware};

use crate::{
    redis_server::Redis,
    support::{app, bare_client, client, cookie_value, get, get_with, start, within},
};

async fn storage(redis: &Redis) -> RedisStorage {
    RedisStorage::connect(&redis.url()).await.expect("connect to the test's redis-server")
}

#[tokio::test]
async fn sessions_live_in_redis_under_the_prefix_with_a_ttl() {
    let redis = Redis::start().await;
    let storage = storage(&redis).await.key_prefix("polls:").ttl(Duration::from_secs(300));
    let server = start(app(SessionMiddleware::new(storage))).await;
    let client = client();
    get(&client, &server.url("/count")).await;
    let (set_cookie, body) = get(&client, &server.url("/count")).await;
    assert_eq!(body, "2");
    let id = cookie_value(&set_cookie.unwrap());
    assert_eq!(id.len(), 32, "the cookie holds only the id: {id}");

    let mut conn = redis.conn().await;
    let json: String = conn.get(format!("polls:{id}")).await.unwrap();
    let record: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(record["session"]["n"], 2);
    assert!(record["created"].as_u64().unwrap() > 0);
    let ttl: i64 = conn.ttl(format!("polls:{id}")).await.unwrap();
    assert!((1..=300).contains(&ttl), "ttl {ttl}");
    server.close().await;
}

#[tokio::test]
async fn two_servers_share_sessions_through_redis() {
    let redis = Redis::start().await;
    let one = start(app(SessionMiddleware::new(storage(&redis).await))).await;
    let two = start(app(SessionMiddleware::new(storage(&redis).await))).await;
    let (set_cookie, _) = get(&bare_client(), &one.url("/login/bob")).await;
    let cookie = format!("{DEFAULT_COOKIE_NAME}={}", cookie_value(&set_cookie.unwrap()));
    let (_, body) = get_with(&bare_client(), &two.url("/whoami"), Some(&cookie)).await;
    assert_eq!(body, "bob");
    one.close().await;
    two.close().await;
}

#[tokio::test]
async fn login_rotates_the_id_and_deletes_the_old_record() {
    let redis = Redis::start().await;
    let server = start(app(SessionMiddleware::new(storage(&redis).await))).await;
    let client = client();
    let (before, _) = get(&client, &server.url("/count")).await;
    let before = cookie_value(&before.unwrap());
    let (after, _) = get(&client, &server.url("/login/ann")).await;
    let after = cookie_value(&after.unwrap());
    assert_ne!(before, after, "log-in gets a new id");

    let mut conn = redis.conn().await;
    let old: bool = conn.exists(format!("tandem_session:{before}")).await.unwrap();
    let new: bool = conn.exists(format!("tandem_session:{after}")).await.unwrap();
    assert!(!old && new);
    // The old id, replayed, is an empty session.
    let cookie = format!("{DEFAULT_COOKIE_NAME}={before}");
    assert_eq!(
        get_with(&bare_client(), &server.url("/whoami"), Some(&cookie)).await.1,
        "anonymous"
    );
    assert_eq!(get(&client, &server.url("/whoami")).await.1, "ann");

    let (deleted, _) = get(&client, &server.url("/logout")).await;
    assert!(deleted.unwrap().contains("Max-Age=0"));
    let gone: bool = conn.exists(format!("tandem_session:{after}")).await.unwrap();
    assert!(!gone, "log-out deletes the record");
    server.close().await;
}

#[tokio::test]
async fn unknown_malformed_and_corrupt_ids_give_a_fresh_session_with_a_new_id() {
    let redis = Redis::start().await;
    let server = start(app(SessionMiddleware::new(storage(&redis).await))).await;
    let mut conn = redis.conn().await;
    let planted = "0123456789abcdef0123456789abcdef";
    let corrupt = "fedcba9876543210fedcba9876543210";
    let () = conn.set(format!("tandem_session:{corrupt}"), "{not json").await.unwrap();
    let () = conn.set("tandem_session:*", r#"{"created":1,"session":{"n":99}}"#).await.unwrap();
    for hostile in [planted, corrupt, "*", "", "../../etc", &"f".repeat(5000)] {
        let cookie = format!("{DEFAULT_COOKIE_NAME}={hostile}");
        let (set_cookie, body) =
            get_with(&bare_client(), &server.url("/count"), Some(&cookie)).await;
        assert_eq!(body, "1", "fresh for {hostile:.40}");
        let id = cookie_value(&set_cookie.unwrap());
        assert_ne!(id, hostile, "the client never chooses its id");
    }
    server.close().await;
}

/// Redis crashes and comes back on the same port, with its append-only file: while it is
/// down, a request that needs the session gets a 503 at once (no retry loop holding it);
/// the first request after it returns is served, by the same storage with no restart; the
/// session written before the crash is still there.
#[tokio::test]
async fn redis_down_is_a_prompt_503_and_service_resumes_when_it_returns() {
    let mut redis = Redis::start().await;
    let server = start(app(SessionMiddleware::new(storage(&redis).await))).await;
    let client = client();
    get(&client, &server.url("/count")).await;
    assert_eq!(get(&client, &server.url("/healthz")).await.1, "ok");
    redis.kill();
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let resp = within(client.get(&server.url("/count")).send()).await.unwrap();
        assert_eq!(resp.status(), 503);
        let limit = tandem_session::DEFAULT_REDIS_CONNECT_TIMEOUT;
        assert!(started.elapsed() < limit, "answered in {:?}", started.elapsed());
    }
    let health = within(client.get(&server.url("/healthz")).send()).await.unwrap();
    assert_eq!(health.status(), 503, "the health check sees it too");
    redis.restart().await;
    assert_eq!(get(&client, &server.url("/healthz")).await.1, "ok");
    let (_, body) = get(&client, &server.url("/count")).await;
    assert_eq!(body, "2", "the session from before the crash, counted on");
    server.close().await;
}
