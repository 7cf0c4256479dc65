//! Integration tests of `tandem-templates`: a Tandem server on 127.0.0.1 rendering
//! templates from a folder and from the binary, driven by Tandem's client.

mod render;
