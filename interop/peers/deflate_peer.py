"""A Python `websockets` peer with permessage-deflate on, for tether's
interop tests (interop/tests/deflate.rs).

Usage: python deflate_peer.py server
       python deflate_peer.py client <url> <seed> <count>

Compression is websockets' default (`compression="deflate"`: 12-bit windows
both ways, memLevel 5), so a server answers tether's offer with
`server_max_window_bits=12; client_max_window_bits=12`.

server: listens on an ephemeral port of 127.0.0.1 and echoes every message
as it came. Reports on stdout, one a line:

    listening <port>
    extensions <Sec-WebSocket-Extensions of its answer, or "none">
    close code=<code> messages=<n> text=<n> binary=<n> bytes=<n> crc=<crc32>
          clean=<true|false> reason=<reason>

client: sends <count> messages one at a time (binary and text, random and
compressible, random sizes up to 256 KiB from a seeded generator, edge sizes
first), checks each echo byte for byte and by type, then closes with 1000
"done". Reports `extensions <header>` and then

    done messages=<n> text=<n> binary=<n> bytes=<n> crc=<crc32> clean=<true|false>
         code=<close code received> reason=<close reason received>

or `mismatch <index> <details>` / `error <details>` (exit status 1).
`crc` is zlib's CRC-32 over the payloads, in order. The process exits when
stdin ends, so a test that dies leaves no peer behind.
"""

import asyncio
import random
import sys
import zlib

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

EDGE_SIZES = [0, 1, 125, 126, 127, 65535, 65536]
MAX = 1 << 18
ALPHABET = "abcdefghijklmnopqrstuvwxyz 0123456789\u00e9\u00df\u20ac\u4e2d\U0001f600"
WORDS = ["alpha", "beta", "gamma", "delta", "\u00e9t\u00e9", "\u20ac", '{"id":', "},", "\n"]


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def clean(ws):
    """Both Close frames exchanged (RFC 6455 section 7.1.4)."""
    p = ws.protocol
    return str(p.close_sent is not None and p.close_rcvd is not None).lower()


def extensions(ws):
    return ws.response.headers.get("Sec-WebSocket-Extensions") or "none"


def messages(seed, count):
    """Four kinds in turn: random bytes, random text, compressible bytes,
    compressible text."""
    rng = random.Random(seed)
    for i in range(count):
        size = EDGE_SIZES[i // 4] if i < 4 * len(EDGE_SIZES) else min(MAX, int(2 ** rng.uniform(0, 18)))
        kind = i % 4
        if kind == 0:
            yield rng.randbytes(size)
        elif kind == 1:
            yield "".join(rng.choices(ALPHABET, k=size // 2))
        else:
            parts = []
            n = 0
            while n < size:
                w = rng.choice(WORDS) + " "
                parts.append(w)
                n += len(w.encode("utf-8"))
            text = "".join(parts)
            yield text.encode("utf-8") if kind == 2 else text


async def echo(ws):
    say(f"extensions {extensions(ws)}")
    messages_ = text = binary = size = 0
    crc = 0
    try:
        async for message in ws:
            messages_ += 1
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
        f"close code={ws.close_code} messages={messages_} text={text} binary={binary}"
        f" bytes={size} crc={crc} clean={clean(ws)} reason={ws.close_reason}"
    )


async def wait_for_stdin_end():
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def server():
    async with serve(echo, "127.0.0.1", 0, max_size=None, compression="deflate") as srv:
        say(f"listening {srv.sockets[0].getsockname()[1]}")
        await wait_for_stdin_end()


async def client(url, seed, count):
    sent = text = binary = size = 0
    crc = 0
    async with connect(url, max_size=None, compression="deflate") as ws:
        say(f"extensions {extensions(ws)}")
        for i, message in enumerate(messages(seed, count)):
            await ws.send(message)
            back = await ws.recv()
            if type(back) is not type(message) or back != message:
                say(
                    f"mismatch {i} sent={type(message).__name__}:{len(message)}"
                    f" got={type(back).__name__}:{len(back)}"
                )
                sys.exit(1)
            data = message.encode("utf-8") if isinstance(message, str) else message
            sent += 1
            if isinstance(message, str):
                text += 1
            else:
                binary += 1
            size += len(data)
            crc = zlib.crc32(data, crc)
        await ws.close(1000, "done")
        say(
            f"done messages={sent} text={text} binary={binary} bytes={size} crc={crc}"
            f" clean={clean(ws)} code={ws.close_code} reason={ws.close_reason}"
        )


if __name__ == "__main__":
    try:
        if sys.argv[1] == "server":
            asyncio.run(server())
        else:
            asyncio.run(client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    except Exception as e:  # report, then fail
        say(f"error {type(e).__name__}: {e}")
        sys.exit(1)
