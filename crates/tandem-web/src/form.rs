//! The form `post()` returns: ordered, multi-valued fields, with uploaded files spooled to
//! temporary files (by `multipart/form.rs`, with the `multipart` feature).

use std::io::SeekFrom;

use bytes::Bytes;
use http::HeaderMap;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

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
    pub(crate) fields: Vec<(String, FormValue)>,
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
    /// The form of a urlencoded body, of at most `max_fields` fields (413 past it).
    pub(crate) fn from_urlencoded(body: &[u8], max_fields: usize) -> Result<Self, HttpError> {
        let mut form = Form::default();
        for (name, value) in form_urlencoded::parse(body) {
            form.push(name.into_owned(), FormValue::Text(value.into_owned()), max_fields)?;
        }
        Ok(form)
    }

    /// The 413 of [`Application::max_form_fields`](crate::Application::max_form_fields)
    /// if the form holds `max_fields` already.
    pub(crate) fn check_room(&self, max_fields: usize) -> Result<(), HttpError> {
        if self.fields.len() >= max_fields {
            return Err(HttpError::new(http::StatusCode::PAYLOAD_TOO_LARGE)
                .with_text("413: too many fields in a form"));
        }
        Ok(())
    }

    /// Adds a field, unless the form holds `max_fields` already.
    pub(crate) fn push(
        &mut self,
        name: String,
        value: FormValue,
        max_fields: usize,
    ) -> Result<(), HttpError> {
        self.check_room(max_fields)?;
        self.fields.push((name, value));
        Ok(())
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

impl Form {
    /// A copy for a second `post()`: text and bytes are copied, and each file gets a new
    /// handle on the same temporary file (`dup`, so they share a read position: reading
    /// from the start, as [`FileField::read_to_end`] does, is the safe way).
    pub(crate) fn try_clone(&self) -> std::io::Result<Form> {
        let mut fields = Vec::with_capacity(self.fields.len());
        for (name, value) in &self.fields {
            let value = match value {
                FormValue::Text(text) => FormValue::Text(text.clone()),
                FormValue::Bytes(bytes) => FormValue::Bytes(bytes.clone()),
                FormValue::File(file) => FormValue::File(Box::new(FileField {
                    name: file.name.clone(),
                    filename: file.filename.clone(),
                    content_type: file.content_type.clone(),
                    headers: file.headers.clone(),
                    size: file.size,
                    file: tokio::fs::File::from_std(file.origin.try_clone()?),
                    origin: std::sync::Arc::clone(&file.origin),
                })),
            };
            fields.push((name.clone(), value));
        }
        Ok(Form { fields })
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
    pub(crate) name: String,
    pub(crate) filename: String,
    pub(crate) content_type: String,
    pub(crate) headers: HeaderMap,
    pub(crate) size: u64,
    pub(crate) file: tokio::fs::File,
    /// A handle on the same temporary file, from which a cached form's later copies get
    /// theirs (see [`Form::try_clone`]).
    pub(crate) origin: std::sync::Arc<std::fs::File>,
}

impl FileField {
    /// The form field's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file name exactly as the client sent it: untrusted, never a path to use as it is
    /// (see `docs/security.md`, G78).
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
