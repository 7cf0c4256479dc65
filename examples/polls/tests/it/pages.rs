//! The pages as plain HTML forms: list, detail, vote with the CSRF token, results; the
//! refusals; the error pages.

use polls::{Db, config};
use tandem_web::{Application, Request};

use crate::{
    postgres_server::Postgres,
    support::{
        Polls, browser, choices, csrf_token, form_action, get, live_feed, post_form,
        question_links, vote_id, within,
    },
};

/// Opens the first question from the list, as a visitor would; returns its URL and page.
async fn open_question(polls: &Polls, client: &tandem_client::ClientSession) -> (String, String) {
    let (status, list) = get(client, &polls.url("/")).await;
    assert_eq!(status, 200);
    let links = question_links(&list);
    assert_eq!(links.len(), 2, "both seeded questions are listed: {list}");
    let url = polls.url(&links[0]);
    let (status, page) = get(client, &url).await;
    assert_eq!(status, 200);
    (url, page)
}

#[tokio::test]
async fn list_detail_vote_results_counts_votes() {
    counts_votes(Polls::start().await).await;
}

#[tokio::test]
async fn the_same_pages_on_postgresql() {
    let server = Postgres::start().await;
    let database = config::Database { url: server.url(), ..Default::default() };
    counts_votes(Polls::start_on(database.clone()).await).await;

    // A restart finds the tables and the votes, and does not seed again.
    let db = within(Db::open(&database)).await.unwrap();
    let questions = within(db.questions()).await.unwrap();
    assert_eq!(questions.len(), 2, "{questions:?}");
    let (_, choices) = within(db.question(questions[0].id)).await.unwrap().unwrap();
    assert_eq!(choices.iter().map(|c| c.votes).collect::<Vec<_>>(), [0, 2, 0]);
}

/// Two visitors vote for the same choice of the first question.
async fn counts_votes(polls: Polls) {
    let ann = browser();
    let (_, page) = open_question(&polls, &ann).await;
    assert!(page.contains("<form") && page.contains("method=\"post\""), "{page}");
    let options = choices(&page);
    assert_eq!(options.len(), 3, "{page}");

    let (token, id) = (csrf_token(&page), vote_id(&page));
    let action = polls.url(&form_action(&page));
    let form = [("csrf_token", token.as_str()), ("vote_id", &id), ("choice", &options[1])];
    let (status, results) = post_form(&ann, &action, &form).await;
    assert_eq!(status, 200, "{results}");
    assert!(results.contains("The server -- 1 vote<"), "{results}");
    assert!(results.contains("The client -- 0 votes"), "{results}");

    // A second visitor, with a session and token of her own.
    let bea = browser();
    let (_, page) = open_question(&polls, &bea).await;
    let (token, id) = (csrf_token(&page), vote_id(&page));
    let form = [("csrf_token", token.as_str()), ("vote_id", &id), ("choice", &options[1])];
    let (_, results) = post_form(&bea, &action, &form).await;
    assert!(results.contains("The server -- 2 votes"), "{results}");
    polls.stop().await;
}

#[tokio::test]
async fn the_session_remembers_the_vote() {
    let polls = Polls::start().await;
    let client = browser();
    let (url, page) = open_question(&polls, &client).await;
    assert!(!page.contains("You voted for"));
    let (_, results) = post_form(
        &client,
        &polls.url(&form_action(&page)),
        &[
            ("csrf_token", &csrf_token(&page)),
            ("vote_id", &vote_id(&page)),
            ("choice", &choices(&page)[2]),
        ],
    )
    .await;
    assert!(results.contains("<li class=\"mine\">Both, in tandem -- 1 vote</li>"), "{results}");
    let (_, page) = get(&client, &url).await;
    assert!(page.contains("You voted for “Both, in tandem”"), "{page}");
    let (_, list) = get(&client, &polls.url("/")).await;
    assert_eq!(list.matches("you voted").count(), 1, "{list}");
    // Another visitor's session knows nothing of it.
    let (_, page) = get(&browser(), &url).await;
    assert!(!page.contains("You voted for"));
    polls.stop().await;
}

#[tokio::test]
async fn votes_without_the_sessions_token_are_refused() {
    let polls = Polls::start().await;
    let ann = browser();
    let (url, page) = open_question(&polls, &ann).await;
    let action = polls.url(&form_action(&page));
    let choice = choices(&page)[0].clone();
    let (anns_token, id) = (csrf_token(&page), vote_id(&page));

    // Bea's session has a token of its own; Ann's (seen in a forged page) is not it.
    let bea = browser();
    get(&bea, &url).await;
    let forged = [
        vec![("vote_id", id.as_str()), ("choice", &choice)],
        vec![("csrf_token", ""), ("vote_id", &id), ("choice", &choice)],
        vec![
            ("csrf_token", "0123456789abcdef0123456789abcdef"),
            ("vote_id", &id),
            ("choice", &choice),
        ],
        vec![("csrf_token", &anns_token), ("vote_id", &id), ("choice", &choice)],
    ];
    for form in &forged {
        let (status, body) = post_form(&bea, &action, form).await;
        assert_eq!(status, 403, "{form:?}: {body}");
    }
    // Nor does a visitor with no session at all get through with Ann's token.
    let (status, _) = post_form(&tandem_client::ClientSession::new(), &action, &forged[3]).await;
    assert_eq!(status, 403);

    let results_url = format!("{url}/results");
    let (_, results) = get(&ann, &results_url).await;
    assert_eq!(results.matches(" -- 0 votes").count(), 3, "no vote counted: {results}");
    polls.stop().await;
}

#[tokio::test]
async fn the_same_form_sent_twice_counts_once() {
    let polls = Polls::start().await;
    let client = browser();
    let (url, page) = open_question(&polls, &client).await;
    let action = polls.url(&form_action(&page));
    let (token, id, options) = (csrf_token(&page), vote_id(&page), choices(&page));
    // Sent again (a reload of the POST, or nginx retrying it on another instance), even
    // with another choice ticked: the first counts, the others change nothing.
    for choice in [&options[0], &options[0], &options[1]] {
        let form = [("csrf_token", token.as_str()), ("vote_id", &id), ("choice", choice)];
        let (status, results) = post_form(&client, &action, &form).await;
        assert_eq!(status, 200, "{results}");
        assert!(results.contains("<li class=\"mine\">The client -- 1 vote</li>"), "{results}");
        assert!(results.contains("The server -- 0 votes"), "{results}");
    }
    // A form shown anew carries a new vote id, and counts.
    let (_, page) = get(&client, &url).await;
    assert_ne!(vote_id(&page), id);
    let form =
        [("csrf_token", token.as_str()), ("vote_id", &vote_id(&page)), ("choice", &options[0])];
    let (_, results) = post_form(&client, &action, &form).await;
    assert!(results.contains("The client -- 2 votes"), "{results}");
    polls.stop().await;
}

#[tokio::test]
async fn a_vote_without_a_well_formed_vote_id_is_refused() {
    let polls = Polls::start().await;
    let client = browser();
    let (url, page) = open_question(&polls, &client).await;
    let action = polls.url(&form_action(&page));
    let (token, choice) = (csrf_token(&page), choices(&page)[0].clone());
    let upper = vote_id(&page).to_uppercase();
    for id in [None, Some(""), Some("not-an-id"), Some(upper.as_str()), Some("*")] {
        let mut form = vec![("csrf_token", token.as_str()), ("choice", &choice)];
        form.extend(id.map(|id| ("vote_id", id)));
        let (status, body) = post_form(&client, &action, &form).await;
        assert_eq!(status, 403, "{form:?}: {body}");
    }
    let (_, results) = get(&client, &format!("{url}/results")).await;
    assert_eq!(results.matches(" -- 0 votes").count(), 3, "no vote counted: {results}");
    polls.stop().await;
}

#[tokio::test]
async fn the_results_page_gets_new_counts_over_a_websocket() {
    use tandem_ws::WsConnectExt as _;

    let polls = Polls::start().await;
    let client = browser();
    let (url, page) = open_question(&polls, &client).await;
    let (_, results) = get(&client, &format!("{url}/results")).await;
    let live = live_feed(&results);
    let mut ws = within(client.ws_connect(&polls.url(&live).replacen("http", "ws", 1)).connect())
        .await
        .unwrap();
    let counts: serde_json::Value = within(ws.receive_json()).await.unwrap();
    let votes = |counts: &serde_json::Value| -> Vec<i64> {
        counts["choices"].as_array().unwrap().iter().map(|c| c["votes"].as_i64().unwrap()).collect()
    };
    assert_eq!(votes(&counts), [0, 0, 0]);
    let form = [
        ("csrf_token", csrf_token(&page)),
        ("vote_id", vote_id(&page)),
        ("choice", choices(&page)[2].clone()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    post_form(&client, &polls.url(&form_action(&page)), &form).await;
    let counts: serde_json::Value = within(ws.receive_json()).await.unwrap();
    assert_eq!(votes(&counts), [0, 0, 1], "{counts}");
    let (status, _) = get(&client, &polls.url("/poll/9999/live")).await;
    assert_eq!(status, 404, "no feed for no question");
    // Gone, as a page closed: shutdown then has no closing handshake to wait for.
    drop(ws);
    polls.stop().await;
}

#[tokio::test]
async fn healthz_says_what_answers() {
    let polls = Polls::start().await;
    let resp = within(browser().get(&polls.url("/healthz")).send()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("set-cookie").is_none(), "no session is made");
    let (_, body) = crate::support::read(resp).await;
    assert_eq!(body, r#"{"database":"ok","sessions":"ok"}"#);
    polls.stop().await;
}

#[tokio::test]
async fn a_missing_or_foreign_choice_shows_the_form_again() {
    let polls = Polls::start().await;
    let client = browser();
    let (_, page) = open_question(&polls, &client).await;
    let action = polls.url(&form_action(&page));
    let token = csrf_token(&page);
    // Choice 1 belongs to the other question.
    let other_questions_choice = if choices(&page).contains(&"1".to_owned()) { "4" } else { "1" };
    for form in [
        vec![("csrf_token", token.as_str())],
        vec![("csrf_token", &token), ("choice", "x")],
        vec![("csrf_token", &token), ("choice", other_questions_choice)],
        vec![("csrf_token", &token), ("choice", "99999999999999999999")],
    ] {
        let (status, body) = post_form(&client, &action, &form).await;
        assert_eq!(status, 400, "{form:?}");
        assert!(body.contains("You didn&#x27;t select a choice."), "{body}");
        assert!(body.contains("<form"), "the form again: {body}");
    }
    polls.stop().await;
}

#[tokio::test]
async fn unknown_pages_get_the_404_page_and_css_is_served() {
    let polls = Polls::start().await;
    let client = browser();
    for path in ["/nope", "/poll/9999", "/poll/9999/results", "/poll/99999999999999999999"] {
        let (status, body) = get(&client, &polls.url(path)).await;
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("<h1>Page not found</h1>"), "{path}: {body}");
        assert!(body.contains("/static/style.css"), "in the site's layout: {body}");
    }
    let (status, _) = post_form(&client, &polls.url("/poll/9999/vote"), &[("choice", "1")]).await;
    assert_eq!(status, 404);
    let (status, css) = get(&client, &polls.url("/static/style.css")).await;
    assert_eq!(status, 200);
    assert!(css.contains("font-family"), "{css}");
    polls.stop().await;
}

#[tokio::test]
async fn a_failing_handler_gets_the_500_page() {
    // The demo's own middleware and templates, around a handler that fails.
    let mut app = Application::new();
    app.set_state(tandem_templates::Templates::new(tandem_templates::Loader::Embedded(&[
        ("base.html", "{% block content %}{% endblock %}"),
        ("500.html", include_str!("../../templates/500.html")),
    ])));
    app.middleware(polls::errors::error_pages);
    app.add_get("/", |_req: Request| async { "home" }).name("index");
    app.add_get("/boom", |_req: Request| async {
        Err::<&str, _>(std::io::Error::other("the disk is on fire"))
    });
    let mut runner = tandem_web::AppRunner::new(app).unwrap();
    runner.setup().await.unwrap();
    let addr = runner.tcp_site("127.0.0.1", 0).await.unwrap();
    let (status, body) = get(&browser(), &format!("http://{addr}/boom")).await;
    assert_eq!(status, 500);
    assert!(body.contains("Something went wrong"), "{body}");
    assert!(!body.contains("disk"), "no details leak: {body}");
    within(runner.cleanup()).await;
}
