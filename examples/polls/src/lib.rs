//! The polls app from aiohttp's server tutorial, on Tandem: a question list, a detail page
//! with a voting form (CSRF-checked against the session, counted once however often it is
//! sent), results kept current over a WebSocket, templates, static CSS, error pages,
//! `SQLite` or `PostgreSQL`, sessions that remember each visitor's votes, `/healthz`, and an
//! admin page (aiohttp-security's checks) that adds a question.
//!
//! `main.rs` reads the config and serves [`build_app`]; the integration tests serve the same
//! application on a free loopback port.

pub mod admin;
pub mod config;
pub mod db;
pub mod errors;
pub mod live;
pub mod views;

use std::time::Duration;

use tandem_session::{
    CookieStorage, RedisStorage, SessionMiddleware, default_cookie_options,
    security::{self, SessionIdentityPolicy},
};
use tandem_templates::{Loader, Templates};
use tandem_web::{Application, StaticOptions};

pub use config::Config;
pub use db::Db;

/// The templates, compiled into the binary so it runs from any directory.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("index.html", include_str!("../templates/index.html")),
    ("detail.html", include_str!("../templates/detail.html")),
    ("results.html", include_str!("../templates/results.html")),
    ("404.html", include_str!("../templates/404.html")),
    ("500.html", include_str!("../templates/500.html")),
    ("503.html", include_str!("../templates/503.html")),
    ("admin.html", include_str!("../templates/admin.html")),
    ("admin_login.html", include_str!("../templates/admin_login.html")),
];

/// `error` and each of its causes: the Redis and `PostgreSQL` clients' errors often say only
/// there what failed ("Connection refused"). A cause the message already ends with, as some
/// errors print their cause themselves, is not repeated.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let said = e.to_string();
        if !text.ends_with(&said) {
            text = format!("{text}: {said}");
        }
        cause = e.source();
    }
    text
}

/// The session middleware the config asks for.
pub async fn sessions(config: &config::Session) -> Result<SessionMiddleware, String> {
    let middleware = match config.storage {
        config::StorageKind::Cookie if config.secret_key.is_empty() => {
            tracing::warn!(target: "polls", "no session secret_key configured: sessions last until restart");
            SessionMiddleware::new(CookieStorage::generate())
        }
        config::StorageKind::Cookie => SessionMiddleware::new(
            CookieStorage::new(config.secret_key.as_bytes()).map_err(|e| e.to_string())?,
        ),
        config::StorageKind::Redis => {
            let manager = RedisStorage::manager_config()
                .set_connection_timeout(Some(Duration::from_millis(
                    config.redis_connect_timeout_ms,
                )))
                .set_response_timeout(Some(Duration::from_millis(
                    config.redis_response_timeout_ms,
                )));
            let storage = RedisStorage::connect_with(&config.redis_url, manager)
                .await
                .map_err(|e| with_causes(&e))?
                .key_prefix(&config.key_prefix)
                .ttl(Duration::from_secs(config.ttl_secs));
            SessionMiddleware::new(storage)
        }
    };
    let options = default_cookie_options()
        .with_max_age((config.max_age_secs > 0).then_some(config.max_age_secs))
        .with_secure(config.secure);
    Ok(middleware.cookie_name(&config.cookie_name).cookie_options(options))
}

/// The whole application for `config`, on the database `db`. Async because a Redis
/// session storage connects here.
pub async fn build_app(config: &Config, db: Db) -> Result<Application, String> {
    let mut app = Application::new();
    app.set_state(db);
    app.set_state(live::Watched::default());
    app.set_state(Templates::new(Loader::Embedded(TEMPLATES)));
    // Outermost, so that a failure in the session middleware gets the 500 page too.
    app.middleware(errors::error_pages);
    app.middleware(sessions(&config.session).await?);
    app.add_get("/", views::index).name("index");
    app.add_get(r"/poll/{question_id:\d+}", views::detail).name("poll");
    app.add_post(r"/poll/{question_id:\d+}/vote", views::vote).name("vote");
    app.add_get(r"/poll/{question_id:\d+}/results", views::results).name("results");
    app.add_get(r"/poll/{question_id:\d+}/live", live::live).name("live");
    app.add_get("/healthz", views::healthz).name("healthz");
    app.set_state(admin::AdminPassword(config.admin.password.clone()));
    security::setup(&mut app, SessionIdentityPolicy::new(), admin::AdminPolicy);
    app.add_get("/admin/login", admin::login_form).name("admin_login");
    app.add_post("/admin/login", admin::login);
    app.add_post("/admin/logout", admin::logout).name("admin_logout");
    app.add_get("/admin", security::login_required(admin::admin)).name("admin");
    app.add_post("/admin/questions", admin::add_question).name("admin_questions");
    app.add_static("/static", &config.static_files.dir, StaticOptions::default())
        .map_err(|e| e.to_string())?
        .name("static");
    Ok(app)
}
