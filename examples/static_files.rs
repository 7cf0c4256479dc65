//! Static files with a directory listing: aiohttp's `add_static(..., show_index=True)`.
//! Files are streamed from disk with ranges and validators; a path that would leave the
//! directory is a 404 like any missing file.
//!
//! ```text
//! cargo run --example static_files -- [DIR]      # DIR defaults to the current directory
//! curl http://127.0.0.1:8080/static/             # the listing
//! ```

use std::path::Path;

use tandem_http::web::{Application, Request, Response, StaticOptions, run_app};

pub(crate) fn app(root: &Path) -> Result<Application, tandem_http::web::Error> {
    let mut app = Application::new();
    app.add_get("/", |_req: Request| async {
        Response::html(r#"<a href="/static/">the files</a>"#)
    });
    let options = StaticOptions::default().with_show_index(true);
    app.add_static("/static", root, options)?.name("static");
    Ok(app)
}

fn main() -> Result<(), tandem_http::web::Error> {
    let root = std::env::args().nth(1).unwrap_or_else(|| ".".to_owned());
    run_app(app(Path::new(&root))?, "127.0.0.1", 8080)
}
