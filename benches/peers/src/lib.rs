//! What both peer servers share: the `--port P` flag and the JSON body type.

use serde::Serialize;

/// The TechEmpower JSON test's body, serialized anew for every request.
#[derive(Serialize)]
pub struct Message {
    /// Always `Hello, World!`.
    pub message: &'static str,
}

/// The body of `GET /plaintext`.
pub const PLAINTEXT: &[u8] = b"Hello, World!";

/// Parses `--port P` (or `--port=P`) from the command line; exits with a
/// usage message on anything else.
#[must_use]
pub fn port_from_args() -> u16 {
    let mut args = std::env::args().skip(1);
    let mut port = None;
    while let Some(arg) = args.next() {
        let value = match arg.split_once('=') {
            Some(("--port", v)) => Some(v.to_owned()),
            None if arg == "--port" => args.next(),
            _ => None,
        };
        match value.and_then(|v| v.parse().ok()) {
            Some(p) => port = Some(p),
            None => usage(&arg),
        }
    }
    port.unwrap_or_else(|| usage("(missing --port)"))
}

fn usage(bad: &str) -> ! {
    let name = std::env::args().next().unwrap_or_default();
    eprintln!("usage: {name} --port P   (bad argument: {bad})");
    std::process::exit(2)
}
