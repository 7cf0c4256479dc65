//! Test support: the polls app on a free port with a fresh database, a client that keeps
//! cookies, and the few bits of HTML scraping the pages need.

use std::{future::Future, time::Duration};

use polls::{Config, Db, build_app, config};
use tandem_client::{ClientResponse, ClientSession, CookieJar};
use tandem_web::AppRunner;

/// The longest any single wait in a test may take before it counts as a hang.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// Awaits `fut`, failing the test if it takes longer than [`TIMEOUT`].
pub(crate) async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, fut).await.expect("the test step finished in time")
}

/// A client that keeps cookies for 127.0.0.1, as a browser would.
pub(crate) fn browser() -> ClientSession {
    ClientSession::builder().cookie_jar(CookieJar::unsafe_hosts()).build()
}

/// The polls app on 127.0.0.1 with a database of its own.
pub(crate) struct Polls {
    pub(crate) base: String,
    runner: AppRunner,
    _dir: tempfile::TempDir,
}

impl Polls {
    /// On a fresh `SQLite` file.
    pub(crate) async fn start() -> Polls {
        Polls::start_on(config::Database::default()).await
    }

    /// On `database`; an `SQLite` file in a fresh folder unless it has a `url`.
    pub(crate) async fn start_on(database: config::Database) -> Polls {
        Polls::start_with(Config { database, ..Config::default() }).await
    }

    /// With `config`; its database an `SQLite` file in a fresh folder unless it has a `url`.
    pub(crate) async fn start_with(config: Config) -> Polls {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("polls.sqlite3");
        let database = config::Database { path, ..config.database.clone() };
        let db = within(Db::open(&database)).await.unwrap();
        let app = build_app(&config, db).await.unwrap();
        let mut runner = AppRunner::new(app).unwrap();
        runner.setup().await.unwrap();
        let addr = runner.tcp_site("127.0.0.1", 0).await.unwrap();
        Polls { base: format!("http://{addr}"), runner, _dir: dir }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) async fn stop(self) {
        within(self.runner.cleanup()).await;
    }
}

/// Status and body of a GET.
pub(crate) async fn get(client: &ClientSession, url: &str) -> (u16, String) {
    read(within(client.get(url).send()).await.unwrap()).await
}

/// Posts a form the way a browser submits one, following the redirect.
pub(crate) async fn post_form(
    client: &ClientSession,
    url: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    read(within(client.post(url).form(form).send()).await.unwrap()).await
}

pub(crate) async fn read(mut resp: ClientResponse) -> (u16, String) {
    let status = resp.status().as_u16();
    (status, within(resp.text()).await.unwrap())
}

/// The value of attribute `attr` on each tag that contains `marker`, in order.
fn attribute_after<'a>(html: &'a str, marker: &str, attr: &str) -> Vec<&'a str> {
    html.match_indices(marker)
        .filter_map(|(at, _)| {
            let tag_end = html[at..].find('>')? + at;
            let tag = &html[at..tag_end];
            let start = tag.find(&format!("{attr}=\""))? + attr.len() + 2;
            let len = tag[start..].find('"')?;
            Some(&tag[start..start + len])
        })
        .collect()
}

/// The detail page's hidden CSRF token.
pub(crate) fn csrf_token(html: &str) -> String {
    let tokens = attribute_after(html, "name=\"csrf_token\"", "value");
    assert_eq!(tokens.len(), 1, "one CSRF field in {html}");
    tokens[0].to_owned()
}

/// The detail page's hidden vote id, fresh for each form shown.
pub(crate) fn vote_id(html: &str) -> String {
    let ids = attribute_after(html, "name=\"vote_id\"", "value");
    assert_eq!(ids.len(), 1, "one vote id field in {html}");
    ids[0].to_owned()
}

/// The values of the detail page's radio buttons, in order.
pub(crate) fn choices(html: &str) -> Vec<String> {
    let radios = attribute_after(html, "type=\"radio\" name=\"choice\"", "value");
    radios.into_iter().map(str::to_owned).collect()
}

/// The form's `action`.
pub(crate) fn form_action(html: &str) -> String {
    attribute_after(html, "<form", "action")[0].to_owned()
}

/// The results page's live feed, which its script opens.
pub(crate) fn live_feed(html: &str) -> String {
    attribute_after(html, "<ul class=\"results\"", "data-live")[0].to_owned()
}

/// The links of the question list.
pub(crate) fn question_links(html: &str) -> Vec<String> {
    attribute_after(html, "<a href=\"/poll/", "href").into_iter().map(str::to_owned).collect()
}
