//! The environment in the application's state, rendering, and the `template` wrapper.

use std::{collections::HashMap, future::Future, path::PathBuf, sync::Arc};

use minijinja::{
    Environment, State, Value,
    value::{Kwargs, Object, from_args},
};
use serde::Serialize;
use tandem_web::{App, Application, Handler, Request, Response};

use crate::Error;

/// Where templates come from.
#[derive(Debug)]
pub enum Loader {
    /// Files under a folder, read on first use (`aiohttp_jinja2`'s `FileSystemLoader`). Names
    /// that would leave the folder (`..`) are not found.
    Folder(PathBuf),
    /// Templates compiled into the binary as `(name, source)` pairs, typically from
    /// `include_str!` (`PackageLoader`'s role: nothing to ship beside the binary).
    Embedded(&'static [(&'static str, &'static str)]),
}

impl Loader {
    /// Templates from the files under `dir`.
    pub fn folder(dir: impl Into<PathBuf>) -> Self {
        Loader::Folder(dir.into())
    }
}

/// The default [`Templates::static_route`]: the route named `static`, as
/// `app.add_static(...)?.name("static")` names it.
const DEFAULT_STATIC_ROUTE: &str = "static";

/// A minijinja environment with Tandem's globals: what [`setup`] stores in the application.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    static_route: String,
}

impl Templates {
    /// An environment loading from `loader`, auto-escaping `.html`, `.htm` and `.xml`
    /// templates (minijinja's default, as `aiohttp_jinja2`'s `select_autoescape`).
    pub fn new(loader: Loader) -> Self {
        let mut env = Environment::new();
        match loader {
            Loader::Folder(dir) => env.set_loader(minijinja::path_loader(dir)),
            Loader::Embedded(templates) => {
                let templates: HashMap<&str, &str> = templates.iter().copied().collect();
                env.set_loader(move |name| Ok(templates.get(name).map(|s| (*s).to_owned())));
            }
        }
        Templates { env, static_route: DEFAULT_STATIC_ROUTE.to_owned() }
    }

    /// The environment, to add filters, globals or tests.
    pub fn environment_mut(&mut self) -> &mut Environment<'static> {
        &mut self.env
    }

    /// The name of the static route `static(...)` builds URLs under (default `static`).
    #[must_use]
    pub fn static_route(mut self, name: &str) -> Self {
        name.clone_into(&mut self.static_route);
        self
    }

    /// Renders `name` with `context`, resolving `url_for` and `static` against `app`.
    pub fn render(&self, name: &str, app: &App, context: impl Serialize) -> Result<String, Error> {
        let template = self.env.get_template(name)?;
        let routes = Arc::new(Routes { app: app.clone(), static_route: self.static_route.clone() });
        let url_for = Value::from_object(UrlFor(Arc::clone(&routes)));
        let static_url = Value::from_object(StaticUrl(routes));
        // The user's context comes second so a key of its own may shadow a helper.
        let context = minijinja::context! { url_for => url_for, static => static_url, ..Value::from_serialize(context) };
        Ok(template.render(context)?)
    }
}

/// Stores a [`Templates`] on `loader` in `app`'s state: `aiohttp_jinja2`'s `setup(app,
/// loader=...)`. To add filters or change the static route, build a [`Templates`] and
/// store it with `app.set_state(templates)` instead.
pub fn setup(app: &mut Application, loader: Loader) {
    app.set_state(Templates::new(loader));
}

fn templates(app: &App) -> Result<Arc<Templates>, Error> {
    app.state::<Templates>().ok_or_else(Error::not_installed)
}

/// Renders template `name` with `context` into a `text/html` string, for mail bodies and the
/// like.
pub fn render_string(name: &str, req: &Request, context: impl Serialize) -> Result<String, Error> {
    templates(req.app())?.render(name, req.app(), context)
}

/// Renders template `name` with `context` into a `text/html; charset=utf-8` response:
/// `aiohttp_jinja2`'s `render_template(name, request, context)`.
pub fn render_template(
    name: &str,
    req: &Request,
    context: impl Serialize,
) -> Result<Response, Error> {
    render_string(name, req, context).map(Response::html)
}

/// Wraps a handler that returns a context into one that renders it with template `name`:
/// `aiohttp_jinja2`'s `@template(name)`. An error from the handler (a 404, say) is answered as
/// it would be without the wrapper.
pub fn template<F, Fut, C, E>(name: &'static str, handler: F) -> impl Handler
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<C, E>> + Send + 'static,
    C: Serialize,
    E: Into<tandem_web::Error>,
{
    move |req: Request| {
        // The request moves into the handler; rendering needs only the application.
        let app = req.app().clone();
        let context = handler(req);
        async move {
            let context = context.await.map_err(Into::into)?;
            let html = templates(&app)?.render(name, &app, context)?;
            Ok::<_, tandem_web::Error>(Response::html(html))
        }
    }
}

/// What `url_for` and `static` resolve against: the application serving the request.
#[derive(Debug)]
struct Routes {
    app: App,
    static_route: String,
}

impl Routes {
    fn url_for(&self, name: &str, params: &[(&str, &str)]) -> Result<Value, minijinja::Error> {
        let url = self.app.url_for(name, params).map_err(|e| {
            minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
        })?;
        Ok(Value::from_safe_string(tandem_web::escape_html(&url)))
    }
}

// minijinja's own escaping would also write every `/` as `&#x2f;`, correct but unreadable in
// a page's source; `escape_html` leaves a URL's slashes alone.

#[cfg(test)]
mod tests {
    #[test]
    fn escape_attribute_leaves_slashes() {
        assert_eq!(
            tandem_web::escape_html("/a/b?x=1&y=\"'<>"),
            "/a/b?x=1&amp;y=&quot;&#x27;&lt;&gt;"
        );
    }
}

/// `url_for("name", param=value, ...)`.
#[derive(Debug)]
struct UrlFor(Arc<Routes>);

impl Object for UrlFor {
    fn call(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        let (name, kwargs): (&str, Kwargs) = from_args(args)?;
        // Parameters are text in a URL; numbers (ids) are written as Jinja prints them.
        let values: Vec<(&str, String)> = kwargs
            .args()
            .map(|key| kwargs.get::<Value>(key).map(|v| (key, v.to_string())))
            .collect::<Result<_, _>>()?;
        kwargs.assert_all_used()?;
        let params: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.0.url_for(name, &params)
    }
}

/// `static("path/in/static/dir")`.
#[derive(Debug)]
struct StaticUrl(Arc<Routes>);

impl Object for StaticUrl {
    fn call(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        let (path,): (&str,) = from_args(args)?;
        self.0.url_for(&self.0.static_route, &[("filename", path.trim_start_matches('/'))])
    }
}
