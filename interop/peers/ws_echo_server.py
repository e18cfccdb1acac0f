"""A Python `websockets` echo server for tether's interop tests.

Usage: python ws_echo_server.py

Listens on an ephemeral port of 127.0.0.1 and echoes every message as it
came (text as text, binary as binary). Reports on stdout, one a line:

    listening <port>
    close code=<code> messages=<n> text=<n> binary=<n> bytes=<n> crc=<crc32>
          clean=<true|false> reason=<reason>

`crc` is zlib's CRC-32 over the payloads received, in order; `clean` says
whether both Close frames were exchanged. No size limit
(`max_size=None`); the default keep-alive (a Ping every 20 s) stays on.
The process exits when stdin ends, so a test that dies leaves no server.
"""

import asyncio
import sys
import zlib

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


def clean(ws):
    """Both Close frames exchanged (RFC 6455 section 7.1.4)."""
    p = ws.protocol
    return str(p.close_sent is not None and p.close_rcvd is not None).lower()


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def echo(ws):
    messages = text = binary = size = 0
    crc = 0
    try:
        async for message in ws:
            messages += 1
            if isinstance(message, str):
                text += 1
                data = message.encode("utf-8")
            else:
                binary += 1
                data = message
            size += len(data)
            crc = zlib.crc32(data, crc)
            await ws.send(message)
    except ConnectionClosed:
        pass
    say(
        f"close code={ws.close_code} messages={messages} text={text} binary={binary}"
        f" bytes={size} crc={crc} clean={clean(ws)} reason={ws.close_reason}"
    )


async def wait_for_stdin_end():
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def main():
    async with serve(echo, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        say(f"listening {port}")
        await wait_for_stdin_end()


if __name__ == "__main__":
    asyncio.run(main())
