//! The polls database on `SQLite`: the tutorial's `question` and `choice` tables.
//!
//! rusqlite is blocking, so every query runs on tokio's blocking pool, never on the
//! threads that serve connections. One connection behind a mutex is the whole pool: `SQLite`
//! writes one at a time anyway, and the demo's queries take microseconds.

use std::{
    path::Path,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

/// The default of `[database] busy_timeout_ms`: how long a query waits for another
/// process's write lock (two instances on one file) before failing.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A poll question.
#[derive(Clone, Debug, Serialize)]
pub struct Question {
    /// Its id.
    pub id: i64,
    /// The question.
    pub question_text: String,
    /// When it was published (`YYYY-MM-DD`).
    pub pub_date: String,
}

/// One answer to a question, with its count.
#[derive(Clone, Debug, Serialize)]
pub struct Choice {
    /// Its id.
    pub id: i64,
    /// The answer.
    pub choice_text: String,
    /// How many votes it has.
    pub votes: i64,
}

/// The questions and choices the first run creates, as in the aiohttp tutorial.
const SEED: &[(&str, &str, &[&str])] = &[
    ("What's new?", "2015-12-15", &["Not much", "The sky", "Just hacking again"]),
    ("Which side of HTTP?", "2026-01-01", &["The client", "The server", "Both, in tandem"]),
];

/// The database: cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

/// A query failed, or its blocking task did.
pub type DbError = Box<dyn std::error::Error + Send + Sync>;

impl Db {
    /// Opens (creating if needed) the database at `path` and seeds it if it has no
    /// questions; a write waits up to `busy_timeout` for another process's. Blocking: call
    /// it before serving.
    pub fn open(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Db> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(busy_timeout)?;
        // WAL lets readers in one process go on while another writes: two instances may
        // share the file (docs/deployment.md).
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // IMMEDIATE: two instances starting together cannot both see an empty table and
        // both seed it.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS question (
                 id INTEGER PRIMARY KEY,
                 question_text TEXT NOT NULL,
                 pub_date TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS choice (
                 id INTEGER PRIMARY KEY,
                 question_id INTEGER NOT NULL REFERENCES question (id) ON DELETE CASCADE,
                 choice_text TEXT NOT NULL,
                 votes INTEGER NOT NULL DEFAULT 0
             );",
        )?;
        let questions: i64 = tx.query_row("SELECT count(*) FROM question", [], |r| r.get(0))?;
        if questions == 0 {
            for (text, date, choices) in SEED {
                tx.execute(
                    "INSERT INTO question (question_text, pub_date) VALUES (?1, ?2)",
                    params![text, date],
                )?;
                let id = tx.last_insert_rowid();
                for choice in *choices {
                    tx.execute(
                        "INSERT INTO choice (question_id, choice_text) VALUES (?1, ?2)",
                        params![id, choice],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(Db { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn call<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let result = tokio::task::spawn_blocking(move || {
            // A panic inside a query leaves the connection usable; take it as it is.
            let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&conn)
        })
        .await?;
        Ok(result?)
    }

    /// Every question, newest first.
    pub async fn questions(&self) -> Result<Vec<Question>, DbError> {
        self.call(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, question_text, pub_date FROM question ORDER BY pub_date DESC, id",
            )?;
            stmt.query_map([], question_row)?.collect()
        })
        .await
    }

    /// A question and its choices; `None` if there is no such question.
    pub async fn question(&self, id: i64) -> Result<Option<(Question, Vec<Choice>)>, DbError> {
        self.call(move |conn| {
            let question = conn
                .query_row(
                    "SELECT id, question_text, pub_date FROM question WHERE id = ?1",
                    [id],
                    question_row,
                )
                .optional()?;
            let Some(question) = question else { return Ok(None) };
            let mut stmt = conn.prepare(
                "SELECT id, choice_text, votes FROM choice WHERE question_id = ?1 ORDER BY id",
            )?;
            let choices = stmt
                .query_map([id], |r| {
                    Ok(Choice { id: r.get(0)?, choice_text: r.get(1)?, votes: r.get(2)? })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Some((question, choices)))
        })
        .await
    }

    /// Adds a vote for `choice` of `question`; false if that choice is not one of the
    /// question's.
    pub async fn vote(&self, question: i64, choice: i64) -> Result<bool, DbError> {
        self.call(move |conn| {
            let changed = conn.execute(
                "UPDATE choice SET votes = votes + 1 WHERE id = ?1 AND question_id = ?2",
                [choice, question],
            )?;
            Ok(changed == 1)
        })
        .await
    }
}

fn question_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Question> {
    Ok(Question { id: r.get(0)?, question_text: r.get(1)?, pub_date: r.get(2)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn created_seeded_once_and_voted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("polls.sqlite3");
        let db = Db::open(&path, DEFAULT_BUSY_TIMEOUT).unwrap();
        let questions = db.questions().await.unwrap();
        assert_eq!(questions.len(), SEED.len());
        let (question, choices) = db.question(questions[0].id).await.unwrap().unwrap();
        assert_eq!(choices.len(), 3);
        assert!(db.vote(question.id, choices[1].id).await.unwrap());
        assert!(!db.vote(question.id, 9999).await.unwrap(), "not this question's choice");
        drop(db);

        // A second open (a restart, or a second instance) does not seed again.
        let db = Db::open(&path, DEFAULT_BUSY_TIMEOUT).unwrap();
        assert_eq!(db.questions().await.unwrap().len(), SEED.len());
        let (_, choices) = db.question(question.id).await.unwrap().unwrap();
        assert_eq!(choices.iter().map(|c| c.votes).collect::<Vec<_>>(), [0, 1, 0]);
        assert!(db.question(9999).await.unwrap().is_none());
    }
}
