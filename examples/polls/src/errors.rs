//! The error-page middleware: 404, 500 and 503 answers as pages in the site's layout.

use tandem_templates::Templates;
use tandem_web::{Next, Request, Response};

/// Renders `404.html`, `500.html` or `503.html` in place of the plain-text body of a 404,
/// 500 or 503 (the database or the session storage unreachable), as the aiohttp tutorial's
/// `error_middleware` does; the status stays. Add it first, so that it also covers what the
/// middlewares after it answer (a session that cannot be saved).
pub async fn error_pages(req: Request, next: Next) -> Response {
    let app = req.app().clone();
    let path = req.path().into_owned();
    let response = next.run(req).await;
    let status = response.status();
    let page = match status.as_u16() {
        404 => "404.html",
        500 => "500.html",
        503 => "503.html",
        _ => return response,
    };
    let Some(templates) = app.state::<Templates>() else { return response };
    match templates.render(page, &app, serde_json::json!({ "path": path })) {
        Ok(html) => Response::html(html).with_status(status),
        Err(err) => {
            // The plain answer is still an answer; say why the page could not be made.
            tracing::error!(target: "polls", error = %err, "rendering the error page failed");
            response
        }
    }
}
