//! Signals and `cleanup_ctx` with an `SQLite` database, as the seeds' blog posts example: the
//! database is opened at startup and closed at cleanup, by one function that sets up and
//! returns its own teardown (aiohttp's `cleanup_ctx`, an async generator there). The
//! `on_startup`, `on_shutdown` and `on_cleanup` signals log the server's life.
//!
//! ```text
//! cargo run --example sqlite_signals -- [DB_PATH]     # db.sqlite3 by default
//! curl -d '{"title": "First", "text": "Hello"}' http://127.0.0.1:8080/post
//! curl http://127.0.0.1:8080/posts
//! ```
//!
//! `SQLite` calls block, so handlers run them on tokio's blocking pool
//! (`spawn_blocking`) rather than on the thread that serves connections.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tandem_http::web::{
    App, Application, Error, HttpError, Request, Response, json_response, run_app,
};

/// The open database, as application state: aiohttp's `app["DB"]`. `None` once cleanup has
/// closed it.
pub(crate) struct Db(Mutex<Option<Connection>>);

impl Db {
    /// Runs `f` on the connection on the blocking pool.
    async fn call<T, F>(self: Arc<Self>, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            let guard = self.0.lock().map_err(|_| Error::new("a database call panicked"))?;
            let conn = guard.as_ref().ok_or_else(|| Error::new("the database is closed"))?;
            f(conn).map_err(Error::new)
        })
        .await?
    }

    /// Whether cleanup has closed the connection.
    pub(crate) fn is_closed(&self) -> bool {
        self.0.lock().map_or(true, |conn| conn.is_none())
    }
}

#[derive(Deserialize, Serialize)]
pub(crate) struct Post {
    pub(crate) title: String,
    pub(crate) text: String,
}

fn db(req: &Request) -> Arc<Db> {
    req.state::<Db>().expect("the cleanup context opened the database before serving")
}

async fn new_post(mut req: Request) -> Result<Response, Error> {
    let post: Post = req.json().await?;
    let id = db(&req)
        .call(move |conn| {
            conn.execute(
                "INSERT INTO posts (title, text) VALUES (?1, ?2)",
                (&post.title, &post.text),
            )?;
            Ok(conn.last_insert_rowid())
        })
        .await?;
    Ok(json_response(&json!({ "new_post": id })))
}

async fn list_posts(req: Request) -> Result<Response, Error> {
    let posts = db(&req)
        .call(|conn| {
            let mut stmt = conn.prepare("SELECT title, text FROM posts ORDER BY id")?;
            let rows =
                stmt.query_map([], |row| Ok(Post { title: row.get(0)?, text: row.get(1)? }))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await?;
    Ok(json_response(&posts))
}

async fn get_post(req: Request) -> Result<Response, Error> {
    let id: i64 =
        req.match_info("id").and_then(|id| id.parse().ok()).ok_or_else(HttpError::not_found)?;
    let post = db(&req)
        .call(move |conn| {
            let found =
                conn.query_row("SELECT title, text FROM posts WHERE id = ?1", [id], |row| {
                    Ok(Post { title: row.get(0)?, text: row.get(1)? })
                });
            match found {
                Ok(post) => Ok(Some(post)),
                Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?;
    post.map(|post| json_response(&post)).ok_or_else(|| HttpError::not_found().into())
}

/// Opens (and if needed creates) the database at `path`.
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL)",
    )?;
    Ok(conn)
}

pub(crate) fn app(db_path: PathBuf) -> Application {
    let mut app = Application::new();
    app.on_startup(|_app: App| async {
        println!("startup: opening the database");
        Ok(())
    });
    // Setup and teardown in one place: the returned future runs at cleanup, and only if
    // this setup succeeded.
    app.cleanup_ctx(move |app: App| {
        let path = db_path.clone();
        async move {
            let conn =
                tokio::task::spawn_blocking(move || open(&path)).await?.map_err(Error::new)?;
            app.set_state(Db(Mutex::new(Some(conn))));
            Ok(async move {
                let db = app.state::<Db>().expect("set above");
                let conn = db.0.lock().ok().and_then(|mut conn| conn.take());
                if let Some(Err((_, e))) = conn.map(Connection::close) {
                    eprintln!("cleanup: closing the database failed: {e}");
                }
            })
        }
    });
    app.on_shutdown(|_app: App| async {
        println!("shutdown: finishing the requests in flight");
        Ok(())
    });
    // Cleanup signals run after the cleanup contexts' teardowns.
    app.on_cleanup(|app: App| async move {
        let closed = app.state::<Db>().is_none_or(|db| db.is_closed());
        println!("cleanup: the database is {}", if closed { "closed" } else { "still open" });
        Ok(())
    });
    app.add_post("/post", new_post);
    app.add_get("/posts", list_posts);
    app.add_get("/posts/{id}", get_post);
    app
}

fn main() -> Result<(), Error> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "db.sqlite3".to_owned());
    run_app(app(PathBuf::from(path)), "127.0.0.1", 8080)
}
