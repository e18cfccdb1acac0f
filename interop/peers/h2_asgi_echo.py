"""An ASGI echo app served by hypercorn: a third-party WebSocket server
over HTTP/2 (RFC 8441) for tether's interop tests.

Usage: python h2_asgi_echo.py

Serves hypercorn on an ephemeral port of 127.0.0.1, cleartext (HTTP/2 by
prior knowledge, or HTTP/1.1). Every WebSocket echoes each message as it
came (text as text, binary as binary); hypercorn itself negotiates
permessage-deflate when the client offers it. Reports on stdout, one a line:

    listening <port>
    http <version>             (the HTTP version of each WebSocket's request)
    close code=<code> messages=<n> text=<n> binary=<n> bytes=<n> crc=<crc32>

`crc` is zlib's CRC-32 over the payloads received, in order. The process
exits when stdin ends, so a test that dies leaves no server.
"""

import asyncio
import socket
import sys
import zlib

from hypercorn.asyncio import serve
from hypercorn.config import Config


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        return
    say(f"http {scope.get('http_version')}")
    messages = text = binary = size = 0
    crc = 0
    while True:
        event = await receive()
        kind = event["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif kind == "websocket.receive":
            messages += 1
            if event.get("text") is not None:
                text += 1
                data = event["text"].encode("utf-8")
                await send({"type": "websocket.send", "text": event["text"]})
            else:
                binary += 1
                data = event["bytes"]
                await send({"type": "websocket.send", "bytes": data})
            size += len(data)
            crc = zlib.crc32(data, crc)
        elif kind == "websocket.disconnect":
            say(
                f"close code={event.get('code')} messages={messages} text={text} "
                f"binary={binary} bytes={size} crc={crc}"
            )
            return


async def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.set_inheritable(True)
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.websocket_max_message_size = 64 * 1024 * 1024
    config.h2_max_inbound_frame_size = 2**24 - 1
    config.loglevel = "WARNING"
    config.accesslog = None
    shutdown = asyncio.Event()
    say(f"listening {sock.getsockname()[1]}")
    loop = asyncio.get_running_loop()

    def stdin_ended():
        sys.stdin.read()
        loop.call_soon_threadsafe(shutdown.set)

    loop.run_in_executor(None, stdin_ended)
    await serve(app, config, shutdown_trigger=shutdown.wait)


if __name__ == "__main__":
    asyncio.run(main())
