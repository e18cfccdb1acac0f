"""Python `websockets` echo server with permessage-deflate on, for the
compressed echo benchmark (benches/src/bin/loadgen.rs, `--deflate-libs
websockets`).

Usage: taskset -c 0 interop/.venv/bin/python benches/peers/websockets_echo.py

`websockets` comes from the interop peers' venv (`bash interop/install.sh`,
websockets 15.0.1 pinned in interop/requirements.txt), asyncio API, one
event loop on one thread.

Compression: websockets' default (`compression="deflate"`): zlib level 6
(zlib's default), 12-bit windows both ways (`server_max_window_bits=12;
client_max_window_bits=12` in its answer), memLevel 5, context takeover
unless the client asks otherwise, every message compressed (no threshold).
Other settings are the defaults too (max_size 1 MiB, keep-alive pings every
20 s).

Prints `listening 127.0.0.1:<port>` on stdout once ready, echoes every
message as it came (the handler of websockets' own echo example), and exits
when its stdin ends, so a load generator that dies leaves no server behind.
"""

import asyncio
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass


async def main():
    async with serve(echo, "127.0.0.1", 0) as server:
        host, port = server.sockets[0].getsockname()[:2]
        sys.stdout.write(f"listening {host}:{port}\n")
        sys.stdout.flush()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
