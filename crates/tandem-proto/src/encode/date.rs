//! The `Date` value, formatted at most once a second per thread.

use std::{
    cell::Cell,
    time::{Duration, SystemTime},
};

/// The length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) const DATE_LEN: usize = 29;

#[derive(Clone, Copy)]
struct CachedDate {
    /// The start of the second after the one `value` names: until then it stands.
    until: SystemTime,
    value: [u8; DATE_LEN],
}

thread_local! {
    static CACHED: Cell<CachedDate> = const {
        Cell::new(CachedDate { until: SystemTime::UNIX_EPOCH, value: [0; DATE_LEN] })
    };
}

/// Calls `f` with the current date as an IMF-fixdate (RFC 9110 §5.6.7). Formatting costs
/// more than reading the clock, so each thread formats once per second and reuses it.
///
/// The cache is checked by comparing the clock with the end of the cached second, rather
/// than by working out the current second (a `duration_since` and a division), and sits in
/// a `Cell` rather than a `RefCell`: it runs for every response, and neither the division
/// nor a borrow flag buys anything here.
pub(crate) fn with_date<R>(f: impl FnOnce(&[u8; DATE_LEN]) -> R) -> R {
    let now = SystemTime::now();
    let mut cached = CACHED.get();
    if now >= cached.until {
        let since = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let formatted = httpdate::fmt_http_date(now);
        if let Ok(value) = <[u8; DATE_LEN]>::try_from(formatted.as_bytes()) {
            let until = SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs() + 1);
            cached = CachedDate { until, value };
            CACHED.set(cached);
        }
    }
    f(&cached.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_is_an_imf_fixdate_that_parses_back() {
        let text = with_date(|d| String::from_utf8(d.to_vec()).unwrap());
        assert!(text.ends_with(" GMT"), "{text}");
        assert!(httpdate::parse_http_date(&text).is_ok(), "{text}");
    }
}
