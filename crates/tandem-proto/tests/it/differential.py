"""aiohttp's verdict on raw requests, for tests/it/differential.rs.

Reads one hex-encoded input per line on stdin. For each, feeds the bytes in reads of 64 KiB to
aiohttp's request parsers, the C one (llhttp, `HttpRequestParserC`) and the pure-Python one
(`HttpRequestParserPy`), built as `web_protocol.RequestHandler` builds them, then signals
EOF. Prints one line per parser:

    <c|py> <accept|reject> <error class or -> <message count> <method:path:body>...

where method, path and body are hex. A request is rejected if the parser raises, or if a
body it dispatched ends with an exception (aiohttp reports body errors on the payload).
"""

import asyncio
import sys

from aiohttp import http_parser
from aiohttp.streams import EMPTY_PAYLOAD


class Protocol:
    """The connection a StreamReader pauses when its buffer fills. Nothing reads the
    buffers here, so pausing is a no-op. (A `unittest.mock.Mock` would record every call,
    which made a body of a million one-byte chunks take minutes.)"""

    connected = True
    _reading_paused = False

    def pause_reading(self, *args, **kwargs):
        pass

    def resume_reading(self, *args, **kwargs):
        pass


# aiohttp's default `read_bufsize`: the most one read from the transport hands the parser.
# (Fed larger inputs in one call, the pure-Python parser slices its buffer once per chunk,
# and a million one-byte chunks take minutes.)
READ_SIZE = 2**16

PARSERS = [("c", http_parser.HttpRequestParserC), ("py", http_parser.HttpRequestParserPy)]


def verdict(parser_class, loop, data):
    parser = parser_class(
        Protocol(),
        loop,
        2**16,
        max_line_size=8190,
        max_field_size=8190,
        max_headers=128,
        payload_exception=None,
        auto_decompress=False,
    )
    messages = []
    error = None
    try:
        for start in range(0, len(data), READ_SIZE):
            found, _upgraded, _tail = parser.feed_data(data[start : start + READ_SIZE])
            messages.extend(found)
        parser.feed_eof()
    except Exception as exc:  # every parser error is a 400 and a close in aiohttp
        error = type(exc).__name__
    shown = []
    for message, payload in messages:
        body = b""
        if payload is not EMPTY_PAYLOAD:
            if payload.exception() is not None and error is None:
                error = type(payload.exception()).__name__
            try:
                body = payload.read_nowait()
            except Exception:
                pass
        fields = (message.method.encode(), message.path.encode("utf-8", "surrogateescape"), body)
        shown.append(":".join(f.hex() for f in fields))
    status = "reject" if error else "accept"
    return f"{status} {error or '-'} {len(shown)} {' '.join(shown)}".rstrip()


def main():
    loop = asyncio.new_event_loop()
    for line in sys.stdin:
        data = bytes.fromhex(line.strip())
        for name, parser_class in PARSERS:
            print(name, verdict(parser_class, loop, data), flush=False)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
