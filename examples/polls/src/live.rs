//! `GET /poll/{question_id}/live`: the results page's counts, pushed over a WebSocket as
//! they change.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use serde::Serialize;
use tandem_web::{Request, Response};
use tandem_ws::{Message, WebSocketResponse, WsSender};
use tokio::sync::watch;

use crate::{
    db::Db,
    views::{db, load_question, question_id},
};

/// How often a watched question's counts are read again. Votes arrive through every
/// instance, so they are read from the database rather than heard from this instance's
/// votes.
pub const LIVE_REFRESH: Duration = Duration::from_secs(1);

/// How often the server pings a feed's browser: a page closed without a goodbye is noticed
/// and its feed ended.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// One message of a feed: the count of each choice, in the page's order.
#[derive(Debug, PartialEq, Serialize)]
struct Counts {
    choices: Vec<Count>,
}

#[derive(Debug, PartialEq, Serialize)]
struct Count {
    id: i64,
    votes: i64,
}

/// The counts of each question that has feeds open, in the application's state. One task
/// per question reads them, whatever the number of feeds: a thousand open pages cost the
/// database one query a second, not a thousand.
#[derive(Debug, Default)]
pub struct Watched {
    questions: Mutex<HashMap<i64, watch::Receiver<Option<Arc<Counts>>>>>,
}

impl Watched {
    /// The question's counts as they change, reading them from now on if no one was.
    fn subscribe(self: &Arc<Self>, db: Arc<Db>, id: i64) -> watch::Receiver<Option<Arc<Counts>>> {
        let mut questions = self.questions.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(counts) = questions.get(&id) {
            return counts.clone();
        }
        let (tx, rx) = watch::channel(None);
        questions.insert(id, rx.clone());
        tokio::spawn(Arc::clone(self).read(db, id, tx));
        rx
    }

    /// Reads the question's counts every [`LIVE_REFRESH`] while a feed watches them, and
    /// forgets the question when none does.
    async fn read(
        self: Arc<Self>,
        db: Arc<Db>,
        id: i64,
        counts: watch::Sender<Option<Arc<Counts>>>,
    ) {
        let start = tokio::time::Instant::now() + LIVE_REFRESH;
        let mut tick = tokio::time::interval_at(start, LIVE_REFRESH);
        loop {
            {
                // Under the lock, so that no feed subscribes between the count and the removal.
                let mut questions = self.questions.lock().unwrap_or_else(PoisonError::into_inner);
                // The map's own receiver is the last.
                if counts.receiver_count() <= 1 {
                    questions.remove(&id);
                    return;
                }
            }
            // A database that is down skips a beat; the pages keep the counts they show.
            if let Ok(Some((_, choices))) = db.question(id).await {
                let read = Counts {
                    choices: choices.iter().map(|c| Count { id: c.id, votes: c.votes }).collect(),
                };
                counts.send_if_modified(|counts| {
                    let changed = counts.as_deref() != Some(&read);
                    if changed {
                        *counts = Some(Arc::new(read));
                    }
                    changed
                });
            }
            tick.tick().await;
        }
    }
}

/// The WebSocket: the counts at once, then whenever they change. It needs no session. On
/// the server's graceful shutdown the connection is closed with 1001 Going Away, which
/// tells the page to reconnect elsewhere.
pub async fn live(req: Request) -> Result<Response, tandem_web::Error> {
    let id = question_id(&req)?;
    // A 404 for no such question, before the upgrade.
    load_question(&req, id).await?;
    let watched = req.state::<Watched>().ok_or_else(|| tandem_web::Error::new("no Watched"))?;
    let counts = watched.subscribe(db(&req)?, id);
    let response = WebSocketResponse::new().heartbeat(HEARTBEAT).prepare(&req, move |mut ws| {
        async move {
            let feed = tokio::spawn(feed(counts, ws.sender()));
            // Reading answers pings and the closing handshake, the server's shutdown
            // included; the feed ends with the connection.
            while !matches!(ws.receive().await, Message::Closed | Message::Error(_)) {}
            feed.abort();
        }
    })?;
    Ok(response)
}

/// Sends the counts as they are, then each time they change.
async fn feed(mut counts: watch::Receiver<Option<Arc<Counts>>>, ws: WsSender) {
    loop {
        let latest = counts.borrow_and_update().clone();
        if let Some(latest) = latest
            && ws.send_json(&*latest).await.is_err()
        {
            return;
        }
        if counts.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    #[tokio::test]
    async fn one_reader_per_question_which_stops_when_no_feed_watches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("polls.sqlite3");
        let db =
            Arc::new(Db::open(&config::Database { path, ..Default::default() }).await.unwrap());
        let watched = Arc::new(Watched::default());
        let one = watched.subscribe(Arc::clone(&db), 1);
        let two = watched.subscribe(Arc::clone(&db), 1);
        assert!(one.same_channel(&two), "the feeds of a question share its reader");
        drop((one, two));
        // The reader, when it first runs, finds itself alone.
        for _ in 0..100 {
            if watched.questions.lock().unwrap().is_empty() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the reader of a question no feed watches kept running");
    }
}
