//! Reading a whole multipart form into a [`Form`], as `post()` does.

use std::{io::SeekFrom, sync::Arc};

use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::{MultipartReader, Part, decode};
use crate::{FileField, Form, FormValue, HttpError};

/// Reads a whole multipart form, as aiohttp's `post()`: parts with a file name go to
/// temporary files as they arrive, others are kept in memory; the reader's limit bounds the
/// total; `max_files` bounds the files (413 past it, before another temporary file is made)
/// and `max_fields` the fields of every kind (413 past it, before the part is read).
/// Nested multipart parts and parts without a name are 400s.
pub(crate) async fn read_form(
    mut reader: MultipartReader,
    (max_files, max_fields): (usize, usize),
) -> Result<Form, HttpError> {
    let mut form = Form::default();
    let mut files = 0;
    while let Some(part) = reader.next_part().await? {
        form.check_room(max_fields)?;
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
            files += 1;
            if files > max_files {
                return Err(HttpError::new(http::StatusCode::PAYLOAD_TOO_LARGE)
                    .with_text("413: too many files in a form"));
            }
            let headers = part.headers().clone();
            let (file, origin, size) = spool(part).await?;
            FormValue::File(Box::new(FileField {
                name: name.clone(),
                filename,
                content_type: content_type.unwrap_or_else(|| "application/octet-stream".to_owned()),
                headers,
                size,
                file,
                origin,
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
        form.push(name, value, max_fields)?;
    }
    Ok(form)
}

/// Writes a part to an anonymous temporary file (created off the runtime's threads) as it
/// arrives; returns the file, rewound, a second handle on it, and its size.
async fn spool(
    mut part: Part<'_>,
) -> Result<(tokio::fs::File, Arc<std::fs::File>, u64), HttpError> {
    let file = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(|_| HttpError::internal_server_error())?
        .map_err(|e| io_error(&e))?;
    let origin = Arc::new(file.try_clone().map_err(|e| io_error(&e))?);
    let mut file = tokio::fs::File::from_std(file);
    let mut size = 0u64;
    while let Some(chunk) = part.chunk().await? {
        size += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(|e| io_error(&e))?;
    }
    file.flush().await.map_err(|e| io_error(&e))?;
    file.seek(SeekFrom::Start(0)).await.map_err(|e| io_error(&e))?;
    Ok((file, origin, size))
}

fn io_error(err: &std::io::Error) -> HttpError {
    tracing::error!(target: "tandem::server", error = %err, "spooling an upload failed");
    HttpError::internal_server_error()
}
