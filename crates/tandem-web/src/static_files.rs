//! Serving a directory: aiohttp's `add_static`.
//!
//! The tail of the URL is checked before the filesystem is touched, and every refusal, for
//! whatever reason, is the same 404 a missing file gets, so the answers say nothing about
//! what exists outside the root (CVE-2025-69226's 403/404 oracle):
//!
//! - it is percent-decoded once, by the router (`%252e` stays the literal `%2e`);
//! - an absolute tail (`//etc/passwd`), a `..` segment (however it was encoded), a segment of
//!   only dots and spaces (Windows trims those to `..`), and any `\`, `:` or NUL are refused
//!   on every OS, so the answer is the same on Linux and Windows (UNC paths, drive letters,
//!   alternate data streams); empty and `.` segments are skipped;
//! - the path is then canonicalized, which resolves symlinks (a loop is an error, so 404), and
//!   unless `follow_symlinks` it must stay under the canonical root.
//!
//! Unlike aiohttp, `..` is refused even where it would stay inside the root (`a/../b`):
//! nothing legitimate needs it, and refusing it outright leaves nothing to get wrong.
//! Directories are never redirected to add a slash, so no `Location` is ever built from the
//! request's path (the `//evil.example` open redirect of RUSTSEC-2022-0072).

use std::{
    fmt::Write,
    path::{Path, PathBuf},
};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::{
    Error, HttpError, OPEN_FILE_CACHE_ENTRIES, Request,
    file_cache::{FileCache, Lookup},
    file_response::FileResponse,
    response::Response,
};

/// Characters kept raw in a listing's links: RFC 3986's unreserved set.
const NAME_ENCODE: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Options for [`crate::Application::add_static`]: `StaticOptions::default()`, then the
/// `with_*` methods. Non-exhaustive, so that a new option is not a breaking change.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StaticOptions {
    /// List a directory's entries as HTML (aiohttp's `show_index`). Without it a directory
    /// is 403, as in aiohttp.
    pub show_index: bool,
    /// Serve symlinks that point outside the root (aiohttp's `follow_symlinks`, now
    /// `break_symlink_sandbox`). The URL still cannot climb out of the root; only links
    /// placed in it by whoever owns the directory can.
    pub follow_symlinks: bool,
    /// Files kept open between requests, with their validators and, up to
    /// [`SMALL_FILE_BYTES`](crate::SMALL_FILE_BYTES), their bytes (nginx's
    /// `open_file_cache`); default [`OPEN_FILE_CACHE_ENTRIES`](crate::OPEN_FILE_CACHE_ENTRIES),
    /// 0 for none. Each request still checks the file on disk (a `stat`), so a changed
    /// file is served as it is now; what a hit saves is resolving, opening and reading it.
    pub open_file_cache: usize,
}

impl Default for StaticOptions {
    fn default() -> Self {
        StaticOptions {
            show_index: false,
            follow_symlinks: false,
            open_file_cache: OPEN_FILE_CACHE_ENTRIES,
        }
    }
}

impl StaticOptions {
    /// Sets [`show_index`](Self::show_index).
    #[must_use]
    pub fn with_show_index(mut self, yes: bool) -> Self {
        self.show_index = yes;
        self
    }

    /// Sets [`follow_symlinks`](Self::follow_symlinks).
    #[must_use]
    pub fn with_follow_symlinks(mut self, yes: bool) -> Self {
        self.follow_symlinks = yes;
        self
    }

    /// Sets [`open_file_cache`](Self::open_file_cache): at most `files` kept open.
    #[must_use]
    pub fn with_open_file_cache(mut self, files: usize) -> Self {
        self.open_file_cache = files;
        self
    }
}

/// A directory served under a URL prefix.
#[derive(Debug)]
pub(crate) struct StaticDir {
    /// Canonical, so a resolved path can be checked against it by prefix.
    root: PathBuf,
    options: StaticOptions,
    files: FileCache,
}

impl StaticDir {
    /// Checks that `dir` exists and is a directory, as aiohttp does when the route is added.
    pub(crate) fn new(dir: &Path, options: StaticOptions) -> Result<Self, Error> {
        let root = dir.canonicalize().map_err(|err| {
            Error::new(format!("add_static: no directory at {}: {err}", dir.display()))
        })?;
        if !root.is_dir() {
            return Err(Error::new(format!("add_static: {} is not a directory", dir.display())));
        }
        let files = FileCache::new(options.open_file_cache);
        Ok(StaticDir { root, options, files })
    }

    /// Answers a request whose route matched `filename`, the decoded tail after the prefix.
    pub(crate) async fn handle(&self, req: Request) -> Result<Response, HttpError> {
        let tail = req.match_info("filename").unwrap_or_default();
        let rel = relative_path(tail).ok_or_else(HttpError::not_found)?;
        // Entries are made only below, for canonical paths that passed the checks: the file
        // at such a path now being the one cached is the file those checks passed.
        let candidate = self.root.join(&rel);
        if let Lookup::Hit(found) = self.files.lookup(&candidate, true) {
            return FileResponse::new(candidate).serve_cached(&req, &self.files, Some(found)).await;
        }
        let resolved = tokio::fs::canonicalize(self.root.join(&rel))
            .await
            .map_err(|_| HttpError::not_found())?;
        if !self.options.follow_symlinks && !resolved.starts_with(&self.root) {
            return Err(HttpError::not_found());
        }
        let meta = tokio::fs::metadata(&resolved).await.map_err(|_| HttpError::not_found())?;
        if meta.is_dir() {
            return if self.options.show_index {
                listing(&req, &resolved, &rel).await
            } else {
                Err(HttpError::forbidden())
            };
        }
        FileResponse::new(resolved).serve_cached(&req, &self.files, None).await
    }
}

/// The relative path a URL tail names, or `None` if it must be refused (see the module
/// docs).
fn relative_path(tail: &str) -> Option<PathBuf> {
    if tail.starts_with('/') {
        return None;
    }
    let mut rel = PathBuf::new();
    for segment in tail.split('/') {
        match segment {
            "" | "." => {}
            s if s.contains(['\\', ':', '\0']) => return None,
            s if s.bytes().all(|b| b == b'.' || b == b' ') => return None,
            s => rel.push(s),
        }
    }
    Some(rel)
}

/// An HTML listing of `dir`, every name escaped (CVE-2024-27306), in aiohttp's format.
async fn listing(req: &Request, dir: &Path, rel: &Path) -> Result<Response, HttpError> {
    let mut read = tokio::fs::read_dir(dir).await.map_err(|err| {
        if err.kind() == std::io::ErrorKind::PermissionDenied {
            HttpError::forbidden()
        } else {
            HttpError::not_found()
        }
    })?;
    let mut entries = Vec::new();
    while let Ok(Some(entry)) = read.next_entry().await {
        // Follows links, as aiohttp's `is_dir()`: a link to a directory is listed as one.
        let is_dir = tokio::fs::metadata(entry.path()).await.is_ok_and(|m| m.is_dir());
        entries.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
    }
    entries.sort();

    // Links are absolute from the request's own path, so they work with or without a
    // trailing slash. Leading slashes are collapsed to one: `//host/x` in an `href` would
    // point at another origin.
    let mut base = format!("/{}", req.raw_path().trim_start_matches('/'));
    if !base.ends_with('/') {
        base.push('/');
    }
    let rel = rel.to_string_lossy().replace('\\', "/");
    let title = format!("Index of /{}", escape_html(&rel));
    let mut html = format!(
        "<html>\n<head>\n<title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n<ul>\n"
    );
    for (name, is_dir) in entries {
        let slash = if is_dir { "/" } else { "" };
        let href = format!("{base}{}{slash}", utf8_percent_encode(&name, NAME_ENCODE));
        let _ = writeln!(
            html,
            "<li><a href=\"{}\">{}{slash}</a></li>",
            escape_html(&href),
            escape_html(&name)
        );
    }
    html.push_str("</ul>\n</body>\n</html>");
    Ok(Response::html(html))
}

/// Escapes text for HTML content and for quoted attribute values: `&`, `<`, `>`, `"` and `'`
/// become character references, and nothing else changes (a URL keeps its `/`). The one
/// escaping function of Tandem: the static index pages and `tandem-templates`' `url_for` and
/// `static` use it.
///
/// ```
/// assert_eq!(
///     tandem_web::escape_html(r#"<a href="/x?a=1&b='2'">"#),
///     "&lt;a href=&quot;/x?a=1&amp;b=&#x27;2&#x27;&quot;&gt;"
/// );
/// ```
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails() {
        assert_eq!(relative_path("a/b.txt"), Some(PathBuf::from("a/b.txt")));
        assert_eq!(relative_path(""), Some(PathBuf::new()));
        assert_eq!(relative_path("./a//b/"), Some(PathBuf::from("a/b")));
        for refused in [
            "../etc/passwd",
            "a/../../b",
            "a/..",
            "/etc/passwd",
            "..\\..\\windows\\win.ini",
            "\\\\server\\share",
            "C:/windows/win.ini",
            "a/C:",
            "file.txt::$DATA",
            "a\0.txt",
            "...",
            ".. ",
        ] {
            assert_eq!(relative_path(refused), None, "{refused:?}");
        }
        // Double encoding arrives here decoded once: a literal, harmless name.
        assert_eq!(relative_path("%2e%2e/x"), Some(PathBuf::from("%2e%2e/x")));
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape_html("<img src=x onerror=alert(1)>&\"'"),
            "&lt;img src=x onerror=alert(1)&gt;&amp;&quot;&#x27;"
        );
    }
}
