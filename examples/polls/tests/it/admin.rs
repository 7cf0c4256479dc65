//! The admin page: aiohttp-security's checks guard it, log-in and log-out go through the
//! session, and a question added there is on the site at once.

use polls::{Config, config};

use crate::support::{Polls, browser, get, post_form};

/// The first CSRF token of a page (the admin page has two forms).
fn first_csrf(html: &str) -> String {
    let after = html.split("name=\"csrf_token\" value=\"").nth(1).expect("a CSRF field");
    after[..after.find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn the_admin_logs_in_and_adds_a_question() {
    let admin = config::Admin { password: "correct horse".to_owned() };
    let polls = Polls::start_with(Config { admin, ..Config::default() }).await;
    let client = browser();

    assert_eq!(get(&client, &polls.url("/admin")).await.0, 401, "not logged in");
    let (status, form) = get(&client, &polls.url("/admin/login")).await;
    assert_eq!(status, 200);
    let token = first_csrf(&form);
    let url = polls.url("/admin/login");
    let wrong = [("csrf_token", token.as_str()), ("password", "wrong")];
    assert_eq!(post_form(&client, &url, &wrong).await.0, 401);
    let forged = [("csrf_token", "forged"), ("password", "correct horse")];
    assert_eq!(post_form(&client, &url, &forged).await.0, 403, "a forged form");
    let right = [("csrf_token", token.as_str()), ("password", "correct horse")];
    let (status, page) = post_form(&client, &url, &right).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Add a question"), "{page}");

    // Log-in started a fresh session: the form's token is new.
    let token = first_csrf(&page);
    let add = polls.url("/admin/questions");
    let bad = [
        ("csrf_token", token.as_str()),
        ("question", "Tabs or spaces?"),
        ("pub_date", "2026-12-07"),
        ("choices", "Tabs"),
    ];
    assert_eq!(post_form(&client, &add, &bad).await.0, 400, "one choice is not a poll");
    let good = [
        ("csrf_token", token.as_str()),
        ("question", "Tabs or spaces?"),
        ("pub_date", "2099-01-01"),
        ("choices", "Tabs\r\nSpaces\r\n"),
    ];
    let (status, detail) = post_form(&client, &add, &good).await;
    assert_eq!(status, 200, "{detail}");
    assert!(detail.contains("Tabs or spaces?") && detail.contains("Spaces"), "{detail}");
    let (_, index) = get(&client, &polls.url("/")).await;
    assert!(index.contains("Tabs or spaces?"), "on the list at once: {index}");

    // Logged out, the page and the action are refused again.
    let logout = [("csrf_token", token.as_str())];
    assert_eq!(post_form(&client, &polls.url("/admin/logout"), &logout).await.0, 200);
    assert_eq!(get(&client, &polls.url("/admin")).await.0, 401);
    let (_, form) = get(&client, &polls.url("/admin/login")).await;
    let again = [("csrf_token", first_csrf(&form)), ("question", "x".into())];
    let again: Vec<(&str, &str)> = again.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(post_form(&client, &add, &again).await.0, 401);
    polls.stop().await;
}

#[tokio::test]
async fn without_a_password_nobody_logs_in() {
    let polls = Polls::start().await;
    let client = browser();
    let (_, form) = get(&client, &polls.url("/admin/login")).await;
    let token = first_csrf(&form);
    let empty = [("csrf_token", token.as_str()), ("password", "")];
    assert_eq!(post_form(&client, &polls.url("/admin/login"), &empty).await.0, 401);
    polls.stop().await;
}
