#!/usr/bin/env python3
"""Writes the fuzz seed corpora (fuzz/seeds/<target>/) from the project's
test vectors: the frame examples of RFC 6455 section 5.7, the handshake of
section 1.3, the captured handshakes in crates/tether-handshake/tests/fixtures,
and whole-connection scripts (close handshakes, fragmentation, pings, keep-alive
timeouts, short writes) in the `connection` target's input format.

Run from anywhere: python3 fuzz/seeds/generate.py. The output is committed;
rerun after changing a target's input format. Standard library only.
"""

import os
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "crates", "tether-handshake", "tests", "fixtures")

# RFC 6455 section 5.7 uses this masking key.
RFC_KEY = bytes([0x37, 0xFA, 0x21, 0x3D])


def frame(opcode, payload, fin=True, mask=None, rsv=0):
    """One frame, minimal length form; masked when `mask` is a 4-byte key."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes([first, mbit | n])
    elif n < 65536:
        head = bytes([first, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([first, mbit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


def close_payload(code, reason=b""):
    return struct.pack(">H", code) + reason


# --- frame_decode: (server: bool, allow_rsv1: bool, chunk: u8, data: rest) ---

def frame_seeds():
    hello = b"Hello"
    seeds = {
        # RFC 6455 5.7: a single-frame unmasked text message (server -> client)
        "rfc5_7_unmasked_text": (False, False, 255, frame(1, hello)),
        # a single-frame masked text message (client -> server)
        "rfc5_7_masked_text": (True, False, 255, frame(1, hello, mask=RFC_KEY)),
        # a fragmented unmasked text message
        "rfc5_7_fragmented": (False, False, 3, frame(1, b"Hel", fin=False) + frame(0, b"lo")),
        # unmasked Ping, masked Pong
        "rfc5_7_ping": (False, False, 255, frame(9, hello)),
        "rfc5_7_masked_pong": (True, False, 1, frame(10, hello, mask=RFC_KEY)),
        # 256 bytes binary in one unmasked frame (16-bit length)
        "rfc5_7_256_binary": (False, False, 64, frame(2, bytes(256))),
        # 64 KiB binary (64-bit length): its header alone, over the 4096 limit
        "rfc5_7_64k_binary_header": (False, False, 255, bytes([0x82, 0x7F]) + struct.pack(">Q", 65536)),
        "close_1000_masked": (True, False, 2, frame(8, close_payload(1000, b"bye"), mask=RFC_KEY)),
        "rsv1_allowed": (True, True, 255, frame(1, hello, mask=RFC_KEY, rsv=4)),
        "rsv1_refused": (True, False, 255, frame(1, hello, mask=RFC_KEY, rsv=4)),
        "reserved_opcode": (True, False, 255, frame(3, hello, mask=RFC_KEY)),
        "control_too_long": (True, False, 255, frame(9, bytes(126), mask=RFC_KEY)),
        "control_fragmented": (True, False, 255, frame(9, hello, fin=False, mask=RFC_KEY)),
        "unmasked_to_server": (True, False, 255, frame(2, hello)),
        "masked_to_client": (False, False, 255, frame(2, hello, mask=RFC_KEY)),
        "many_small": (True, False, 7, b"".join(frame(2, bytes([i]) * i, mask=RFC_KEY) for i in range(40))),
        "non_minimal_length": (False, False, 255, bytes([0x82, 0x7E, 0x00, 0x05]) + hello),
    }
    out = {}
    for name, (server, rsv1, chunk, data) in seeds.items():
        out[name] = bytes([int(server), int(rsv1), chunk]) + data
    return out


# --- handshake_request: (max_head: u16, max_headers: u8, chunk: u8, data: rest) ---

RFC_1_3_REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)

RFC_1_3_RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
)


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def request_seeds():
    # 0x0fff: a 4095-byte head limit; 79 headers; pieces of 255 or 1 bytes
    prefix = struct.pack("<H", 0x0FFF) + bytes([79])
    bodies = {"rfc1_3": RFC_1_3_REQUEST}
    for name in sorted(os.listdir(FIXTURES)):
        if name.startswith("request-") or name.startswith("tls-"):
            bodies[name.rsplit(".", 1)[0]] = fixture(name)
    bodies["deflate_offers"] = RFC_1_3_REQUEST.replace(
        b"\r\n\r\n",
        b"\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, "
        b"permessage-deflate; server_no_context_takeover; server_max_window_bits=10\r\n\r\n",
    )
    bodies["post"] = RFC_1_3_REQUEST.replace(b"GET", b"POST", 1)
    bodies["version_8"] = RFC_1_3_REQUEST.replace(b"Version: 13", b"Version: 8")
    out = {}
    for name, body in bodies.items():
        out[name] = prefix + bytes([255]) + body
        out[name + "_bytewise"] = prefix + bytes([1]) + body
    return out


# --- handshake_response: (max_head: u16, max_headers: u8, chunk: u8, offer: bool, data: rest) ---

def response_seeds():
    prefix = struct.pack("<H", 0x0FFF) + bytes([79])
    bodies = {
        "rfc1_3": (False, RFC_1_3_RESPONSE + b"\r\n"),
        "rfc1_3_chat": (True, RFC_1_3_RESPONSE + b"Sec-WebSocket-Protocol: chat\r\n\r\n"),
        "rfc1_3_deflate": (
            True,
            RFC_1_3_RESPONSE + b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10\r\n\r\n",
        ),
        "rfc1_3_with_frame": (False, RFC_1_3_RESPONSE + b"\r\n" + frame(1, b"Hello")),
        "http_200": (False, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
        "redirect": (False, b"HTTP/1.1 302 Found\r\nLocation: wss://example.com/\r\n\r\n"),
        "tls_alert": (False, bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])),
    }
    for name in sorted(os.listdir(FIXTURES)):
        if name.startswith("response-"):
            bodies[name.rsplit(".", 1)[0]] = (False, fixture(name))
    out = {}
    for name, (offer, body) in bodies.items():
        out[name] = prefix + bytes([255, int(offer)]) + body
        out[name + "_bytewise"] = prefix + bytes([1, int(offer)]) + body
    return out


# --- connection: the hand-written format of fuzz_targets/connection.rs ---

RECEIVE, EOF, SEND_TEXT, SEND_BINARY, FRAGMENT, PING, PONG, CLOSE, REPLY_CLOSE, ABORT, ADVANCE, DRAIN, DRAIN_SOME, SET_READING = range(14)


def b16(n):
    return struct.pack("<H", n)


def chunk(data):
    assert len(data) < 65536
    return b16(len(data)) + data


def op_receive(data):
    return bytes([RECEIVE]) + chunk(data)


def op_data(tag, data):
    return bytes([tag]) + chunk(data)


def op_fragment(text, fin, data):
    return bytes([FRAGMENT, int(text) | (int(fin) << 1)]) + chunk(data)


def op_close(code, reason=b""):
    return bytes([CLOSE]) + b16(code) + chunk(reason)


def op_advance(ms):
    return bytes([ADVANCE]) + b16(ms)


def op_drain_some(n):
    return bytes([DRAIN_SOME]) + b16(n)


def flags(server, keep_alive=0, auto_pong=True, auto_close_reply=True, deflate=False, server_no_ctx=False, client_no_ctx=False):
    return bytes(
        [
            int(server)
            | (keep_alive << 1)
            | (int(auto_pong) << 3)
            | (int(auto_close_reply) << 4)
            | (int(deflate) << 5)
            | (int(server_no_ctx) << 6)
            | (int(client_no_ctx) << 7)
        ]
    )


def raw_deflate(data):
    """A message compressed as RFC 7692 7.2.1 says: raw deflate, sync flush,
    the trailing 00 00 ff ff removed."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def connection_seeds():
    def incoming(server, opcode, payload, fin=True, rsv=0):
        # what the peer sends: masked towards a server, unmasked towards a client
        return frame(opcode, payload, fin=fin, mask=RFC_KEY if server else None, rsv=rsv)

    seeds = {}
    for server in (True, False):
        role = "server" if server else "client"
        f = flags(server)
        seeds[f"{role}_hello_close"] = (
            f
            + op_receive(incoming(server, 1, b"Hello"))
            + bytes([DRAIN])
            + op_receive(incoming(server, 8, close_payload(1000)))
            + bytes([DRAIN])
        )
        # a fragmented message with a Ping between its fragments, fed in small reads
        wire = incoming(server, 1, b"Hel", fin=False) + incoming(server, 9, b"ping") + incoming(server, 0, b"lo")
        seeds[f"{role}_fragmented_ping"] = f + b"".join(op_receive(wire[i : i + 3]) for i in range(0, len(wire), 3)) + bytes([DRAIN])
        seeds[f"{role}_send_all_kinds"] = (
            f
            + op_data(SEND_TEXT, "héllo ✓".encode())
            + op_data(SEND_BINARY, bytes(range(256)))
            + op_fragment(True, False, b"frag")
            + op_data(PING, b"p")
            + op_fragment(True, True, b"ment")
            + op_data(PONG, b"unsolicited")
            + op_close(1000, b"bye")
            + op_drain_some(5)
            + op_drain_some(100)
            + op_receive(incoming(server, 8, close_payload(1000)))
            + bytes([DRAIN])
        )
        seeds[f"{role}_close_timeout"] = f + op_close(4000, b"app") + bytes([DRAIN]) + op_advance(1500)
        seeds[f"{role}_keepalive_ping_timeout"] = (
            flags(server, keep_alive=2) + op_advance(500) + bytes([DRAIN]) + op_advance(400) + bytes([DRAIN])
        )
        seeds[f"{role}_keepalive_pong"] = flags(server, keep_alive=1) + op_advance(500) + bytes([DRAIN]) + op_advance(500) + bytes([DRAIN])
        seeds[f"{role}_manual_close_reply"] = (
            flags(server, auto_close_reply=False)
            + op_receive(incoming(server, 2, b"data") + incoming(server, 8, close_payload(1001, b"going")))
            + bytes([REPLY_CLOSE, DRAIN])
        )
        seeds[f"{role}_protocol_error_mid_write"] = (
            f
            + op_data(SEND_BINARY, bytes(3000))
            + op_drain_some(10)
            + op_receive(incoming(server, 9, bytes(126)))
            + bytes([DRAIN])
        )
        seeds[f"{role}_bad_utf8_across_frames"] = (
            f + op_receive(incoming(server, 1, b"\xce", fin=False)) + op_receive(incoming(server, 0, b"\xff")) + bytes([DRAIN])
        )
        seeds[f"{role}_eof"] = f + op_receive(incoming(server, 2, b"x")) + bytes([EOF, DRAIN])
        seeds[f"{role}_ping_flood"] = f + b"".join(op_receive(incoming(server, 9, bytes([i]) * 10)) for i in range(50)) + bytes([DRAIN])
        # ABORT takes one byte more: even, an abort; odd, the transport failed
        seeds[f"{role}_abort"] = f + op_data(SEND_TEXT, b"x") + bytes([ABORT, 0, DRAIN])
        # a write failed with a message queued; the peer's Ping and Close
        # read after it; then the end of input
        seeds[f"{role}_transport_failed"] = (
            f
            + op_data(SEND_TEXT, b"x")
            + bytes([ABORT, 1])
            + op_receive(incoming(server, 9, b"ping"))
            + op_receive(incoming(server, 8, b"\x03\xe8"))
            + bytes([EOF, DRAIN])
        )
        # permessage-deflate (RFC 7692 7.2.3): "Hello" compressed, twice
        # sharing the context, a fragmented compressed message, sends, and
        # a bomb inflating past the 8 KiB message limit (1009)
        d = flags(server, deflate=True)
        hello = bytes([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
        seeds[f"{role}_deflate_hello"] = (
            d
            + op_receive(incoming(server, 1, hello, rsv=4))
            + op_receive(incoming(server, 1, bytes([0xF2, 0x00, 0x11, 0x00, 0x00]), rsv=4))
            + op_receive(incoming(server, 1, hello[:3], fin=False, rsv=4) + incoming(server, 0, hello[3:]))
            + op_data(SEND_TEXT, b"Hello Hello Hello Hello")
            + op_data(SEND_BINARY, bytes(300))
            + bytes([DRAIN])
        )
        seeds[f"{role}_deflate_no_context"] = (
            flags(server, deflate=True, server_no_ctx=True, client_no_ctx=True)
            + op_receive(incoming(server, 1, hello, rsv=4))
            + op_receive(incoming(server, 1, hello, rsv=4))
            + op_data(SEND_TEXT, b"Hello Hello Hello Hello")
            + op_data(SEND_TEXT, b"Hello Hello Hello Hello")
            + bytes([DRAIN])
        )
        seeds[f"{role}_deflate_bomb"] = d + op_receive(incoming(server, 2, raw_deflate(bytes(100_000)), rsv=4)) + bytes([DRAIN])
        seeds[f"{role}_deflate_rsv1_on_ping"] = d + op_receive(incoming(server, 9, b"x", rsv=4)) + bytes([DRAIN])
    return seeds


def write(target, seeds):
    d = os.path.join(HERE, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    write("frame_decode", frame_seeds())
    write("handshake_request", request_seeds())
    write("handshake_response", response_seeds())
    write("connection", connection_seeds())
