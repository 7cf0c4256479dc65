//! `.netrc` credentials, read under `trust_env` as aiohttp reads them.

use std::path::{Path, PathBuf};

use tandem_connect::Proxy;

/// The entries of a `.netrc` file: a login and password per machine, and a default.
#[derive(Clone, Default)]
pub(crate) struct Netrc {
    machines: Vec<(String, Entry)>,
    default: Option<Entry>,
}

#[derive(Clone, Default)]
struct Entry {
    login: String,
    password: String,
}

/// Without the passwords.
impl std::fmt::Debug for Netrc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts: Vec<_> = self.machines.iter().map(|(host, _)| host.as_str()).collect();
        f.debug_struct("Netrc")
            .field("machines", &hosts)
            .field("default", &self.default.is_some())
            .finish()
    }
}

impl Netrc {
    /// The file `NETRC` names, else `~/.netrc`, as aiohttp looks (`~/_netrc` on Windows).
    /// `None` when there is none or it cannot be read.
    pub(crate) fn from_env() -> Option<Netrc> {
        let path = if let Some(path) = std::env::var_os("NETRC") {
            PathBuf::from(path)
        } else {
            let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"))?;
            let name = if cfg!(windows) { "_netrc" } else { ".netrc" };
            Path::new(&home).join(name)
        };
        Netrc::from_file(&path)
    }

    /// The entries of the file at `path`, if it can be read.
    pub(crate) fn from_file(path: &Path) -> Option<Netrc> {
        match std::fs::read_to_string(path) {
            Ok(text) => Some(Netrc::parse(&text)),
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read netrc");
                }
                None
            }
        }
    }

    /// Parses the `.netrc` grammar: `machine NAME`, `default`, then `login`, `password` and
    /// `account` pairs; `macdef NAME` bodies (up to a blank line) are skipped.
    pub(crate) fn parse(text: &str) -> Netrc {
        let mut netrc = Netrc::default();
        // Which entry the pairs go to: a machine (its index) or the default.
        let mut current: Option<Option<usize>> = None;
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let mut tokens = line.split_whitespace();
            while let Some(token) = tokens.next() {
                match token {
                    "machine" => {
                        let Some(host) = tokens.next() else { break };
                        netrc.machines.push((host.to_ascii_lowercase(), Entry::default()));
                        current = Some(Some(netrc.machines.len() - 1));
                    }
                    "default" => {
                        netrc.default = Some(Entry::default());
                        current = Some(None);
                    }
                    "login" | "password" | "account" => {
                        let Some(value) = tokens.next() else { break };
                        let entry = match current {
                            Some(Some(i)) => &mut netrc.machines[i].1,
                            Some(None) => netrc.default.get_or_insert_with(Entry::default),
                            None => continue,
                        };
                        match token {
                            "login" => value.clone_into(&mut entry.login),
                            "password" => value.clone_into(&mut entry.password),
                            _ => {}
                        }
                    }
                    "macdef" => {
                        // The macro's body runs to the next blank line.
                        for body in lines.by_ref() {
                            if body.trim().is_empty() {
                                break;
                            }
                        }
                        break;
                    }
                    t if t.starts_with('#') => break,
                    _ => {}
                }
            }
        }
        netrc
    }

    /// The login and password for `host`: its machine's, else the default's.
    pub(crate) fn lookup(&self, host: &str) -> Option<(&str, &str)> {
        let entry = self
            .machines
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(host))
            .map(|(_, e)| e)
            .or(self.default.as_ref())?;
        Some((&entry.login, &entry.password))
    }

    /// A proxy from the environment without credentials of its own gets its host's from
    /// the file, as aiohttp's `trust_env` gives them (a proxy URL's own userinfo wins).
    pub(crate) fn proxy_credentials(&self, proxy: Proxy) -> Proxy {
        if proxy.authorization_value().is_some() {
            return proxy;
        }
        match self.lookup(proxy.origin().host()) {
            Some((login, password)) => proxy.basic_auth(login, password),
            None => proxy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_machines_default_and_skips_macros() {
        let netrc = Netrc::parse(
            "# comment\nmachine a.example login alice password s3cret\n\
             machine B.example\n  login bob\n  password pw account acct\n\
             macdef init\ncd /pub\nmachine evil login x password y\n\n\
             default login anon password guest\n",
        );
        assert_eq!(netrc.lookup("a.example"), Some(("alice", "s3cret")));
        assert_eq!(netrc.lookup("b.EXAMPLE"), Some(("bob", "pw")));
        assert_eq!(netrc.lookup("other"), Some(("anon", "guest")));
        assert!(netrc.machines.iter().all(|(h, _)| h != "evil"), "a macro's body is skipped");
        assert!(!format!("{netrc:?}").contains("s3cret"));
        assert_eq!(Netrc::parse("machine x login y").lookup("z"), None);
    }

    #[test]
    fn an_environment_proxy_without_credentials_gets_its_hosts() {
        use tandem_connect::{Origin, Scheme};
        let netrc = Netrc::parse(
            "machine proxy.example login pu password pp
",
        );
        let bare = Proxy::new(Origin::new(Scheme::Http, "proxy.example", 3128));
        let given = netrc.proxy_credentials(bare.clone());
        assert_eq!(given.authorization_value(), Some("Basic cHU6cHA="));
        let own = bare.basic_auth("me", "mine");
        assert_eq!(
            netrc.proxy_credentials(own.clone()).authorization_value(),
            own.authorization_value()
        );
        let elsewhere = Proxy::new(Origin::new(Scheme::Http, "other.example", 3128));
        assert_eq!(netrc.proxy_credentials(elsewhere).authorization_value(), None);
    }
}
