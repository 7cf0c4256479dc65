//! The admin page, behind aiohttp-security's checks (`tandem_session::security`): log in
//! with the configured password, then add a question with its choices. The identity lives
//! in the session, which log-in starts afresh.

use http::StatusCode;
use serde::Serialize;
use tandem_session::{
    get_session,
    security::{AuthorizationPolicy, PolicyFuture, check_permission, forget, remember},
};
use tandem_templates::render_template;
use tandem_web::{Request, Response};

use crate::views::{csrf_token, db, same_token, stale_form};

type Result<T> = std::result::Result<T, tandem_web::Error>;

/// The one identity that logs in: the admin's.
const ADMIN: &str = "admin";
/// The permission adding a question needs.
pub const ADD_QUESTION: &str = "add_question";
/// The most choices a question may have.
pub const MAX_CHOICES: usize = 20;
/// The longest question or choice text, in characters.
pub const MAX_TEXT: usize = 200;

/// Who may do what: the admin everything, anyone else nothing.
#[derive(Debug)]
pub struct AdminPolicy;

impl AuthorizationPolicy for AdminPolicy {
    fn authorized_userid<'a>(&'a self, identity: &'a str) -> PolicyFuture<'a, Option<String>> {
        Box::pin(async move { Ok((identity == ADMIN).then(|| ADMIN.to_owned())) })
    }

    fn permits<'a>(
        &'a self,
        identity: Option<&'a str>,
        _permission: &'a str,
    ) -> PolicyFuture<'a, bool> {
        Box::pin(async move { Ok(identity == Some(ADMIN)) })
    }
}

/// The configured admin password, in the app's state; empty: nobody logs in.
#[derive(Debug)]
pub struct AdminPassword(pub String);

#[derive(Serialize)]
struct Page<'a> {
    csrf_token: String,
    error: Option<&'a str>,
}

async fn page(req: &Request, template: &str, error: Option<&str>) -> Result<Response> {
    let csrf_token = csrf_token(&get_session(req).await?);
    Ok(render_template(template, req, Page { csrf_token, error })?)
}

/// `GET /admin/login`: the password form.
pub async fn login_form(req: Request) -> Result<Response> {
    page(&req, "admin_login.html", None).await
}

/// `POST /admin/login`: the password checked, the admin remembered.
pub async fn login(mut req: Request) -> Result<Response> {
    let form = req.post().await?;
    check_csrf(&req, form.get("csrf_token")).await?;
    let password = req.state::<AdminPassword>().map(|p| p.0.clone()).unwrap_or_default();
    let given = form.get("password").unwrap_or_default();
    if password.is_empty() || !same_token(&password, given) {
        let mut response = page(&req, "admin_login.html", Some("Wrong password.")).await?;
        response.set_status(StatusCode::UNAUTHORIZED);
        return Ok(response);
    }
    let admin = req.app().url_for("admin", &[])?;
    let mut response = Response::new(StatusCode::FOUND).with_header("location", &admin);
    remember(&req, &mut response, ADMIN).await?;
    Ok(response)
}

/// `POST /admin/logout`.
pub async fn logout(mut req: Request) -> Result<Response> {
    let form = req.post().await?;
    check_csrf(&req, form.get("csrf_token")).await?;
    let index = req.app().url_for("index", &[])?;
    let mut response = Response::new(StatusCode::FOUND).with_header("location", &index);
    forget(&req, &mut response).await?;
    Ok(response)
}

/// `GET /admin`: the form that adds a question (behind `login_required`).
pub async fn admin(req: Request) -> Result<Response> {
    page(&req, "admin.html", None).await
}

/// `POST /admin/questions`: adds the question, then shows it.
pub async fn add_question(mut req: Request) -> Result<Response> {
    check_permission(&req, ADD_QUESTION).await?;
    let form = req.post().await?;
    check_csrf(&req, form.get("csrf_token")).await?;
    let question = form.get("question").unwrap_or_default().trim();
    let pub_date = form.get("pub_date").unwrap_or_default().trim();
    let choices: Vec<&str> = form
        .get("choices")
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let error = if question.is_empty() || question.chars().count() > MAX_TEXT {
        Some("A question needs a text of at most 200 characters.")
    } else if !is_date(pub_date) {
        Some("The date is YYYY-MM-DD.")
    } else if choices.len() < 2 || choices.len() > MAX_CHOICES {
        Some("A question needs two to twenty choices, one a line.")
    } else if choices.iter().any(|c| c.chars().count() > MAX_TEXT) {
        Some("A choice is at most 200 characters.")
    } else {
        None
    };
    if let Some(error) = error {
        let mut response = page(&req, "admin.html", Some(error)).await?;
        response.set_status(StatusCode::BAD_REQUEST);
        return Ok(response);
    }
    let id = db(&req)?.add_question(question, pub_date, &choices).await?;
    let poll = req.app().url_for("poll", &[("question_id", &id.to_string())])?;
    Ok(Response::new(StatusCode::FOUND).with_header("location", &poll))
}

async fn check_csrf(req: &Request, given: Option<&str>) -> Result<()> {
    let expected = get_session(req).await?.get_as::<String>("csrf_token");
    match (expected, given) {
        (Some(expected), Some(given)) if same_token(&expected, given) => Ok(()),
        _ => Err(stale_form()),
    }
}

/// `YYYY-MM-DD`, which sorts as text the way dates do.
fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 10
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| if i == 4 || i == 7 { *b == b'-' } else { b.is_ascii_digit() })
}
