//! `FormData`: a `multipart/form-data` body with text fields and files (aiohttp's
//! `FormData` when it holds a file).

use std::hash::{BuildHasher, Hasher};

use bytes::{BufMut, Bytes, BytesMut};

/// A multipart form, built field by field and sent with
/// [`RequestBuilder::multipart`](crate::RequestBuilder::multipart).
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
    data: Bytes,
}

impl Default for FormData {
    fn default() -> Self {
        Self::new()
    }
}

impl FormData {
    /// An empty form with a random boundary.
    pub fn new() -> Self {
        // `RandomState` is seeded from the OS per process and per instance: enough to keep a
        // boundary from appearing in the data by chance, without a `rand` dependency.
        let random = || std::collections::hash_map::RandomState::new().build_hasher().finish();
        let boundary = format!("{:016x}{:016x}", random(), random());
        FormData { boundary, parts: Vec::new() }
    }

    /// Adds a text field.
    #[must_use]
    pub fn text(mut self, name: &str, value: impl Into<String>) -> Self {
        let value: String = value.into();
        self.parts.push(Part {
            name: name.to_owned(),
            filename: None,
            content_type: None,
            data: value.into(),
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
            data: data.into(),
        });
        self
    }

    /// The `Content-Type` to send with the body.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The encoded body.
    pub fn to_bytes(&self) -> Bytes {
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
            out.put_slice(&part.data);
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"--");
        out.put_slice(self.boundary.as_bytes());
        out.put_slice(b"--\r\n");
        out.freeze()
    }
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
        let body = form.to_bytes();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.contains("name=\"a%22%0D%0Ab\"\r\n\r\n1\r\n"));
        assert!(text.contains(
            "name=\"f\"; filename=\"x.txt\"\r\ncontent-type: text/plain\r\n\r\ndata\r\n"
        ));
        assert!(text.ends_with(&format!("--{}--\r\n", form.boundary)));
        assert_ne!(FormData::new().boundary, FormData::new().boundary);
    }
}
