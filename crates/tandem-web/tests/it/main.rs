//! Integration tests of `tandem-web`, in one binary so they link once. Every test talks
//! to a real server on 127.0.0.1.

mod access_log;
mod access_log_format;
mod app_context;
#[cfg(feature = "compression")]
mod compression;
mod cors;
mod error_render;
mod errors;
mod expect;
mod file_response;
mod files_support;
mod h2;
mod h2_malformed;
mod handler_cancellation;
#[cfg(feature = "compression")]
mod inflate;
mod interop;
mod lifecycle;
mod middleware;
mod multipart;
mod request_api;
mod request_meta;
mod responses;
mod routing;
mod routing_more;
mod run_options;
mod running;
mod service;
mod shutdown;
mod smuggling;
mod static_files;
mod stream_response;
mod support;
#[cfg(feature = "tls")]
mod tls;
mod upgrade;
mod wire;
