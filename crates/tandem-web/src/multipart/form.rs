//! The form `post()` returns: ordered, multi-valued fields, with uploaded files spooled to
//! temporary files.

use std::io::SeekFrom;

use bytes::Bytes;
use http::HeaderMap;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{MultipartReader, Part, decode};
use crate::HttpError;

/// A form body: aiohttp's `MultiDict` from `await request.post()`.
///
/// Fields keep their order and repeated names. A urlencoded form holds only text; a
/// multipart form holds text, raw bytes (a part with a non-text `Content-Type`) and files
/// (a part with a file name), as aiohttp's `post()` does.
///
/// ```
/// # async fn handler(mut req: tandem_web::Request) -> Result<String, tandem_web::Error> {
/// let form = req.post().await?;
/// let name = form.get("name").unwrap_or("anonymous");
/// let tags: Vec<&str> = form.get_all("tag").collect();
/// if let Some(upload) = form.file("avatar") {
///     println!("{} bytes", upload.size());
/// }
/// # Ok(format!("{name} {tags:?}")) }
/// ```
#[derive(Debug, Default)]
pub struct Form {
    fields: Vec<(String, FormValue)>,
}

/// One value of a [`Form`].
#[derive(Debug)]
pub enum FormValue {
    /// A text field: every urlencoded field, and multipart parts without a file name whose
    /// `Content-Type` is absent or `text/*` (decoded from their charset).
    Text(String),
    /// A multipart part without a file name and with another `Content-Type`.
    Bytes(Bytes),
    /// An uploaded file (boxed: it is much larger than the other values).
    File(Box<FileField>),
}

impl FormValue {
    /// The text, if this is a text field.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            FormValue::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The file, if this is an upload.
    pub fn as_file(&self) -> Option<&FileField> {
        match self {
            FormValue::File(file) => Some(file),
            _ => None,
        }
    }
}

impl Form {
    /// Builds a form from name and value pairs (a urlencoded body).
    pub(crate) fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Form { fields: pairs.into_iter().map(|(n, v)| (n, FormValue::Text(v))).collect() }
    }

    /// The first text value of field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().filter(|(n, _)| n == name).find_map(|(_, v)| v.as_text())
    }

    /// Every text value of field `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.values(name).filter_map(FormValue::as_text)
    }

    /// Every value of field `name`, in order, whatever its kind.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a FormValue> + 'a {
        self.fields.iter().filter(move |(n, _)| n == name).map(|(_, v)| v)
    }

    /// The first file uploaded as field `name`.
    pub fn file(&self, name: &str) -> Option<&FileField> {
        self.fields.iter().filter(|(n, _)| n == name).find_map(|(_, v)| v.as_file())
    }

    /// The first file uploaded as field `name`, to read.
    pub fn file_mut(&mut self, name: &str) -> Option<&mut FileField> {
        self.fields.iter_mut().filter(|(n, _)| n == name).find_map(|(_, v)| match v {
            FormValue::File(file) => Some(&mut **file),
            _ => None,
        })
    }

    /// Every field in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FormValue)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// The number of fields, repeats counted.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the form has no field.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl IntoIterator for Form {
    type Item = (String, FormValue);
    type IntoIter = std::vec::IntoIter<(String, FormValue)>;

    fn into_iter(self) -> Self::IntoIter {
        self.fields.into_iter()
    }
}

/// An uploaded file: aiohttp's `FileField`. Its data is in an anonymous temporary file,
/// removed when this is dropped, positioned at its start.
#[derive(Debug)]
pub struct FileField {
    name: String,
    filename: String,
    content_type: String,
    headers: HeaderMap,
    size: u64,
    file: tokio::fs::File,
}

impl FileField {
    /// The form field's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file name exactly as the client sent it: untrusted, see
    /// [`crate::Part::filename`].
    pub fn filename(&self) -> &str {
        &self.filename
    }

    /// The part's `Content-Type`, `application/octet-stream` if it had none (as aiohttp).
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The part's headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The temporary file, to read or copy.
    pub fn file_mut(&mut self) -> &mut tokio::fs::File {
        &mut self.file
    }

    /// Takes the temporary file.
    pub fn into_file(self) -> tokio::fs::File {
        self.file
    }

    /// Reads the whole file into memory, from its start.
    pub async fn read_to_end(&mut self) -> std::io::Result<Vec<u8>> {
        self.file.seek(SeekFrom::Start(0)).await?;
        let mut data = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        self.file.read_to_end(&mut data).await?;
        Ok(data)
    }
}

/// Reads a whole multipart form, as aiohttp's `post()`: parts with a file name go to
/// temporary files as they arrive, others are kept in memory; the reader's limit bounds the
/// total. Nested multipart parts and parts without a name are 400s.
pub(crate) async fn read_form(mut reader: MultipartReader) -> Result<Form, HttpError> {
    let mut form = Form::default();
    while let Some(part) = reader.next_part().await? {
        let name = part
            .name()
            .ok_or_else(|| HttpError::bad_request().with_text("400: a form part has no name"))?
            .to_owned();
        if part.is_multipart() {
            return Err(HttpError::bad_request().with_text("400: nested multipart in a form"));
        }
        let content_type = part.content_type().map(str::to_owned);
        // aiohttp treats `filename=""` (an empty file input) as an ordinary field.
        let filename = part.filename().filter(|f| !f.is_empty()).map(str::to_owned);
        let value = if let Some(filename) = filename {
            let headers = part.headers().clone();
            let (file, size) = spool(part).await?;
            FormValue::File(Box::new(FileField {
                name: name.clone(),
                filename,
                content_type: content_type.unwrap_or_else(|| "application/octet-stream".to_owned()),
                headers,
                size,
                file,
            }))
        } else {
            let bytes = part.bytes().await?;
            let text = content_type.as_deref().is_none_or(|ct| {
                ct.trim_start().get(..5).is_some_and(|s| s.eq_ignore_ascii_case("text/"))
            });
            if text {
                FormValue::Text(decode::decode_text(&bytes, content_type.as_deref())?)
            } else {
                FormValue::Bytes(bytes)
            }
        };
        form.fields.push((name, value));
    }
    Ok(form)
}

/// Writes a part to an anonymous temporary file (created off the runtime's threads) as it
/// arrives; returns the file, rewound, and its size.
async fn spool(mut part: Part<'_>) -> Result<(tokio::fs::File, u64), HttpError> {
    let file = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(|_| HttpError::internal_server_error())?
        .map_err(|e| io_error(&e))?;
    let mut file = tokio::fs::File::from_std(file);
    let mut size = 0u64;
    while let Some(chunk) = part.chunk().await? {
        size += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(|e| io_error(&e))?;
    }
    file.flush().await.map_err(|e| io_error(&e))?;
    file.seek(SeekFrom::Start(0)).await.map_err(|e| io_error(&e))?;
    Ok((file, size))
}

fn io_error(err: &std::io::Error) -> HttpError {
    tracing::error!(target: "tandem::server", error = %err, "spooling an upload failed");
    HttpError::internal_server_error()
}
