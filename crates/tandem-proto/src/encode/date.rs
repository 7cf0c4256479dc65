//! The `Date` value, formatted at most once a second per thread.

use std::{cell::RefCell, time::SystemTime};

/// The length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) const DATE_LEN: usize = 29;

struct CachedDate {
    second: u64,
    value: [u8; DATE_LEN],
}

thread_local! {
    static CACHED: RefCell<CachedDate> = const {
        RefCell::new(CachedDate { second: u64::MAX, value: [0; DATE_LEN] })
    };
}

/// Calls `f` with the current date as an IMF-fixdate (RFC 9110 §5.6.7). Formatting costs
/// more than reading the clock, so each thread formats once per second and reuses it.
pub(crate) fn with_date<R>(f: impl FnOnce(&[u8; DATE_LEN]) -> R) -> R {
    let now = SystemTime::now();
    let second = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.second != second {
            let formatted = httpdate::fmt_http_date(now);
            if let Ok(value) = <[u8; DATE_LEN]>::try_from(formatted.as_bytes()) {
                cached.value = value;
                cached.second = second;
            }
        }
        f(&cached.value)
    })
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
