//! Integration tests of `tandem-session`: a Tandem server with the session middleware on
//! 127.0.0.1, driven by Tandem's client, with the cookie storage and with a real
//! redis-server the harness starts on a free loopback port.

mod cookie;
mod failing_storage;
mod redis;
mod redis_server;
mod security;
mod support;
