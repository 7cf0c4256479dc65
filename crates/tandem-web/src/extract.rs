//! Request data read through serde: the query, a form body and the path variables, each
//! into any `T: Deserialize`, beside the string accessors of [`Request`].
//!
//! Values are parsed from their text (`"7"` into a `u32`, `"true"` into a `bool`), and a
//! name that repeats (`?tag=a&tag=b`) fills a sequence (`Vec<String>`), as an HTML form
//! means it; `serde_html_form` does both, where `serde_urlencoded` has no sequences. A value
//! that does not fit is a 400 whose text names the field (`serde_path_to_error` tracks it).

use serde::de::DeserializeOwned;

use crate::{HttpError, Request};

impl Request {
    /// The query string deserialized into `T` (400 naming the field if it does not fit).
    ///
    /// ```
    /// use serde::Deserialize;
    /// use tandem_web::{HttpError, Request};
    ///
    /// #[derive(Deserialize)]
    /// struct Search {
    ///     q: String,
    ///     #[serde(default)]
    ///     tag: Vec<String>,
    ///     page: Option<u32>,
    /// }
    ///
    /// async fn search(req: Request) -> Result<String, HttpError> {
    ///     // `?q=rust&tag=web&tag=async&page=2`
    ///     let search: Search = req.query_as()?;
    ///     Ok(format!("{} {:?} {}", search.q, search.tag, search.page.unwrap_or(1)))
    /// }
    /// ```
    pub fn query_as<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        from_urlencoded(self.query_string().as_bytes(), "query parameter")
    }

    /// The form in the body deserialized into `T`: the text fields of what
    /// [`post`](Self::post) reads, urlencoded or multipart (files are left out). A value
    /// that does not fit is a 400 naming the field; the body limits are `post`'s.
    pub async fn form_as<T: DeserializeOwned>(&mut self) -> Result<T, HttpError> {
        let form = self.post().await?;
        let mut encoded = form_urlencoded::Serializer::new(String::new());
        for (name, value) in form.iter() {
            if let Some(text) = value.as_text() {
                encoded.append_pair(name, text);
            }
        }
        from_urlencoded(encoded.finish().as_bytes(), "form field")
    }

    /// The route's path variables deserialized into `T`, a struct (or map) with a field per
    /// variable: `/items/{id}/{slug}` into `struct Item { id: u64, slug: String }`. A value
    /// that does not fit is a 400 naming the variable.
    pub fn match_info_as<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        let mut encoded = form_urlencoded::Serializer::new(String::new());
        encoded.extend_pairs(self.match_info_pairs());
        from_urlencoded(encoded.finish().as_bytes(), "path variable")
    }
}

/// Deserializes a urlencoded text into `T`; the error is a 400 that names the field that
/// failed, described as `what` ("query parameter").
fn from_urlencoded<T: DeserializeOwned>(encoded: &[u8], what: &str) -> Result<T, HttpError> {
    let deserializer = serde_html_form::Deserializer::from_bytes(encoded);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let text = if path == "." {
            // No field to name: the error's own text does ("missing field `q`").
            format!("400: invalid {what}s: {}", err.inner())
        } else {
            format!("400: invalid {what} `{path}`: {}", err.inner())
        };
        HttpError::bad_request().with_text(text)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Search {
        q: String,
        #[serde(default)]
        tag: Vec<String>,
        page: Option<u32>,
    }

    #[test]
    fn repeated_names_fill_sequences_and_numbers_parse() {
        let search: Search = from_urlencoded(b"q=a+b&tag=x&tag=y%26z&page=3", "q").unwrap();
        assert_eq!(
            search,
            Search { q: "a b".into(), tag: vec!["x".into(), "y&z".into()], page: Some(3) }
        );
        let one: Search = from_urlencoded(b"q=a&tag=only", "q").unwrap();
        assert_eq!(one.tag, ["only"]);
        let map: HashMap<String, String> = from_urlencoded(b"a=1&b=2", "q").unwrap();
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn a_bad_value_is_a_400_naming_the_field() {
        let err = from_urlencoded::<Search>(b"q=a&page=two", "query parameter").unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.text().contains("`page`"), "{}", err.text());
        let err = from_urlencoded::<Search>(b"page=2", "query parameter").unwrap_err();
        assert!(err.text().contains("missing field `q`"), "{}", err.text());
    }
}
