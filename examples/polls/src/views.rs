//! The pages: the question list, a question with its voting form, the vote, the results.

use std::{collections::BTreeMap, sync::Arc};

use http::StatusCode;
use serde::Serialize;
use tandem_session::{Session, get_session};
use tandem_templates::render_template;
use tandem_web::{HttpError, Request, Response, json_response};

use crate::db::{self, Choice, Db, Question, Vote};

type Result<T> = std::result::Result<T, tandem_web::Error>;

/// The session key of the visitor's CSRF token.
const CSRF_KEY: &str = "csrf_token";
/// The session key of the visitor's votes: question id (as text) to choice id.
const VOTES_KEY: &str = "votes";
/// The vote form's field of its vote id.
const VOTE_ID_KEY: &str = "vote_id";

pub(crate) fn db(req: &Request) -> Result<Arc<Db>> {
    req.state::<Db>().ok_or_else(|| tandem_web::Error::new("no database in the app's state"))
}

pub(crate) fn question_id(req: &Request) -> Result<i64> {
    // The route only matches digits; too many of them for an i64 is no question either.
    req.match_info("question_id")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| HttpError::not_found().into())
}

pub(crate) async fn load_question(req: &Request, id: i64) -> Result<(Question, Vec<Choice>)> {
    let found = db(req)?.question(id).await?;
    found.ok_or_else(|| HttpError::not_found().with_text("404: no such question").into())
}

fn votes(session: &Session) -> BTreeMap<String, i64> {
    session.get_as(VOTES_KEY).unwrap_or_default()
}

/// The session's CSRF token, made on first need: 128 random bits.
pub(crate) fn csrf_token(session: &Session) -> String {
    if let Some(token) = session.get_as::<String>(CSRF_KEY) {
        return token;
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    session.insert(CSRF_KEY, &token);
    token
}

/// Compares in time independent of where the strings differ, so the token cannot be
/// guessed a byte at a time from response times.
pub(crate) fn same_token(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected.bytes().zip(given.bytes()).fold(0, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[derive(Serialize)]
struct ListedQuestion {
    #[serde(flatten)]
    question: Question,
    voted: bool,
}

/// `GET /`: every question, marking those this visitor voted on.
pub async fn index(req: Request) -> Result<Response> {
    let questions = db(&req)?.questions().await?;
    let voted = votes(&get_session(&req).await?);
    let questions: Vec<_> = questions
        .into_iter()
        .map(|q| ListedQuestion { voted: voted.contains_key(&q.id.to_string()), question: q })
        .collect();
    Ok(render_template("index.html", &req, serde_json::json!({ "questions": questions }))?)
}

#[derive(Serialize)]
struct Detail {
    question: Question,
    choices: Vec<Choice>,
    csrf_token: String,
    /// A fresh one for each form shown, so that the form sent twice counts once.
    vote_id: String,
    voted_for: Option<i64>,
    error: Option<&'static str>,
}

async fn detail_page(req: &Request, id: i64, error: Option<&'static str>) -> Result<Response> {
    let (question, choices) = load_question(req, id).await?;
    let session = get_session(req).await?;
    let page = Detail {
        voted_for: votes(&session).get(&id.to_string()).copied(),
        csrf_token: csrf_token(&session),
        vote_id: db::new_vote_id(),
        question,
        choices,
        error,
    };
    Ok(render_template("detail.html", req, page)?)
}

/// `GET /poll/{question_id}`: the question and a form of radio buttons.
pub async fn detail(req: Request) -> Result<Response> {
    let id = question_id(&req)?;
    detail_page(&req, id, None).await
}

/// `POST /poll/{question_id}/vote`: checks the CSRF token, counts the vote (once per form:
/// see [`db::Vote`]), remembers it in the session and redirects to the results (so a
/// reload does not vote twice).
pub async fn vote(mut req: Request) -> Result<Response> {
    let id = question_id(&req)?;
    let (_, choices) = load_question(&req, id).await?;
    let form = req.post().await?;
    let session = get_session(&req).await?;
    let expected = session.get_as::<String>(CSRF_KEY);
    let given = form.get(CSRF_KEY).unwrap_or_default();
    if !expected.is_some_and(|expected| same_token(&expected, given)) {
        return Err(stale_form());
    }
    let choice = form.get("choice").and_then(|c| c.parse::<i64>().ok());
    let Some(choice) = choice.filter(|c| choices.iter().any(|x| x.id == *c)) else {
        let mut page = detail_page(&req, id, Some("You didn't select a choice.")).await?;
        page.set_status(StatusCode::BAD_REQUEST);
        return Ok(page);
    };
    let vote_id = form.get(VOTE_ID_KEY).filter(|v| db::is_vote_id(v)).ok_or_else(stale_form)?;
    let counted = match db(&req)?.vote(id, choice, vote_id).await? {
        Vote::Counted => choice,
        Vote::AlreadyCounted { choice } => choice,
        // The choice is the question's, so the vote id was sent for another question.
        Vote::NotAChoice => return Err(stale_form()),
    };
    let mut voted = votes(&session);
    voted.insert(id.to_string(), counted);
    session.insert(VOTES_KEY, voted);
    let results = req.app().url_for("results", &[("question_id", &id.to_string())])?;
    Ok(Response::new(StatusCode::FOUND).with_header("location", &results))
}

pub(crate) fn stale_form() -> tandem_web::Error {
    HttpError::forbidden()
        .with_text("403: the form is stale or forged; reload the question and vote again")
        .into()
}

#[derive(Serialize)]
struct Results {
    question: Question,
    choices: Vec<Choice>,
    voted_for: Option<i64>,
}

/// `GET /poll/{question_id}/results`: the counts.
pub async fn results(req: Request) -> Result<Response> {
    let id = question_id(&req)?;
    let (question, choices) = load_question(&req, id).await?;
    let voted_for = votes(&get_session(&req).await?).get(&id.to_string()).copied();
    Ok(render_template("results.html", &req, Results { question, choices, voted_for })?)
}

/// `GET /healthz`: whether this instance's dependencies answer, the database and the
/// session storage, for a load balancer or an orchestrator to probe: 200 and
/// `{"database":"ok","sessions":"ok"}`, or 503 with `"unavailable"` for what failed. It
/// loads no session and writes nothing, and each check is bounded by its client's timeouts.
pub async fn healthz(req: Request) -> Result<Response> {
    let db = db(&req)?;
    let (database, sessions) = tokio::join!(db.check(), tandem_session::check_storage(&req));
    if let Err(err) = &database {
        tracing::warn!(target: "polls", error = err as &(dyn std::error::Error + 'static), "health: database");
    }
    if let Err(err) = &sessions {
        tracing::warn!(target: "polls", error = err as &(dyn std::error::Error + 'static), "health: sessions");
    }
    let state = |ok: bool| if ok { "ok" } else { "unavailable" };
    let (database, sessions) = (database.is_ok(), sessions.is_ok());
    let status =
        if database && sessions { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({ "database": state(database), "sessions": state(sessions) });
    Ok(json_response(&body).with_status(status))
}

#[cfg(test)]
mod tests {
    use super::same_token;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
        assert!(!same_token("abc", ""));
    }
}
