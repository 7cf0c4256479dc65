"""aiohttp's own server, for the client's interop tests: prints its port, then serves."""
import asyncio
import json
import sys

from aiohttp import web


async def hello(request):
    return web.Response(text="Hello from aiohttp")


async def echo(request):
    body = await request.read()
    return web.json_response({
        "method": request.method,
        "query": request.rel_url.raw_query_string,
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "body": body.decode("utf-8", "replace"),
    })


async def compressed(request):
    resp = web.Response(text="aiohttp " * 5000)
    resp.enable_compression()
    return resp


async def stream(request):
    resp = web.StreamResponse()
    await resp.prepare(request)
    for i in range(100):
        await resp.write(f"line {i}\n".encode())
    await resp.write_eof()
    return resp


async def set_cookie(request):
    resp = web.Response(text="set")
    resp.set_cookie("aio", "cookie value")
    return resp


async def redirect(request):
    raise web.HTTPFound("/echo")


async def main():
    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/compressed", compressed)
    app.router.add_get("/stream", stream)
    app.router.add_get("/cookie", set_cookie)
    app.router.add_route("*", "/redirect", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(port, flush=True)
    # Serve until stdin closes (the test ends or dies).
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


asyncio.run(main())
