//! Serving one file: aiohttp's `web.FileResponse`.
//!
//! Validators (`ETag`, `Last-Modified`), conditional requests (304, 412), a single byte range
//! (206, 416) and precompressed `.br` / `.gz` siblings. The file comes from an open-file
//! cache ([`crate::file_cache`]), so a file served before is answered without leaving the
//! runtime's thread: a small one from its cached bytes, a larger one sent by the connection
//! from the open file (`sendfile(2)` on plain TCP on Linux; elsewhere it is read in chunks
//! off the runtime, so it is never read whole into memory).
//!
//! Only regular files are served: see [`CachedFile::open`] for how a FIFO or a device is
//! refused without blocking a thread.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use http::{HeaderValue, Method, StatusCode, header};

use crate::{
    ByteRange, ETag, HttpError, IfRange, Request,
    compression::{AcceptEncoding, Coding},
    file_cache::{CachedFile, FileCache, Lookup, content_type, header_value},
    response::{Body, Response},
};

/// The size of the chunks a file is read and sent in, unless
/// [`FileResponse::chunk_size`] says otherwise.
pub const DEFAULT_FILE_CHUNK_SIZE: usize = 64 * 1024;

/// A file to send in answer to a request: aiohttp's `web.FileResponse`.
///
/// [`serve`](Self::serve) looks at the request (conditional headers, `Range`,
/// `Accept-Encoding`) and gives the response: 200 with the file, 206 for one satisfiable
/// byte range, 304 or 412 for conditional requests, 416 for a range it will not serve; or an
/// [`HttpError`], 404 for a missing path or anything but a regular file, 403 when the file
/// cannot be read. [`file_response`] is the one-call form.
///
/// Files are kept open between requests in a cache of
/// [`OPEN_FILE_CACHE_ENTRIES`](crate::OPEN_FILE_CACHE_ENTRIES) files shared by every
/// `FileResponse` (and one per `add_static`), checked against the file on disk at each
/// request, so a changed file is served as it is now.
///
/// ```no_run
/// use tandem_web::{FileResponse, HttpError, Request, Response};
///
/// async fn download(req: Request) -> Result<Response, HttpError> {
///     FileResponse::new("/srv/files/report.pdf").chunk_size(256 * 1024).serve(&req).await
/// }
/// ```
#[derive(Clone, Debug)]
pub struct FileResponse {
    path: PathBuf,
    chunk_size: usize,
}

/// Serves the file at `path` in answer to `req`; see [`FileResponse`].
pub async fn file_response(req: &Request, path: impl AsRef<Path>) -> Result<Response, HttpError> {
    FileResponse::new(path.as_ref()).serve(req).await
}

/// A response's body that is a range of an open file: the HTTP/1.1 writer sends it
/// straight from the file where the connection allows (`sendfile(2)` on plain TCP), and the
/// body's stream reads it otherwise. It rides in the response's extensions (a type no one
/// outside can name), so responses without one carry nothing more.
#[derive(Clone, Debug)]
pub(crate) struct FileBody {
    pub(crate) file: Arc<CachedFile>,
    pub(crate) start: u64,
    pub(crate) count: u64,
    /// Where the stream it stands for lives: the writer sends from the file only while the
    /// response's body is still that stream (extensions can be copied to another response).
    stream: usize,
}

impl FileBody {
    /// Whether `body` is the stream this file was set beside.
    pub(crate) fn is_body(&self, body: &Body) -> bool {
        matches!(body, Body::Stream(stream) if stream_address(stream) == self.stream)
    }
}

fn stream_address(stream: &crate::response::BodyStream) -> usize {
    std::ptr::from_ref(&**stream).cast::<()>().addr()
}

impl FileResponse {
    /// The file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileResponse { path: path.into(), chunk_size: DEFAULT_FILE_CHUNK_SIZE }
    }

    /// Sets the size of the chunks the file is read and sent in (at least 1 byte).
    #[must_use]
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// Builds the response to `req`.
    pub async fn serve(self, req: &Request) -> Result<Response, HttpError> {
        self.serve_cached(req, FileCache::shared(), None).await
    }

    /// Builds the response to `req` with the files of `cache`; `found` is this path's
    /// entry, if the caller has looked it up already.
    pub(crate) async fn serve_cached(
        self,
        req: &Request,
        cache: &FileCache,
        found: Option<Arc<CachedFile>>,
    ) -> Result<Response, HttpError> {
        // A precompressed sibling the client accepts comes first (br before gzip on a tie),
        // as aiohttp does; then the file itself.
        let accept = req.header("accept-encoding").map(|v| AcceptEncoding::parse(v.as_bytes()));
        let mut chosen = None;
        for coding in accept.map(|a| a.ranked(&[Coding::Br, Coding::Gzip])).unwrap_or_default() {
            if let Some(found) = open_sibling(cache, &self.path, coding).await {
                chosen = Some((found, Some(coding)));
                break;
            }
        }
        let (file, coding) = match (chosen, found) {
            (Some(chosen), _) => chosen,
            (None, Some(found)) => (found, None),
            (None, None) => (open_regular(cache, &self.path).await?, None),
        };

        let size = file.size;
        let modified = file.modified;
        let mut response = Response::new(StatusCode::OK);
        let headers = response.headers_mut();
        headers.insert(header::ETAG, file.etag_value.clone());
        if let Some(last_modified) = &file.last_modified {
            headers.insert(header::LAST_MODIFIED, last_modified.clone());
        }
        // A sibling's own type is its coding's; the type is the file's it stands for.
        let content_type = match coding {
            None => file.content_type.clone(),
            Some(_) => HeaderValue::from_static(content_type(&self.path)),
        };
        headers.insert(header::CONTENT_TYPE, content_type);
        if let Some(coding) = coding {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding.name()));
            headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }

        match preconditions(req, &file.etag, modified) {
            Precondition::Proceed => {}
            Precondition::NotModified => {
                // A 304 carries the validators; the writer sends no body or length.
                response.set_status(StatusCode::NOT_MODIFIED);
                return Ok(response);
            }
            Precondition::Failed => return Ok(Response::new(StatusCode::PRECONDITION_FAILED)),
        }

        response.headers_mut().insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        let is_get = matches!(*req.method(), Method::GET | Method::HEAD);
        let range = match req.header("range") {
            Some(range) if is_get && if_range_holds(req, &file.etag, modified) => {
                let Some(range) = ByteRange::parse(range).and_then(|r| r.resolve(size)) else {
                    // aiohttp's answer to any range it will not serve, with the size.
                    let mut refused = Response::new(StatusCode::RANGE_NOT_SATISFIABLE);
                    let content_range = format!("bytes */{size}");
                    refused
                        .headers_mut()
                        .insert(header::CONTENT_RANGE, header_value(&content_range));
                    return Ok(refused);
                };
                Some(range)
            }
            _ => None,
        };
        let (start, count) = match range {
            Some(range) => {
                response.set_status(StatusCode::PARTIAL_CONTENT);
                let (start, last) = (range.start, range.end - 1);
                let content_range = format!("bytes {start}-{last}/{size}");
                response.headers_mut().insert(header::CONTENT_RANGE, header_value(&content_range));
                (start, range.end - start)
            }
            None => (0, size),
        };
        if count > 0 {
            set_file_body(&mut response, file, (start, count), self.chunk_size);
        }
        Ok(response)
    }
}

/// Sets `count` bytes of `file` from `start` as the response's body: a small file's cached
/// bytes as a whole body; else a stream that reads the file in chunks of `chunk_size`, for
/// connections that cannot send from the file itself ([`FileBody`]), with `Content-Length`
/// (HEAD gets the same header and no body).
fn set_file_body(
    response: &mut Response,
    file: Arc<CachedFile>,
    (start, count): (u64, u64),
    chunk_size: usize,
) {
    let range = usize::try_from(start).ok().zip(usize::try_from(count).ok());
    if let (Some(content), Some((from, len))) = (&file.content, range) {
        response.set_body(Body::Full(content.slice(from..from + len)));
        return;
    }
    let stream = read_stream(Arc::clone(&file), start, count, chunk_size);
    let body = FileBody { file, start, count, stream: stream_address(&stream) };
    response.set_body(Body::Stream(stream));
    response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    response.extensions_mut().insert(body);
}

/// The file from `start`, `count` bytes, read in chunks of `chunk_size` off the runtime.
fn read_stream(
    file: Arc<CachedFile>,
    start: u64,
    count: u64,
    chunk_size: usize,
) -> crate::response::BodyStream {
    let chunks = futures_util::stream::try_unfold(
        (file, start, count),
        move |(file, at, left)| async move {
            if left == 0 {
                return Ok(None);
            }
            let want = usize::try_from(left).map_or(chunk_size, |left| left.min(chunk_size));
            let (file, chunk) = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0; want];
                let read = file.read_at(&mut buf, at);
                (
                    file,
                    read.map(|n| {
                        buf.truncate(n);
                        buf
                    }),
                )
            })
            .await
            .map_err(|err| crate::Error::new(format!("file read failed: {err}")))?;
            let chunk = chunk?;
            if chunk.is_empty() {
                // The file shrank since it was opened: the writer sees the body end short.
                return Ok(None);
            }
            let n = chunk.len() as u64;
            Ok(Some((bytes::Bytes::from(chunk), (file, at + n, left - n))))
        },
    );
    Box::pin(chunks)
}

/// The file at `path`, following symlinks, from the cache or opened (and then cached). 404
/// for anything but a regular file or a path that cannot be opened; 403 when permission is
/// denied (aiohttp's answers).
async fn open_regular(cache: &FileCache, path: &Path) -> Result<Arc<CachedFile>, HttpError> {
    if let Lookup::Hit(found) = cache.lookup(path, true) {
        return Ok(found);
    }
    let owned = path.to_owned();
    let opened = tokio::task::spawn_blocking(move || CachedFile::open(&owned, true)).await;
    let opened = opened.map_err(|_| HttpError::internal_server_error())?;
    let file = Arc::new(opened.map_err(|err| {
        tracing::debug!(target: "tandem::server", path = %path.display(), error = %err, "file refused");
        if err.kind() == std::io::ErrorKind::PermissionDenied {
            HttpError::forbidden()
        } else {
            HttpError::not_found()
        }
    })?);
    cache.insert(path.to_owned(), Arc::clone(&file));
    Ok(file)
}

/// `path` + `.br` or `.gz` if it is a regular file and not a symlink: `lstat`ed, then opened
/// with `O_NOFOLLOW` so a link swapped in afterwards is refused too (CVE-2024-42367: a
/// sibling linked out of the static root must never be served). Any failure means "no
/// sibling"; a sibling that is not there costs one `lstat`, on this thread.
async fn open_sibling(cache: &FileCache, path: &Path, coding: Coding) -> Option<Arc<CachedFile>> {
    let extension = match coding {
        Coding::Br => ".br",
        Coding::Gzip => ".gz",
        Coding::Deflate => return None,
    };
    let mut name = path.as_os_str().to_owned();
    name.push(extension);
    let sibling = PathBuf::from(name);
    match cache.lookup(&sibling, false) {
        Lookup::Hit(found) => return Some(found),
        Lookup::Absent => return None,
        Lookup::Miss => {}
    }
    let owned = sibling.clone();
    let opened = tokio::task::spawn_blocking(move || CachedFile::open(&owned, false)).await;
    let file = Arc::new(opened.ok()?.ok()?);
    cache.insert(sibling, Arc::clone(&file));
    Some(file)
}

enum Precondition {
    Proceed,
    NotModified,
    Failed,
}

/// The conditional headers, in RFC 9110 §13.2.2's order (aiohttp's too): `If-Match`, else
/// `If-Unmodified-Since` (412); then `If-None-Match`, else `If-Modified-Since` (304 for GET
/// and HEAD, 412 otherwise). Dates compare at whole seconds, the precision of
/// `Last-Modified`, so a client echoing it back gets its 304.
fn preconditions(req: &Request, etag: &ETag, modified: Option<SystemTime>) -> Precondition {
    let is_get = matches!(*req.method(), Method::GET | Method::HEAD);
    let modified = modified.map(unix_seconds);
    if let Some(if_match) = req.if_match() {
        if !if_match.matches(etag, false) {
            return Precondition::Failed;
        }
    } else if let Some(since) = req.if_unmodified_since().map(unix_seconds)
        && modified.is_some_and(|m| m > since)
    {
        return Precondition::Failed;
    }
    let unchanged = if let Some(if_none_match) = req.if_none_match() {
        if_none_match.matches(etag, true)
    } else if let Some(since) = req.if_modified_since().map(unix_seconds) {
        // A date in the future is not a valid validator (RFC 7232 §3.3): ignore it, or a
        // client with a fast clock would never see the file change.
        let now = unix_seconds(SystemTime::now());
        is_get && since <= now && modified.is_some_and(|m| m <= since)
    } else {
        false
    };
    match unchanged {
        false => Precondition::Proceed,
        true if is_get => Precondition::NotModified,
        true => Precondition::Failed,
    }
}

/// Whether a `Range` may be honoured under `If-Range`: absent, or it names the current
/// representation (the strong `ETag`, or exactly the `Last-Modified` date). Otherwise, a
/// malformed `If-Range` included, the whole file is sent.
fn if_range_holds(req: &Request, etag: &ETag, modified: Option<SystemTime>) -> bool {
    match req.if_range() {
        None => req.header("if-range").is_none(),
        // A weak tag never matches here (§13.1.5).
        Some(IfRange::ETag(tag)) => tag.matches(etag, false),
        Some(IfRange::Date(date)) => modified.map(unix_seconds) == Some(unix_seconds(date)),
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
