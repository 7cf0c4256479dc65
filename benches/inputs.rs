//! The request heads both parse benches use: `proto` (criterion, time) and `proto_count`
//! (instruction counts under callgrind).

/// What TechEmpower's wrk script sends for the plaintext test.
pub(crate) const TECHEMPOWER: &[u8] = b"GET /plaintext HTTP/1.1\r\n\
Host: localhost\r\n\
Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n\
Connection: keep-alive\r\n\
\r\n";

/// What plain `wrk` sends, as `cargo xtask bench server` runs it: a request line and Host.
pub(crate) const WRK: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

/// A Chromium navigation with its client hints and a session cookie: about 700 bytes.
pub(crate) const BROWSER: &[u8] = b"GET /articles/2026/12/tandem-release?ref=home HTTP/1.1\r\n\
Host: www.example.com\r\n\
Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"156\", \"Not_A Brand\";v=\"24\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-User: ?1\r\n\
Sec-Fetch-Dest: document\r\n\
Referer: https://www.example.com/\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-GB,en;q=0.9,fr;q=0.8\r\n\
Cookie: session=6f1c2a9e4b7d4e0f8a3b5c7d9e1f2a4b; theme=dark\r\n\
\r\n";

pub(crate) fn thirty_two_headers() -> Vec<u8> {
    let mut head =
        b"POST /api/v1/items HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 0\r\n".to_vec();
    for i in 0..30 {
        head.extend_from_slice(
            format!("X-Custom-Header-{i:02}: value-{i:02}-abcdefghij\r\n").as_bytes(),
        );
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Every input, by name.
pub(crate) fn all() -> [(&'static str, Vec<u8>); 4] {
    [
        ("wrk", WRK.to_vec()),
        ("techempower", TECHEMPOWER.to_vec()),
        ("browser", BROWSER.to_vec()),
        ("32_headers", thirty_two_headers()),
    ]
}
