//! `Session`: the dict-like handle a handler gets.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use crate::Stored;

/// A session: a map of JSON values with `aiohttp_session`'s flags (`new`, `changed`,
/// `identity`, `created`).
///
/// A cheap-to-clone handle: every clone from one request is the same session, and changes
/// through any of them are saved after the handler returns. Values are stored as JSON, so
/// anything `Serialize` goes in and [`get_as`](Self::get_as) takes it out typed.
#[derive(Clone, Debug)]
pub struct Session {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) stored: Stored,
    pub(crate) new: bool,
    pub(crate) changed: bool,
    pub(crate) invalidated: bool,
    /// Identities this request left behind (by `new_session` or `invalidate`), whose records
    /// the middleware deletes.
    pub(crate) retired: Vec<String>,
}

impl Session {
    pub(crate) fn from_stored(stored: Stored, new: bool) -> Self {
        let state = State { stored, new, changed: false, invalidated: false, retired: Vec::new() };
        Session { inner: Arc::new(Mutex::new(state)) }
    }

    pub(crate) fn fresh(created: u64) -> Self {
        Self::from_stored(Stored { identity: None, created, data: Map::new() }, true)
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // No code here panics while holding the lock, and the state stays consistent if one
        // did, so a poisoned lock is taken as it is.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.state().stored.data.get(key).cloned()
    }

    /// The value under `key`, deserialised into `T`; `None` if absent or of another shape.
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.get(key).and_then(|v| serde_json::from_value(v).ok())
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.state().stored.data.contains_key(key)
    }

    /// Sets `key` to `value` (serialised to JSON; a value that cannot be is stored as null)
    /// and marks the session changed.
    pub fn insert(&self, key: &str, value: impl Serialize) {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        let mut state = self.state();
        state.stored.data.insert(key.to_owned(), value);
        state.changed = true;
    }

    /// Removes `key`, marking the session changed if it was there.
    pub fn remove(&self, key: &str) -> Option<Value> {
        let mut state = self.state();
        let old = state.stored.data.remove(key);
        state.changed |= old.is_some();
        old
    }

    /// Removes every value and marks the session changed.
    pub fn clear(&self) {
        let mut state = self.state();
        state.stored.data.clear();
        state.changed = true;
    }

    /// The keys, in order.
    pub fn keys(&self) -> Vec<String> {
        self.state().stored.data.keys().cloned().collect()
    }

    /// Whether the session has no values.
    pub fn is_empty(&self) -> bool {
        self.state().stored.data.is_empty()
    }

    /// Whether this session was created by this request (`aiohttp_session`'s `new`).
    pub fn is_new(&self) -> bool {
        self.state().new
    }

    /// The session id in a server-side storage, once it has one (`aiohttp_session`'s
    /// `identity`); always `None` with [`crate::CookieStorage`].
    pub fn identity(&self) -> Option<String> {
        self.state().stored.identity.clone()
    }

    /// When the session was created, in seconds since the Unix epoch.
    pub fn created(&self) -> u64 {
        self.state().stored.created
    }

    /// Marks the session changed so that it is saved, for a change the map cannot see
    /// (`aiohttp_session`'s `changed()`); saving also renews the cookie's `Max-Age` and the
    /// storage's TTL.
    pub fn set_changed(&self) {
        self.state().changed = true;
    }

    /// Empties the session, deletes its record from the storage and its cookie from the
    /// client (`aiohttp_session`'s `invalidate()`), as on log-out. Values set after this in
    /// the same request are not saved.
    pub fn invalidate(&self) {
        let mut state = self.state();
        state.stored.data.clear();
        if let Some(identity) = state.stored.identity.take() {
            state.retired.push(identity);
        }
        state.invalidated = true;
        state.changed = false;
    }

    /// Replaces this session with a fresh empty one under a new identity; the old record is
    /// deleted after the response. See [`crate::new_session`].
    pub(crate) fn renew(&self, created: u64) {
        let mut state = self.state();
        if let Some(identity) = state.stored.identity.take() {
            state.retired.push(identity);
        }
        state.stored = Stored { identity: None, created, data: Map::new() };
        state.new = true;
        state.changed = true;
        state.invalidated = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove_and_flags() {
        let session = Session::fresh(7);
        assert!(session.is_new() && session.is_empty() && !session.state().changed);
        session.insert("n", 3);
        session.insert("who", "ann");
        assert_eq!(session.get_as::<u32>("n"), Some(3));
        assert_eq!(session.get_as::<u32>("who"), None, "a string is not a number");
        assert_eq!(session.keys(), ["n", "who"]);
        assert!(session.state().changed);
        assert_eq!(session.remove("n"), Some(Value::from(3)));
        assert!(!session.contains_key("n"));
    }

    #[test]
    fn renew_and_invalidate_retire_the_identity() {
        let stored = Stored { identity: Some("old".into()), created: 1, data: Map::new() };
        let session = Session::from_stored(stored, false);
        session.insert("user", "ann");
        session.renew(2);
        assert!(session.is_empty() && session.is_new() && session.identity().is_none());
        assert_eq!(session.created(), 2);
        assert_eq!(session.state().retired, ["old"]);

        let stored = Stored { identity: Some("gone".into()), created: 1, data: Map::new() };
        let session = Session::from_stored(stored, false);
        session.insert("user", "ann");
        session.invalidate();
        let state = session.state();
        assert!(state.invalidated && !state.changed && state.stored.data.is_empty());
        assert_eq!(state.retired, ["gone"]);
    }
}
