//! Forms and file uploads. `GET /` is an HTML page with two forms; `POST /login` reads a
//! urlencoded form with `post()`; `POST /upload` streams the `file` part of a multipart body
//! to disk chunk by chunk with the multipart reader, as aiohttp's guide stores an mp3, so
//! a large file is never held in memory.
//!
//! ```text
//! cargo run --example upload -- [UPLOAD_DIR]
//! curl -d 'user=ada&password=x' http://127.0.0.1:8080/login
//! curl -F file=@Cargo.toml http://127.0.0.1:8080/upload
//! ```

use std::path::{Path, PathBuf};

use tandem_http::web::{Application, HttpError, Request, Response, run_app};
use tokio::io::AsyncWriteExt;

const PAGE: &str = r#"<!doctype html>
<form action="/login" method="post">
  <input name="user"> <input name="password" type="password"> <button>Log in</button>
</form>
<form action="/upload" method="post" enctype="multipart/form-data">
  <input name="file" type="file"> <button>Upload</button>
</form>
"#;

/// Where uploads go, kept as application state.
struct UploadDir(PathBuf);

async fn login(mut req: Request) -> Result<Response, tandem_http::web::Error> {
    let form = req.post().await?;
    match (form.get("user"), form.get("password")) {
        (Some(user), Some(_)) if !user.is_empty() => Ok(Response::text(format!("Welcome, {user}"))),
        _ => Err(HttpError::bad_request().with_text("user and password are required").into()),
    }
}

async fn store_file(mut req: Request) -> Result<Response, tandem_http::web::Error> {
    let dir = req.state::<UploadDir>().expect("app() sets the upload directory");
    let mut reader = req.multipart()?;
    while let Some(mut part) = reader.next_part().await? {
        if part.name() != Some("file") {
            continue;
        }
        // The client chooses the file name: keep only a plain last component, so an upload
        // can never be written outside the directory.
        let name = part.filename().and_then(safe_name).ok_or_else(|| {
            HttpError::bad_request().with_text("the file part needs a plain file name")
        })?;
        let mut file = tokio::fs::File::create(dir.0.join(&name)).await?;
        let mut size = 0;
        while let Some(chunk) = part.chunk().await? {
            size += chunk.len();
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        return Ok(Response::text(format!("{name} sized of {size} successfully stored")));
    }
    Err(HttpError::bad_request().with_text("no `file` part").into())
}

/// The last component of a client's file name, if it is an ordinary one.
pub(crate) fn safe_name(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next()?;
    let plain = !last.is_empty() && last != "." && last != ".." && !last.contains('\0');
    plain.then(|| last.to_owned())
}

pub(crate) fn app(upload_dir: &Path) -> Application {
    let mut app = Application::new();
    app.set_state(UploadDir(upload_dir.to_owned()));
    app.add_get("/", |_req: Request| async { Response::html(PAGE) });
    app.add_post("/login", login);
    app.add_post("/upload", store_file);
    app
}

fn main() -> Result<(), tandem_http::web::Error> {
    let dir = std::env::args().nth(1).map_or_else(std::env::temp_dir, PathBuf::from);
    println!("uploads go to {}", dir.display());
    run_app(app(&dir), "127.0.0.1", 8080)
}
