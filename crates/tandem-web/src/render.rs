//! One place that renders the errors the framework answers with: a route that is not there
//! (404), a method it does not take (405), a body over the limit (413), a handler's
//! [`HttpError`], a handler's other error or panic (500), and a request the parser refused
//! (400, 408, 414, 431). Each is an [`HttpError`] on its way out; the application's renderer,
//! if it set one, makes its response.

use bytes::Bytes;
use http::header;

use crate::{HttpError, Response, static_files::escape_html};

/// Makes the response for an error the framework answers with: what
/// [`Application::error_renderer`](crate::Application::error_renderer) takes. An
/// [`ErrorFormat`] is one; so is any `Fn(&HttpError) -> Response`.
///
/// The response's status is the error's, and the error's own fields (`Allow` on a 405,
/// `Location` on a redirect) and those a middleware added stay on it unless the renderer sets
/// them; its body, `Content-Type` and other fields are the renderer's.
pub trait ErrorRenderer: Send + Sync + 'static {
    /// The response for `err`.
    fn render(&self, err: &HttpError) -> Response;
}

impl<F: Fn(&HttpError) -> Response + Send + Sync + 'static> ErrorRenderer for F {
    fn render(&self, err: &HttpError) -> Response {
        self(err)
    }
}

/// The built-in renderings of framework errors. An error whose maker chose its
/// `Content-Type` ([`HttpError::json`], or `with_header("content-type", ..)`) is sent as it
/// was made in every format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorFormat {
    /// aiohttp's: `text/plain`, the error's text (`404: Not Found`). The default.
    #[default]
    Text,
    /// `application/json`: `{"status": 404, "error": "Not Found", "message": "404: Not Found"}`,
    /// `message` being the error's text.
    Json,
    /// `text/html`: a page titled with the status, the error's text escaped beneath.
    Html,
}

impl ErrorRenderer for ErrorFormat {
    fn render(&self, err: &HttpError) -> Response {
        if err.headers().contains_key(header::CONTENT_TYPE) {
            return err.plain_response();
        }
        let status = err.status();
        let text = err.text();
        let reason = status.canonical_reason().unwrap_or("Unknown");
        match self {
            ErrorFormat::Text => err.plain_response(),
            ErrorFormat::Json => {
                let body = serde_json::json!({
                    "status": status.as_u16(),
                    "error": reason,
                    "message": text,
                });
                let body = serde_json::to_vec(&body).unwrap_or_default();
                Response::with_content_type("application/json", Bytes::from(body))
            }
            ErrorFormat::Html => {
                let title = format!("{}: {reason}", status.as_u16());
                let detail = if text == title {
                    String::new()
                } else {
                    format!("<p>{}</p>", escape_html(&text))
                };
                Response::html(format!(
                    "<!DOCTYPE html>\n<html><head><title>{title}</title></head>\
                     <body><h1>{title}</h1>{detail}</body></html>\n"
                ))
            }
        }
    }
}

/// `response`, the framework's answer for `err`, as `renderer` makes it: its body, content
/// type and fields, over the status and the other fields `response` has.
pub(crate) fn apply(render: &dyn ErrorRenderer, err: &HttpError, made: &Response) -> Response {
    let mut rendered = render.render(err).with_status(made.status());
    // The access log's client stays the one the middlewares found.
    if let Some(client) = made.extensions().get::<crate::server::LoggedClient>() {
        rendered.extensions_mut().insert(*client);
    }
    if let Some(reason) = made.reason()
        && rendered.reason().is_none()
    {
        rendered.set_reason(reason);
    }
    let kept = made.headers();
    if kept.keys().any(|name| name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH) {
        let headers = rendered.headers_mut();
        for name in kept.keys() {
            if name == header::CONTENT_TYPE
                || name == header::CONTENT_LENGTH
                || headers.contains_key(name)
            {
                continue;
            }
            for value in kept.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
    }
    rendered
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    fn body(response: &Response) -> String {
        match response.body() {
            crate::Body::Full(bytes) => String::from_utf8(bytes.to_vec()).unwrap(),
            other => panic!("expected a whole body, got {other:?}"),
        }
    }

    #[test]
    fn the_built_in_formats() {
        let err = HttpError::not_found().with_text("no such <poll>");
        let json = ErrorFormat::Json.render(&err);
        assert_eq!(json.headers()["content-type"], "application/json");
        let value: serde_json::Value = serde_json::from_str(&body(&json)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"status": 404, "error": "Not Found", "message": "no such <poll>"})
        );
        let html = ErrorFormat::Html.render(&err);
        assert_eq!(html.headers()["content-type"], "text/html; charset=utf-8");
        assert!(body(&html).contains("<h1>404: Not Found</h1><p>no such &lt;poll&gt;</p>"));
        let text = ErrorFormat::Text.render(&err);
        assert_eq!(body(&text), "no such <poll>");
        // An error made as JSON is sent as made.
        let made = HttpError::json(StatusCode::CONFLICT, &serde_json::json!({"taken": true}));
        assert_eq!(body(&ErrorFormat::Html.render(&made)), r#"{"taken":true}"#);
    }

    #[test]
    fn the_errors_fields_stay_unless_the_renderer_sets_them() {
        let err = HttpError::method_not_allowed(&[http::Method::GET]);
        let response = err.clone().into_response().with_header("x-added", "by a middleware");
        let rendered = apply(&ErrorFormat::Json, &err, &response);
        assert_eq!(rendered.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(rendered.headers()["allow"], "GET");
        assert_eq!(rendered.headers()["x-added"], "by a middleware");
        assert_eq!(rendered.headers()["content-type"], "application/json");
        assert_eq!(rendered.headers().get_all("content-type").iter().count(), 1);
    }
}
