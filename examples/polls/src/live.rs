//! `GET /poll/{question_id}/live`: the results page's counts, pushed over a WebSocket as
//! they change.

use std::{sync::Arc, time::Duration};

use serde::Serialize;
use tandem_web::{Request, Response};
use tandem_ws::{Message, WebSocketResponse, WsSender};

use crate::{
    db::Db,
    views::{db, load_question, question_id},
};

/// How often a feed reads the counts again. Votes arrive through every instance, so the
/// feed reads the database rather than listening to this instance's votes.
pub const LIVE_REFRESH: Duration = Duration::from_secs(1);

/// How often the server pings a feed's browser: a page closed without a goodbye is noticed
/// and its feed ended.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// One message of the feed: the count of each choice, in the page's order.
#[derive(Debug, PartialEq, Serialize)]
struct Counts {
    choices: Vec<Count>,
}

#[derive(Debug, PartialEq, Serialize)]
struct Count {
    id: i64,
    votes: i64,
}

/// The WebSocket: the counts at once, then whenever they change. It needs no session. On
/// the server's graceful shutdown the connection is closed with 1001 Going Away, which
/// tells the page to reconnect elsewhere.
pub async fn live(req: Request) -> Result<Response, tandem_web::Error> {
    let id = question_id(&req)?;
    // A 404 for no such question, before the upgrade.
    load_question(&req, id).await?;
    let db = db(&req)?;
    let response = WebSocketResponse::new().heartbeat(HEARTBEAT).prepare(&req, move |mut ws| {
        async move {
            let feed = tokio::spawn(feed(db, id, ws.sender()));
            // Reading answers pings and the closing handshake, the server's shutdown
            // included; the feed ends with the connection.
            while !matches!(ws.receive().await, Message::Closed | Message::Error(_)) {}
            feed.abort();
        }
    })?;
    Ok(response)
}

async fn feed(db: Arc<Db>, id: i64, ws: WsSender) {
    let mut sent = None;
    let mut tick = tokio::time::interval(LIVE_REFRESH);
    loop {
        tick.tick().await;
        // A database that is down skips a beat; the page keeps the counts it shows.
        let Ok(Some((_, choices))) = db.question(id).await else { continue };
        let counts = Counts {
            choices: choices.iter().map(|c| Count { id: c.id, votes: c.votes }).collect(),
        };
        if sent.as_ref() != Some(&counts) {
            if ws.send_json(&counts).await.is_err() {
                return;
            }
            sent = Some(counts);
        }
    }
}
