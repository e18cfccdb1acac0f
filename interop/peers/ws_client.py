"""A Python `websockets` client for tether's interop tests.

Usage: python ws_client.py <url> <seed> <count>

Sends <count> messages (text and binary, random sizes up to 1 MiB from a
seeded generator, edge sizes first) one at a time to an echo server, checks
each echo byte for byte and by type, then closes with 1000 "done".
Reports on stdout:

    done messages=<n> text=<n> binary=<n> bytes=<n> crc=<crc32> clean=<true|false>
         code=<close code received> reason=<close reason received>

or `mismatch <index> <details>` / `error <details>` (and exit status 1).
`crc` is zlib's CRC-32 over the payloads sent, in order; `clean` says
whether both Close frames were exchanged.
"""

import asyncio
import random
import sys
import zlib

from websockets.asyncio.client import connect

EDGE_SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20]
ALPHABET = "abcdefghijklmnopqrstuvwxyz 0123456789\u00e9\u00df\u20ac\u4e2d\U0001f600"
MAX = 1 << 20


def clean(ws):
    """Both Close frames exchanged (RFC 6455 section 7.1.4)."""
    p = ws.protocol
    return str(p.close_sent is not None and p.close_rcvd is not None).lower()


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def messages(seed, count):
    rng = random.Random(seed)
    pool = "".join(rng.choices(ALPHABET, k=MAX // 4 + MAX // 4))
    for i in range(count):
        size = EDGE_SIZES[i // 2] if i < 2 * len(EDGE_SIZES) else min(MAX, int(2 ** rng.uniform(0, 20)))
        if i % 2 == 0:
            yield rng.randbytes(size)
        else:
            chars = min(size, MAX // 4)
            start = rng.randrange(0, len(pool) - chars + 1)
            yield pool[start : start + chars]


async def main(url, seed, count):
    sent = text = binary = size = 0
    crc = 0
    async with connect(url, max_size=None) as ws:
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
        asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    except Exception as e:  # report, then fail
        say(f"error {type(e).__name__}: {e}")
        sys.exit(1)
