//! Files kept open between requests, with what answering for them needs: nginx's
//! `open_file_cache`, for [`FileResponse`](crate::FileResponse) and `add_static`.
//!
//! A file served once stays open, with its validators (`ETag`, `Last-Modified`) and, if it
//! is small, its bytes. Each later request `stat`s the path on the runtime's own thread and
//! uses the entry only if the file there is still the one opened: same device and inode,
//! size, modification and change times (a write, a rename over it, a `chmod` all change
//! one). A `stat` of a path just served is answered from the kernel's caches in about a
//! microsecond, where a hop to the blocking thread pool and back costs two context switches
//! and more than serving the file; a file that is new, changed or gone is opened again
//! there, as before.
//!
//! The cache is bounded: at most its capacity of entries (each an open descriptor, plus
//! the bytes of a file up to [`SMALL_FILE_BYTES`]); past it, the entry used longest ago is
//! closed. An entry whose file changed or vanished is dropped at the `stat` that sees it.

use std::{
    collections::HashMap,
    fs::{File, Metadata},
    path::{Path, PathBuf},
    sync::{
        Arc, LazyLock, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use http::HeaderValue;

use crate::ETag;

/// Files an open-file cache keeps by default: [`StaticOptions::open_file_cache`]'s default,
/// and the size of the cache [`FileResponse::serve`] shares.
///
/// [`StaticOptions::open_file_cache`]: crate::StaticOptions::open_file_cache
/// [`FileResponse::serve`]: crate::FileResponse::serve
pub const OPEN_FILE_CACHE_ENTRIES: usize = 256;

/// A cached file of at most this many bytes keeps its bytes too, and is answered as a whole
/// body written with its head in one write: no read per request. With
/// [`OPEN_FILE_CACHE_ENTRIES`], at most 4 MiB of file bytes a cache.
pub const SMALL_FILE_BYTES: u64 = 16 * 1024;

/// Open files and what is known of them, by the path they were opened at.
#[derive(Debug)]
pub(crate) struct FileCache {
    capacity: usize,
    entries: Mutex<HashMap<PathBuf, Arc<CachedFile>>>,
    /// Ticks on every hit, to find the entry used longest ago.
    clock: AtomicU64,
}

/// One open regular file, as it was when opened.
#[derive(Debug)]
pub(crate) struct CachedFile {
    pub(crate) file: File,
    stamp: Stamp,
    pub(crate) size: u64,
    pub(crate) modified: Option<SystemTime>,
    /// aiohttp's strong `ETag`, quoted.
    pub(crate) etag: ETag,
    pub(crate) etag_value: HeaderValue,
    pub(crate) last_modified: Option<HeaderValue>,
    /// The whole file, if it has at most [`SMALL_FILE_BYTES`].
    pub(crate) content: Option<Bytes>,
    /// The media type its path's extension names (`application/octet-stream` for none).
    pub(crate) content_type: HeaderValue,
    last_used: AtomicU64,
}

/// What says a file is still the one opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
    size: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    changed: (i64, i64),
}

impl Stamp {
    fn of(meta: &Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Stamp {
            #[cfg(unix)]
            dev: meta.dev(),
            #[cfg(unix)]
            ino: meta.ino(),
            size: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            changed: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// What a look in the cache found.
pub(crate) enum Lookup {
    /// The file at the path is the cached one.
    Hit(Arc<CachedFile>),
    /// Nothing servable is there: no such path, or (for [`FileCache::lookup`] without
    /// following links) not a regular file.
    Absent,
    /// The file must be opened (again).
    Miss,
}

impl FileCache {
    /// A cache of at most `capacity` files; 0 keeps none.
    pub(crate) fn new(capacity: usize) -> Self {
        FileCache { capacity, entries: Mutex::new(HashMap::new()), clock: AtomicU64::new(0) }
    }

    /// The cache every [`FileResponse::serve`](crate::FileResponse::serve) outside
    /// `add_static` shares.
    pub(crate) fn shared() -> &'static FileCache {
        static SHARED: LazyLock<FileCache> =
            LazyLock::new(|| FileCache::new(OPEN_FILE_CACHE_ENTRIES));
        &SHARED
    }

    /// Looks at the file at `path` (`stat`, or `lstat` unless `follow`) on this thread,
    /// and finds its entry if it is the one cached. A cache of capacity 0 looks at nothing.
    pub(crate) fn lookup(&self, path: &Path, follow: bool) -> Lookup {
        if self.capacity == 0 {
            return Lookup::Miss;
        }
        let meta = if follow { std::fs::metadata(path) } else { std::fs::symlink_metadata(path) };
        let meta = match meta {
            Ok(meta) if meta.file_type().is_file() => meta,
            Ok(_) if !follow => return Lookup::Absent,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                self.remove(path);
                return Lookup::Absent;
            }
            _ => {
                self.remove(path);
                return Lookup::Miss;
            }
        };
        let stamp = Stamp::of(&meta);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(path) {
            Some(found) if found.stamp == stamp => {
                let tick = self.clock.fetch_add(1, Ordering::Relaxed);
                found.last_used.store(tick, Ordering::Relaxed);
                Lookup::Hit(Arc::clone(found))
            }
            Some(_) => {
                entries.remove(path);
                Lookup::Miss
            }
            None => Lookup::Miss,
        }
    }

    /// Keeps `file` as the one at `path`, closing the entry used longest ago if full.
    pub(crate) fn insert(&self, path: PathBuf, file: Arc<CachedFile>) {
        if self.capacity == 0 {
            return;
        }
        file.last_used.store(self.clock.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&path) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, f)| f.last_used.load(Ordering::Relaxed))
                .map(|(p, _)| p.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(path, file);
    }

    fn remove(&self, path: &Path) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if !entries.is_empty() {
            entries.remove(path);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl CachedFile {
    /// Opens the regular file at `path` (blocking: call it off the runtime), refusing a
    /// symlink as its last part unless `follow`. The path is `stat`ed first, so a FIFO or a
    /// device is refused without being opened, and it is opened non-blocking and `fstat`ed
    /// again, so one swapped in between cannot block a thread either (unix). Anything but a
    /// regular file is `NotFound`.
    pub(crate) fn open(path: &Path, follow: bool) -> std::io::Result<Self> {
        let not_file = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let meta = if follow { std::fs::metadata(path)? } else { std::fs::symlink_metadata(path)? };
        if !meta.file_type().is_file() {
            return Err(not_file());
        }
        let file = open_options(follow).open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(not_file());
        }
        let size = meta.len();
        let content = if size <= SMALL_FILE_BYTES { read_whole(&file, size) } else { None };
        let modified = meta.modified().ok();
        let etag = etag(modified, size);
        Ok(CachedFile {
            etag_value: header_value(&etag.to_string()),
            etag,
            last_modified: modified.map(|m| header_value(&httpdate::fmt_http_date(m))),
            stamp: Stamp::of(&meta),
            file,
            size,
            modified,
            content,
            content_type: HeaderValue::from_static(content_type(path)),
            last_used: AtomicU64::new(0),
        })
    }

    /// Reads up to `buf.len()` bytes at `offset`, without moving any cursor (a cached file
    /// is read by many responses at once).
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        #[cfg(unix)]
        return std::os::unix::fs::FileExt::read_at(&self.file, buf, offset);
        #[cfg(windows)]
        return std::os::windows::fs::FileExt::seek_read(&self.file, buf, offset);
    }
}

/// The whole of a small file, or `None` if it is not `size` bytes long any more (it changed
/// as it was read: the next request's `stat` will see that).
fn read_whole(file: &File, size: u64) -> Option<Bytes> {
    #[cfg(unix)]
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0; usize::try_from(size).ok()?];
    #[cfg(unix)]
    file.read_exact_at(&mut buf, 0).ok()?;
    #[cfg(windows)]
    {
        use std::io::Read;
        (&*file).read_exact(&mut buf).ok()?;
    }
    Some(Bytes::from(buf))
}

/// Read-only, and on unix non-blocking (opening a FIFO never waits for a writer; reads of
/// a regular file are unaffected) and, unless `follow`, refusing a symlink as the last part.
fn open_options(follow: bool) -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_NONBLOCK | if follow { 0 } else { libc::O_NOFOLLOW },
    );
    #[cfg(not(unix))]
    let _ = follow;
    options
}

/// The media type the extension of `path` names, `application/octet-stream` for none.
pub(crate) fn content_type(path: &Path) -> &'static str {
    mime_guess::from_path(path).first_raw().unwrap_or("application/octet-stream")
}

pub(crate) fn header_value(text: &str) -> HeaderValue {
    // Every value built here is ASCII (digits, hex, a date, a MIME type).
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `"<mtime in ns, hex>-<size, hex>"`, aiohttp's strong `ETag`.
fn etag(modified: Option<SystemTime>, size: u64) -> ETag {
    let nanos =
        modified.and_then(|m| m.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    ETag::strong_from_valid(format!("{nanos:x}-{size:x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(path: &Path) -> Arc<CachedFile> {
        Arc::new(CachedFile::open(path, true).unwrap())
    }

    #[test]
    fn etag_format_is_aiohttps() {
        let time = UNIX_EPOCH + std::time::Duration::from_nanos(0x1234);
        assert_eq!(etag(Some(time), 255).to_string(), "\"1234-ff\"");
    }

    #[test]
    fn a_changed_or_removed_file_is_a_miss_and_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "one").unwrap();
        let cache = FileCache::new(4);
        assert!(matches!(cache.lookup(&path, true), Lookup::Miss));
        cache.insert(path.clone(), cached(&path));
        let Lookup::Hit(hit) = cache.lookup(&path, true) else { panic!("not a hit") };
        assert_eq!(hit.content.as_deref(), Some(&b"one"[..]));
        // Another size: another file, whatever the clock's resolution.
        std::fs::write(&path, "three").unwrap();
        assert!(matches!(cache.lookup(&path, true), Lookup::Miss));
        assert_eq!(cache.len(), 0);
        cache.insert(path.clone(), cached(&path));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(cache.lookup(&path, true), Lookup::Absent));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn bounded_by_capacity_dropping_the_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("{i}"))).collect();
        for path in &paths {
            std::fs::write(path, "x").unwrap();
        }
        let cache = FileCache::new(2);
        cache.insert(paths[0].clone(), cached(&paths[0]));
        cache.insert(paths[1].clone(), cached(&paths[1]));
        assert!(matches!(cache.lookup(&paths[0], true), Lookup::Hit(_)));
        cache.insert(paths[2].clone(), cached(&paths[2]));
        assert_eq!(cache.len(), 2);
        assert!(matches!(cache.lookup(&paths[1], true), Lookup::Miss));
        assert!(matches!(cache.lookup(&paths[0], true), Lookup::Hit(_)));
        // Capacity 0 keeps nothing and never looks.
        let none = FileCache::new(0);
        none.insert(paths[0].clone(), cached(&paths[0]));
        assert!(matches!(none.lookup(&paths[0], true), Lookup::Miss));
    }

    #[cfg(unix)]
    #[test]
    fn without_following_a_symlink_is_absent() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let cache = FileCache::new(2);
        assert!(matches!(cache.lookup(&link, false), Lookup::Absent));
        assert!(matches!(cache.lookup(&link, true), Lookup::Miss));
        assert!(CachedFile::open(&link, false).is_err());
        assert!(CachedFile::open(&link, true).is_ok());
    }
}
