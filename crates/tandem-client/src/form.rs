//! `FormData`: aiohttp's form, sent urlencoded when it holds only text fields and as
//! `multipart/form-data` when it holds a file, whose contents may be streamed from disk.

use std::{
    hash::{BuildHasher, Hasher},
    path::PathBuf,
};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};

/// How much of a file part is read at a time.
const FILE_READ_SIZE: usize = 64 * 1024;

/// A form, built field by field and sent with
/// [`RequestBuilder::data`](crate::RequestBuilder::data) (urlencoded, or multipart once it
/// holds a file, as aiohttp chooses) or
/// [`RequestBuilder::multipart`](crate::RequestBuilder::multipart) (always multipart).
///
/// Names and file names are escaped as browsers do (HTML5): `"` as `%22`, CR as `%0D`, LF as
/// `%0A`, so no value can end its part header early.
#[derive(Clone, Debug)]
pub struct FormData {
    boundary: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug)]
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: PartData,
}

#[derive(Clone, Debug)]
enum PartData {
    Bytes(Bytes),
    /// A file read as the body is sent, never held whole in memory.
    File(PathBuf),
}

/// One piece of the encoded body: bytes, or a file's contents.
enum Segment {
    Bytes(Bytes),
    File(PathBuf),
}

impl Default for FormData {
    fn default() -> Self {
        Self::new()
    }
}

impl FormData {
    /// An empty form with a random boundary.
    pub fn new() -> Self {
        FormData { boundary: random_boundary(), parts: Vec::new() }
    }

    /// Adds a text field.
    #[must_use]
    pub fn text(mut self, name: &str, value: impl Into<String>) -> Self {
        let value: String = value.into();
        self.parts.push(Part {
            name: name.to_owned(),
            filename: None,
            content_type: None,
            data: PartData::Bytes(value.into()),
        });
        self
    }

    /// Adds a file: its field name, file name, content type and contents.
    #[must_use]
    pub fn file(
        mut self,
        name: &str,
        filename: &str,
        content_type: &str,
        data: impl Into<Bytes>,
    ) -> Self {
        self.parts.push(Part {
            name: name.to_owned(),
            filename: Some(filename.to_owned()),
            content_type: Some(content_type.to_owned()),
            data: PartData::Bytes(data.into()),
        });
        self
    }

    /// Adds the file at `path`, read from disk as the body is sent rather than held in
    /// memory (aiohttp's `add_field(name, open(path, "rb"))`); its file name is the path's
    /// last component. A file that cannot be read fails the request as it is sent.
    #[must_use]
    pub fn file_path(mut self, name: &str, path: impl Into<PathBuf>, content_type: &str) -> Self {
        let path = path.into();
        let filename = path.file_name().map(|f| f.to_string_lossy().into_owned());
        self.parts.push(Part {
            name: name.to_owned(),
            filename,
            content_type: Some(content_type.to_owned()),
            data: PartData::File(path),
        });
        self
    }

    /// Whether the form goes as `multipart/form-data` under
    /// [`RequestBuilder::data`](crate::RequestBuilder::data): when it holds a file, as
    /// aiohttp decides; a form of text fields only goes urlencoded.
    pub fn is_multipart(&self) -> bool {
        self.parts.iter().any(|p| p.filename.is_some() || p.content_type.is_some())
    }

    /// The text fields as `application/x-www-form-urlencoded`.
    pub(crate) fn to_urlencoded(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for part in &self.parts {
            if let PartData::Bytes(data) = &part.data {
                out.append_pair(&part.name, &String::from_utf8_lossy(data));
            }
        }
        out.finish()
    }

    /// The `Content-Type` to send with the multipart body.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// Whether any part is read from disk, so the body must be streamed.
    pub(crate) fn has_files(&self) -> bool {
        self.parts.iter().any(|p| matches!(p.data, PartData::File(_)))
    }

    /// The encoded multipart body. A part read from disk is read here, whole; one that
    /// cannot be read is an error.
    pub fn to_bytes(&self) -> Result<Bytes, std::io::Error> {
        let mut out = BytesMut::new();
        for segment in self.segments() {
            match segment {
                Segment::Bytes(bytes) => out.put_slice(&bytes),
                Segment::File(path) => out.put_slice(&std::fs::read(path)?),
            }
        }
        Ok(out.freeze())
    }

    /// The encoded body's length, when every file part is a regular file whose size its
    /// metadata gives (aiohttp's `os.fstat` of a file payload); `None` otherwise.
    pub(crate) fn content_length(&self) -> Option<u64> {
        self.segments().iter().try_fold(0u64, |total, segment| {
            let len = match segment {
                Segment::Bytes(bytes) => bytes.len() as u64,
                Segment::File(path) => {
                    let meta = std::fs::metadata(path).ok()?;
                    meta.is_file().then_some(meta.len())?
                }
            };
            total.checked_add(len)
        })
    }

    /// The encoded multipart body as a stream: files are read from disk a piece at a time.
    pub(crate) fn into_stream(
        self,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        futures_util::stream::iter(self.segments()).flat_map(|segment| match segment {
            Segment::Bytes(bytes) => futures_util::stream::once(async { Ok(bytes) }).boxed(),
            Segment::File(path) => read_file(path).boxed(),
        })
    }

    fn segments(&self) -> Vec<Segment> {
        let mut segments = Vec::new();
        let mut out = BytesMut::new();
        for part in &self.parts {
            out.put_slice(b"--");
            out.put_slice(self.boundary.as_bytes());
            out.put_slice(b"\r\ncontent-disposition: form-data; name=\"");
            put_escaped(&part.name, &mut out);
            out.put_u8(b'"');
            if let Some(filename) = &part.filename {
                out.put_slice(b"; filename=\"");
                put_escaped(filename, &mut out);
                out.put_u8(b'"');
            }
            out.put_slice(b"\r\n");
            if let Some(ct) = &part.content_type {
                out.put_slice(b"content-type: ");
                // A content type is a token/parameter string: control bytes are dropped.
                out.extend(ct.bytes().filter(|b| !b.is_ascii_control()));
                out.put_slice(b"\r\n");
            }
            out.put_slice(b"\r\n");
            match &part.data {
                PartData::Bytes(data) => out.put_slice(data),
                PartData::File(path) => {
                    segments.push(Segment::Bytes(out.split().freeze()));
                    segments.push(Segment::File(path.clone()));
                }
            }
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"--");
        out.put_slice(self.boundary.as_bytes());
        out.put_slice(b"--\r\n");
        segments.push(Segment::Bytes(out.freeze()));
        segments
    }
}

/// A boundary for a multipart body: 32 random hex digits. `RandomState` is seeded from the
/// OS per process and per instance: enough to keep a boundary from appearing in the data by
/// chance, without a `rand` dependency.
pub(crate) fn random_boundary() -> String {
    let random = || std::collections::hash_map::RandomState::new().build_hasher().finish();
    format!("{:016x}{:016x}", random(), random())
}

/// The file at `path`, a piece at a time.
fn read_file(path: PathBuf) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures_util::stream::once(tokio::fs::File::open(path))
        .map_ok(|file| {
            futures_util::stream::try_unfold(file, |mut file| async move {
                let mut buf = BytesMut::with_capacity(FILE_READ_SIZE);
                let n = tokio::io::AsyncReadExt::read_buf(&mut file, &mut buf).await?;
                Ok((n > 0).then(|| (buf.freeze(), file)))
            })
        })
        .try_flatten()
}

fn put_escaped(s: &str, out: &mut BytesMut) {
    for b in s.bytes() {
        match b {
            b'"' => out.put_slice(b"%22"),
            b'\r' => out.put_slice(b"%0D"),
            b'\n' => out.put_slice(b"%0A"),
            _ => out.put_u8(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_parts_and_escapes_names() {
        let form = FormData::new().text("a\"\r\nb", "1").file("f", "x.txt", "text/plain", "data");
        let body = form.to_bytes().unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.contains("name=\"a%22%0D%0Ab\"\r\n\r\n1\r\n"));
        assert!(text.contains(
            "name=\"f\"; filename=\"x.txt\"\r\ncontent-type: text/plain\r\n\r\ndata\r\n"
        ));
        assert!(text.ends_with(&format!("--{}--\r\n", form.boundary)));
        assert_ne!(FormData::new().boundary, FormData::new().boundary);
    }

    #[test]
    fn text_only_forms_go_urlencoded() {
        let form = FormData::new().text("a b", "1&2").text("c", "é");
        assert!(!form.is_multipart());
        assert_eq!(form.to_urlencoded(), "a+b=1%262&c=%C3%A9");
        assert!(form.text("f", "x").file("up", "u.txt", "text/plain", "x").is_multipart());
        let missing = FormData::new().file_path("f", "/nonexistent/tandem-form", "text/plain");
        assert!(missing.is_multipart() && missing.has_files());
        assert!(missing.to_bytes().is_err());
    }
}
