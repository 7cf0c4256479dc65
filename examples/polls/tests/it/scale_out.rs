//! The scale-out setup of docs/deployment.md on loopback (`deployment.rs`): redis-server,
//! `PostgreSQL`, two `polls` processes sharing them, and nginx balancing between them with
//! the guide's own configuration. A session started on one instance is used on the other.

use tandem_ws::WsConnectExt as _;

use crate::{
    deployment::{Deployment, Front},
    support::{browser, choices, csrf_token, form_action, get, live_feed, read, vote_id, within},
};

fn upstream(resp: &tandem_client::ClientResponse) -> String {
    resp.headers()["x-upstream"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn two_instances_behind_nginx_share_sessions_in_redis() {
    let deployment = Deployment::start(2, Front::Nginx).await;
    let front = deployment.front();
    let client = browser();

    // The form comes from one instance, which starts the session and its CSRF token...
    let resp = within(client.get(&format!("{front}/poll/1")).send()).await.unwrap();
    let shown_by = upstream(&resp);
    let (status, page) = read(resp).await;
    assert_eq!(status, 200);
    // ...and the vote goes to the other, which finds the token in the shared session.
    let form = [
        ("csrf_token", csrf_token(&page)),
        ("vote_id", vote_id(&page)),
        ("choice", choices(&page)[0].clone()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = within(
        client
            .post(&format!("{front}{}", form_action(&page)))
            .form(&form)
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
    assert_eq!(deployment.sessions().await.len(), 1);

    // The live results through nginx's WebSocket location: the counts, the vote in them.
    let live = format!("{front}{}", live_feed(&results)).replacen("http", "ws", 1);
    let mut ws = within(client.ws_connect(&live).connect()).await.unwrap();
    let counts: serde_json::Value = within(ws.receive_json()).await.unwrap();
    assert_eq!(counts["choices"][0]["votes"], 1, "{counts}");

    // Each instance, asked directly, knows what this visitor voted for, and says that its
    // database and session storage answer.
    for instance in &deployment.instances {
        let (status, page) = get(&client, &instance.url("/poll/1")).await;
        assert_eq!(status, 200);
        assert!(page.contains("You voted for “Not much”"), "{}: {page}", instance.addr);
        let (status, health) = get(&client, &instance.url("/healthz")).await;
        assert_eq!((status, health.as_str()), (200, r#"{"database":"ok","sessions":"ok"}"#));
    }
}
