//! The crate's one error type.

use std::fmt;

/// A template error: no [`crate::setup`] on the application, or minijinja could not load or
/// render the template (its message names the template and line).
///
/// It converts into [`tandem_web::Error`], so `?` in a handler answers 500 and logs it.
pub struct Error {
    inner: Box<Inner>,
}

enum Inner {
    NotInstalled,
    Template(minijinja::Error),
}

impl Error {
    pub(crate) fn not_installed() -> Self {
        Error { inner: Box::new(Inner::NotInstalled) }
    }

    /// Whether `render_template` ran on an application without [`crate::setup`].
    pub fn is_not_installed(&self) -> bool {
        matches!(*self.inner, Inner::NotInstalled)
    }

    /// Whether the template does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(&*self.inner, Inner::Template(e) if e.kind() == minijinja::ErrorKind::TemplateNotFound)
    }
}

impl From<minijinja::Error> for Error {
    fn from(err: minijinja::Error) -> Self {
        Error { inner: Box::new(Inner::Template(err)) }
    }
}

impl From<Error> for tandem_web::Error {
    fn from(err: Error) -> Self {
        tandem_web::Error::new(err)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.inner {
            Inner::NotInstalled => f.write_str("Error::NotInstalled"),
            Inner::Template(e) => f.debug_tuple("Error::Template").field(e).finish(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.inner {
            Inner::NotInstalled => {
                f.write_str("tandem_templates::setup was not called on this application")
            }
            // `{:#}` adds the template's name, line and source around the error.
            Inner::Template(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.inner {
            Inner::NotInstalled => None,
            Inner::Template(e) => Some(e),
        }
    }
}
