//! The polls database: the tutorial's `question` and `choice` tables, and a `vote` table of
//! one row per vote, in `SQLite` (the default) or in `PostgreSQL` (`[database] url`).
//!
//! A vote is one `INSERT` keyed by the vote id its form carried, so it commits whole or
//! not at all, and a form sent twice (a retry by the browser or by nginx after an instance
//! failed mid-request) counts once. Counts are the rows, counted when read.
//!
//! The app's queries are written once: the same SQL runs on both backends, through one
//! private `Db::query` that each backend answers its own way. Only opening (the schema's
//! types, how two instances starting together are kept from seeding twice) differs.

mod error;

use std::{
    path::Path,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use deadpool_postgres::{Manager, Pool, Runtime};
use rusqlite::{Connection, TransactionBehavior};
use serde::Serialize;
use tokio_postgres::{NoTls, types::ToSql as PgToSql};

pub use self::error::Error;
use crate::config;

/// The default of `[database] busy_timeout_ms`: how long a query waits for another
/// process's write lock (two instances on one file) before failing.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The default of `[database] pool_size`: the most `PostgreSQL` connections one instance
/// opens. `PostgreSQL` allows 100 by default, so several instances fit beside `psql` and
/// backups.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// The default of `[database] pool_timeout_ms`: how long a request waits for a pooled
/// connection to be free, and for a new one to be opened, before it gets a 503. Opening
/// one takes milliseconds on a LAN; this bounds a server that does not answer.
pub const DEFAULT_POOL_TIMEOUT: Duration = Duration::from_secs(2);

/// A fresh vote id for a form: 128 random bits as 32 lower-case hex digits (a v4 UUID
/// without dashes).
pub fn new_vote_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether `id` is written as [`new_vote_id`] writes them: anything else in a form is not
/// looked up.
pub fn is_vote_id(id: &str) -> bool {
    uuid::Uuid::try_parse(id).is_ok_and(|uuid| uuid.simple().to_string() == id)
}

/// What became of a vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vote {
    /// Counted now.
    Counted,
    /// A form with this vote id was counted before, for this choice of the question: the
    /// same form sent again.
    AlreadyCounted {
        /// The choice counted then.
        choice: i64,
    },
    /// The choice is not one of the question's (or the vote id was used for another
    /// question): nothing counted.
    NotAChoice,
}

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

// The statements both backends run. `$1`, `$2` are PostgreSQL's placeholders; `SQLite` reads
// them as named parameters numbered in order of first appearance, so each statement uses
// them in ascending order. RETURNING (`SQLite` 3.35 and later; rusqlite bundles a newer one)
// lets every statement be a query.

const QUESTIONS: &str =
    "SELECT id, question_text, pub_date FROM question ORDER BY pub_date DESC, id";
const QUESTION: &str = "SELECT id, question_text, pub_date FROM question WHERE id = $1";
const CHOICES: &str = "SELECT c.id, c.choice_text, \
                       (SELECT count(*) FROM vote v WHERE v.choice_id = c.id) \
                       FROM choice c WHERE c.question_id = $1 ORDER BY c.id";
// One statement: the row is there, for a choice of this question, or it is not. A vote id
// already there is a form sent again, and counts nothing more (`ON CONFLICT DO NOTHING`
// returns no row for it). `CAST`: PostgreSQL cannot infer the type of a bare parameter in
// a select list. `SQLite` needs the WHERE clause to parse `ON CONFLICT` after a SELECT.
const VOTE: &str = "INSERT INTO vote (id, choice_id) \
                    SELECT CAST($1 AS TEXT), id FROM choice WHERE id = $2 AND question_id = $3 \
                    ON CONFLICT (id) DO NOTHING RETURNING choice_id";
const COUNTED_VOTE: &str = "SELECT v.choice_id FROM vote v JOIN choice c ON c.id = v.choice_id \
                            WHERE v.id = $1 AND c.question_id = $2";
const COUNT_QUESTIONS: &str = "SELECT count(*) FROM question";
const ADD_QUESTION: &str =
    "INSERT INTO question (question_text, pub_date) VALUES ($1, $2) RETURNING id";
const ADD_CHOICE: &str = "INSERT INTO choice (question_id, choice_text) VALUES ($1, $2)";
const INSERT_QUESTION: &str = "INSERT INTO question (question_text, pub_date) VALUES ($1, $2)";
// Seeding runs alone in its transaction, so the newest question is the one just inserted.
const INSERT_CHOICE: &str = "INSERT INTO choice (question_id, choice_text) \
                             VALUES ((SELECT max(id) FROM question), $1)";

// The schemas differ only in types: `SQLite`'s INTEGER PRIMARY KEY is its auto-numbered row
// id; PostgreSQL's INTEGER is 32 bits, and the app reads every number as an i64. Tables made
// by earlier versions of the demo have a `votes` column in `choice`, which is left unused.

const SQLITE_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS question (
         id INTEGER PRIMARY KEY,
         question_text TEXT NOT NULL,
         pub_date TEXT NOT NULL
     );
     CREATE TABLE IF NOT EXISTS choice (
         id INTEGER PRIMARY KEY,
         question_id INTEGER NOT NULL REFERENCES question (id) ON DELETE CASCADE,
         choice_text TEXT NOT NULL
     );
     CREATE TABLE IF NOT EXISTS vote (
         id TEXT PRIMARY KEY,
         choice_id INTEGER NOT NULL REFERENCES choice (id) ON DELETE CASCADE
     );
     CREATE INDEX IF NOT EXISTS vote_choice ON vote (choice_id);";

// The advisory lock (held to the end of the transaction) makes a second instance starting
// at the same moment wait, then find the tables made and seeded: CREATE TABLE IF NOT EXISTS
// alone can fail when two sessions race, and both could see an empty table.
const POSTGRES_SCHEMA: &str = "SELECT pg_advisory_xact_lock(hashtext('polls schema'));
     CREATE TABLE IF NOT EXISTS question (
         id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
         question_text TEXT NOT NULL,
         pub_date TEXT NOT NULL
     );
     CREATE TABLE IF NOT EXISTS choice (
         id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
         question_id BIGINT NOT NULL REFERENCES question (id) ON DELETE CASCADE,
         choice_text TEXT NOT NULL
     );
     CREATE TABLE IF NOT EXISTS vote (
         id TEXT PRIMARY KEY,
         choice_id BIGINT NOT NULL REFERENCES choice (id) ON DELETE CASCADE
     );
     CREATE INDEX IF NOT EXISTS vote_choice ON vote (choice_id);";

/// A statement parameter: every one in this schema is an integer or a text.
#[derive(Clone, Debug)]
enum Param {
    Int(i64),
    Text(&'static str),
    /// A vote id.
    Owned(String),
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Param::Int(i) => rusqlite::ToSql::to_sql(i),
            Param::Text(s) => rusqlite::ToSql::to_sql(s),
            Param::Owned(s) => rusqlite::ToSql::to_sql(s),
        }
    }
}

fn postgres_params(params: &[Param]) -> Vec<&(dyn PgToSql + Sync)> {
    params
        .iter()
        .map(|p| match p {
            Param::Int(i) => i as &(dyn PgToSql + Sync),
            Param::Text(s) => s,
            Param::Owned(s) => s,
        })
        .collect()
}

/// The statements that seed an empty database.
fn seed() -> impl Iterator<Item = (&'static str, Vec<Param>)> {
    SEED.iter().flat_map(|(text, date, choices)| {
        let question = (INSERT_QUESTION, vec![Param::Text(text), Param::Text(date)]);
        let choices = choices.iter().map(|c| (INSERT_CHOICE, vec![Param::Text(c)]));
        std::iter::once(question).chain(choices)
    })
}

/// A result row of either backend, read by column.
trait Row {
    fn int(&self, column: usize) -> Result<i64, Error>;
    fn text(&self, column: usize) -> Result<String, Error>;
}

impl Row for rusqlite::Row<'_> {
    fn int(&self, column: usize) -> Result<i64, Error> {
        Ok(self.get(column)?)
    }
    fn text(&self, column: usize) -> Result<String, Error> {
        Ok(self.get(column)?)
    }
}

impl Row for tokio_postgres::Row {
    fn int(&self, column: usize) -> Result<i64, Error> {
        Ok(self.try_get(column)?)
    }
    fn text(&self, column: usize) -> Result<String, Error> {
        Ok(self.try_get(column)?)
    }
}

impl Question {
    fn from_row(r: &dyn Row) -> Result<Question, Error> {
        Ok(Question { id: r.int(0)?, question_text: r.text(1)?, pub_date: r.text(2)? })
    }
}

impl Choice {
    fn from_row(r: &dyn Row) -> Result<Choice, Error> {
        Ok(Choice { id: r.int(0)?, choice_text: r.text(1)?, votes: r.int(2)? })
    }
}

/// The database: cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    /// rusqlite is blocking, so every query runs on tokio's blocking pool, never on the
    /// threads that serve connections. One connection behind a mutex is the whole pool:
    /// `SQLite` writes one at a time anyway, and the demo's queries take microseconds.
    Sqlite(Arc<Mutex<Connection>>),
    /// A pool rather than one connection: a connection the server dropped (a restart) is
    /// found closed when it is next taken, and replaced, instead of failing every request
    /// after it.
    Postgres(Pool),
}

impl Db {
    /// Opens the database `config` names, `PostgreSQL` if it has a `url`, else the `SQLite`
    /// file at `path` (created if needed); creates the tables and seeds them if they have
    /// no questions. Call it on the runtime that serves: a `PostgreSQL` connection's task
    /// lives there.
    pub async fn open(config: &config::Database) -> Result<Db, Error> {
        let backend = if config.url.is_empty() {
            let (path, busy_timeout) = (config.path.clone(), config.busy_timeout());
            tokio::task::spawn_blocking(move || open_sqlite(&path, busy_timeout)).await??
        } else {
            open_postgres(config).await?
        };
        Ok(Db { backend })
    }

    /// Runs `sql` and reads each row it returns with `read`.
    async fn query<T: Send + 'static>(
        &self,
        sql: &'static str,
        params: &[Param],
        read: fn(&dyn Row) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                let (conn, params) = (Arc::clone(conn), params.to_vec());
                tokio::task::spawn_blocking(move || {
                    // A panic inside a query leaves the connection usable; take it as it is.
                    let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
                    let mut stmt = conn.prepare_cached(sql)?;
                    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
                    let mut out = Vec::new();
                    while let Some(row) = rows.next()? {
                        out.push(read(row)?);
                    }
                    Ok(out)
                })
                .await?
            }
            Backend::Postgres(pool) => {
                let client = pool.get().await?;
                let stmt = client.prepare_cached(sql).await?;
                let rows = client.query(&stmt, &postgres_params(params)).await?;
                rows.iter().map(|row| read(row)).collect()
            }
        }
    }

    /// Every question, newest first.
    pub async fn questions(&self) -> Result<Vec<Question>, Error> {
        self.query(QUESTIONS, &[], Question::from_row).await
    }

    /// A question and its choices; `None` if there is no such question.
    pub async fn question(&self, id: i64) -> Result<Option<(Question, Vec<Choice>)>, Error> {
        let Some(question) =
            self.query(QUESTION, &[Param::Int(id)], Question::from_row).await?.pop()
        else {
            return Ok(None);
        };
        let choices = self.query(CHOICES, &[Param::Int(id)], Choice::from_row).await?;
        Ok(Some((question, choices)))
    }

    /// Counts a vote for `choice` of `question` under `vote_id` (see [`new_vote_id`]), once
    /// however many times the same vote id comes.
    pub async fn vote(&self, question: i64, choice: i64, vote_id: &str) -> Result<Vote, Error> {
        let id = || Param::Owned(vote_id.to_owned());
        let params = [id(), Param::Int(choice), Param::Int(question)];
        if !self.query(VOTE, &params, |r| r.int(0)).await?.is_empty() {
            return Ok(Vote::Counted);
        }
        let params = [id(), Param::Int(question)];
        let before = self.query(COUNTED_VOTE, &params, |r| r.int(0)).await?;
        Ok(before.first().map_or(Vote::NotAChoice, |&choice| Vote::AlreadyCounted { choice }))
    }

    /// Adds a question and its choices, all or nothing (one transaction); returns its id.
    pub async fn add_question(
        &self,
        text: &str,
        pub_date: &str,
        choices: &[&str],
    ) -> Result<i64, Error> {
        let question = [Param::Owned(text.to_owned()), Param::Owned(pub_date.to_owned())];
        let choices: Vec<String> = choices.iter().map(|c| (*c).to_owned()).collect();
        match &self.backend {
            Backend::Sqlite(conn) => {
                let conn = Arc::clone(conn);
                tokio::task::spawn_blocking(move || {
                    let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
                    let tx = conn.transaction()?;
                    let id: i64 =
                        tx.query_row(ADD_QUESTION, rusqlite::params_from_iter(question), |r| {
                            r.get(0)
                        })?;
                    for choice in choices {
                        tx.execute(ADD_CHOICE, rusqlite::params![id, choice])?;
                    }
                    tx.commit()?;
                    Ok(id)
                })
                .await?
            }
            Backend::Postgres(pool) => {
                let mut client = pool.get().await?;
                let tx = client.transaction().await?;
                let id: i64 =
                    tx.query_one(ADD_QUESTION, &postgres_params(&question)).await?.try_get(0)?;
                for choice in &choices {
                    tx.execute(ADD_CHOICE, &[&id, choice]).await?;
                }
                tx.commit().await?;
                Ok(id)
            }
        }
    }

    /// Whether the database answers now, for a health check.
    pub async fn check(&self) -> Result<(), Error> {
        self.query(COUNT_QUESTIONS, &[], |r| r.int(0)).await.map(drop)
    }
}

/// Blocking: [`Db::open`] runs it on the blocking pool.
fn open_sqlite(path: &Path, busy_timeout: Duration) -> Result<Backend, Error> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    // WAL lets readers in one process go on while another writes: two instances may
    // share the file (docs/deployment.md).
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // IMMEDIATE: two instances starting together cannot both see an empty table and
    // both seed it.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(SQLITE_SCHEMA)?;
    let questions: i64 = tx.query_row(COUNT_QUESTIONS, [], |r| r.get(0))?;
    if questions == 0 {
        for (sql, params) in seed() {
            tx.execute(sql, rusqlite::params_from_iter(params))?;
        }
    }
    tx.commit()?;
    Ok(Backend::Sqlite(Arc::new(Mutex::new(conn))))
}

async fn open_postgres(config: &config::Database) -> Result<Backend, Error> {
    let timeout = Some(config.pool_timeout());
    let pool = Pool::builder(Manager::new(config.url.parse()?, NoTls))
        .max_size(config.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .build()?;
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.batch_execute(POSTGRES_SCHEMA).await?;
    let questions: i64 = tx.query_one(COUNT_QUESTIONS, &[]).await?.try_get(0)?;
    if questions == 0 {
        for (sql, params) in seed() {
            tx.execute(sql, &postgres_params(&params)).await?;
        }
    }
    tx.commit().await?;
    drop(client);
    Ok(Backend::Postgres(pool))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_ids_are_32_hex_digits() {
        assert!(is_vote_id(&new_vote_id()));
        let upper = new_vote_id().to_uppercase();
        for bad in ["", "0123", &upper, &format!("{}0", new_vote_id()), &"g".repeat(32)] {
            assert!(!is_vote_id(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn created_seeded_once_and_voted() {
        let dir = tempfile::tempdir().unwrap();
        let config =
            config::Database { path: dir.path().join("polls.sqlite3"), ..Default::default() };
        let db = Db::open(&config).await.unwrap();
        let questions = db.questions().await.unwrap();
        assert_eq!(questions.len(), SEED.len());
        let (question, choices) = db.question(questions[0].id).await.unwrap().unwrap();
        assert_eq!(choices.len(), 3);
        let (vote, again) = (new_vote_id(), new_vote_id());
        assert_eq!(db.vote(question.id, choices[1].id, &vote).await.unwrap(), Vote::Counted);
        let (choice, other) = (choices[1].id, choices[2].id);
        for resent in [choice, other] {
            let outcome = db.vote(question.id, resent, &vote).await.unwrap();
            assert_eq!(outcome, Vote::AlreadyCounted { choice }, "the same form counts once");
        }
        let outcome = db.vote(question.id, 9999, &again).await.unwrap();
        assert_eq!(outcome, Vote::NotAChoice, "not this question's choice");
        let other_question = questions[1].id;
        let outcome = db.vote(other_question, choice, &vote).await.unwrap();
        assert_eq!(outcome, Vote::NotAChoice, "a vote id is good for its own question only");
        db.check().await.unwrap();
        drop(db);

        // A second open (a restart, or a second instance) does not seed again.
        let db = Db::open(&config).await.unwrap();
        assert_eq!(db.questions().await.unwrap().len(), SEED.len());
        let (_, choices) = db.question(question.id).await.unwrap().unwrap();
        assert_eq!(choices.iter().map(|c| c.votes).collect::<Vec<_>>(), [0, 1, 0]);
        assert!(db.question(9999).await.unwrap().is_none());

        let added = db.add_question("Tabs or spaces?", "2026-12-07", &["Tabs", "Spaces"]);
        let id = added.await.unwrap();
        let (question, choices) = db.question(id).await.unwrap().unwrap();
        assert_eq!(question.question_text, "Tabs or spaces?");
        assert_eq!(
            choices.iter().map(|c| c.choice_text.as_str()).collect::<Vec<_>>(),
            ["Tabs", "Spaces"]
        );
        assert_eq!(db.questions().await.unwrap()[0].id, id, "the newest first");
    }
}
