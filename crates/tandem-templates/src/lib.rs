//! Jinja templates for Tandem servers: `aiohttp_jinja2` for Rust, on minijinja.
//!
//! [`setup`] puts a template environment in the application's state; [`render_template`]
//! renders one into an HTML response, and [`template`] turns a handler that returns a
//! context into one that answers with the rendered page (`aiohttp_jinja2`'s
//! `@template("name.html")`).
//!
//! ```no_run
//! use serde::Serialize;
//! use tandem_web::{Application, Request, StaticOptions};
//! use tandem_templates::{Loader, render_template, template};
//!
//! #[derive(Serialize)]
//! struct Index {
//!     names: Vec<String>,
//! }
//!
//! async fn index(_req: Request) -> Result<Index, tandem_web::Error> {
//!     Ok(Index { names: vec!["<b>escaped</b>".into()] })
//! }
//!
//! async fn about(req: Request) -> Result<tandem_web::Response, tandem_templates::Error> {
//!     render_template("about.html", &req, serde_json::json!({"version": 1}))
//! }
//!
//! let mut app = Application::new();
//! tandem_templates::setup(&mut app, Loader::folder("templates"));
//! app.add_get("/", template("index.html", index)).name("index");
//! app.add_get("/about", about);
//! app.add_static("/static", "static", StaticOptions::default())?.name("static");
//! # Ok::<(), tandem_web::Error>(())
//! ```
//!
//! Inside templates, as in `aiohttp_jinja2`:
//!
//! - `url_for("name", param=value)` is the path of a named route (values are converted to
//!   text and percent-encoded), so `{{ url_for("detail", id=question.id) }}`;
//! - `static("css/style.css")` is the URL of a file under the static route (the route named
//!   `static` unless [`Templates::static_route`] says otherwise).
//!
//! Auto-escaping is on for templates whose names end in `.html`, `.htm` or `.xml`, so values
//! from users cannot inject markup; `|safe` marks a value as already HTML.

mod error;
mod render;

pub use error::Error;
pub use render::{Loader, Templates, render_string, render_template, setup, template};

/// README.md's example, compiled as a doc test so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
