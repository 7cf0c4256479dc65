//! aiohttp's `raise_for_status=`, on a session or a request: off, on (a status of 400 or
//! more is an error), or a function of the response that decides.

use std::sync::Arc;

use crate::{
    ClientResponse,
    error::{Error, Kind},
    middleware::BoxFuture,
    session::BoxError,
};

type StatusHookFn =
    dyn for<'a> Fn(&'a mut ClientResponse) -> BoxFuture<'a, Result<(), BoxError>> + Send + Sync;

/// Which responses are errors.
#[derive(Clone, Default)]
pub(crate) enum StatusCheck {
    /// None (aiohttp's default).
    #[default]
    Off,
    /// Those with a status of 400 or more.
    Statuses,
    /// Those the function fails.
    Hook(Arc<StatusHookFn>),
}

impl std::fmt::Debug for StatusCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StatusCheck::Off => "Off",
            StatusCheck::Statuses => "Statuses",
            StatusCheck::Hook(_) => "Hook",
        })
    }
}

impl StatusCheck {
    pub(crate) fn from_bool(yes: bool) -> Self {
        if yes { StatusCheck::Statuses } else { StatusCheck::Off }
    }

    pub(crate) fn hook<F>(f: F) -> Self
    where
        F: for<'a> Fn(&'a mut ClientResponse) -> BoxFuture<'a, Result<(), BoxError>>
            + Send
            + Sync
            + 'static,
    {
        StatusCheck::Hook(Arc::new(f))
    }

    /// `Err` if `resp` is one of the responses this check makes an error. A hook's own
    /// error becomes a status error (its [`source`](std::error::Error::source) the hook's
    /// error), unless it is already this crate's [`Error`], which is kept as it is; both
    /// carry the response's request.
    pub(crate) async fn check(&self, resp: &mut ClientResponse) -> Result<(), Error> {
        match self {
            StatusCheck::Off => Ok(()),
            StatusCheck::Statuses => resp.raise_for_status(),
            StatusCheck::Hook(hook) => {
                let Err(e) = hook(resp).await else { return Ok(()) };
                let e = match e.downcast::<Error>() {
                    Ok(e) => *e,
                    Err(other) => Error::new(Kind::Status(resp.status()), other),
                };
                Err(e.with_request(resp.request_info()))
            }
        }
    }
}
