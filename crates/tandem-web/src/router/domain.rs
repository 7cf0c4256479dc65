//! Host masks for `add_domain`: `example.com`, `example.com:8080`, `*.example.com`.

/// A host a domain sub-application answers: an exact name, or `*.` and a name for any of
/// its subdomains (one level or more, not the name itself), with an optional port.
#[derive(Clone, Debug)]
pub(crate) struct DomainMask {
    /// The name after any `*.`, lower-cased.
    name: String,
    wildcard: bool,
    port: Option<u16>,
}

impl DomainMask {
    /// Parses a mask; names are letters, digits, `-` and `.` (IDNs in their `xn--` form).
    pub(crate) fn parse(mask: &str) -> Result<DomainMask, String> {
        let bad = || format!("add_domain: {mask:?} is not a domain or a *.domain mask");
        let (wildcard, rest) = match mask.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, mask),
        };
        let (name, port) = match rest.rsplit_once(':') {
            Some((name, port)) => (name, Some(port.parse::<u16>().map_err(|_| bad())?)),
            None => (rest, None),
        };
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(bad());
        }
        Ok(DomainMask { name: name.to_ascii_lowercase(), wildcard, port })
    }

    /// Whether `host` (a `Host` value: a name and an optional port) is one this mask
    /// answers. Without a port in the mask, any port is.
    pub(crate) fn matches(&self, host: &str) -> bool {
        let (name, port) = match host.rsplit_once(':') {
            // An IPv6 literal's colons are inside its brackets: not a domain anyway.
            Some((name, port)) if !name.contains(']') || name.ends_with(']') => {
                (name, port.parse::<u16>().ok())
            }
            _ => (host, None),
        };
        if self.port.is_some() && self.port != port {
            return false;
        }
        let name = name.strip_suffix('.').unwrap_or(name);
        if self.wildcard {
            name.len() > self.name.len() + 1
                && name.as_bytes()[name.len() - self.name.len() - 1] == b'.'
                && name[name.len() - self.name.len()..].eq_ignore_ascii_case(&self.name)
        } else {
            name.eq_ignore_ascii_case(&self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        let exact = DomainMask::parse("Example.com").unwrap();
        assert!(exact.matches("example.COM"));
        assert!(exact.matches("example.com:8080"));
        assert!(exact.matches("example.com."));
        assert!(!exact.matches("www.example.com"));
        assert!(!exact.matches("badexample.com"));
        let any = DomainMask::parse("*.example.com").unwrap();
        assert!(any.matches("www.example.com"));
        assert!(any.matches("a.b.example.com:443"));
        assert!(!any.matches("example.com"));
        assert!(!any.matches("wwwexample.com"));
        assert!(!any.matches(".example.com"));
        let port = DomainMask::parse("example.com:8080").unwrap();
        assert!(port.matches("example.com:8080"));
        assert!(!port.matches("example.com"));
        assert!(!port.matches("example.com:80"));
        for bad in ["", "*", "*.", "a..b", "-a.com", "a b.com", "a.com:x", "a.*.com", "é.com"] {
            assert!(DomainMask::parse(bad).is_err(), "{bad}");
        }
        // Multi-byte host bytes never panic the slicing above.
        assert!(!any.matches("é.example.com.évil"));
        assert!(!exact.matches("[::1]:80"));
    }
}
