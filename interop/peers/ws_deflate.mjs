// A Node `ws` peer with permessage-deflate on, for tether's interop tests
// (interop/tests/deflate.rs).
//
// Usage: node ws_deflate.mjs server
//        node ws_deflate.mjs client <url> <seed> <count>
//
// Compression: `perMessageDeflate` with `threshold: 0` (every message is
// compressed; ws's default threshold is 1024 bytes), other settings ws's
// defaults (15-bit windows, context takeover unless the peer asks).
//
// server: listens on an ephemeral port of 127.0.0.1 and echoes every message
// as it came. Reports on stdout, one a line:
//
//   listening <port>
//   extensions <Sec-WebSocket-Extensions of its answer, or "none">
//   close code=<code> messages=<n> text=<n> binary=<n> bytes=<n> crc=<crc32>
//         reason=<reason>
//
// client: sends <count> messages one at a time (binary and text, random and
// compressible, random sizes up to 256 KiB from a seeded generator, edge
// sizes first), checks each echo byte for byte and by type, then closes with
// 1000 "done". Reports `extensions <the server's answer, or "none">`, then
//
//   done messages=<n> text=<n> binary=<n> bytes=<n> crc=<crc32>
//        code=<close code received> reason=<close reason received>
//
// or `mismatch <index> <details>` / `error <details>` (exit status 1).
// `crc` is the CRC-32 of zlib over the payloads, in order. The process
// exits when stdin ends, so a test that dies leaves no peer behind.

import WebSocket, { WebSocketServer } from 'ws';
import { Tally, messages } from './payload.mjs';

const say = (line) => process.stdout.write(line + '\n');
const deflate = { threshold: 0 };

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

function server() {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflate });
  wss.on('listening', () => say(`listening ${wss.address().port}`));
  // the answer's header, from the response ws is about to write
  let answer = 'none';
  wss.on('headers', (headers) => {
    const line = headers.find((h) => /^sec-websocket-extensions:/i.test(h));
    answer = line ? line.replace(/^[^:]*:\s*/, '') : 'none';
  });
  wss.on('connection', (ws) => {
    say(`extensions ${answer}`);
    const tally = new Tally();
    ws.on('message', (data, isBinary) => {
      tally.add(data, isBinary);
      ws.send(isBinary ? data : data.toString('utf8'), { binary: isBinary });
    });
    ws.on('close', (code, reason) =>
      say(`close code=${code} ${tally} reason=${reason.toString('utf8')}`),
    );
    ws.on('error', (e) => say(`error ${e.message}`));
  });
}

function client(url, seed, count) {
  const ws = new WebSocket(url, { perMessageDeflate: deflate });
  const tally = new Tally();
  const all = messages(seed, count);
  let index = -1;
  let current = null;
  const next = () => {
    const item = all.next();
    if (item.done) {
      ws.close(1000, 'done');
      return;
    }
    index++;
    current = item.value;
    const [data, isBinary] = current;
    ws.send(isBinary ? data : data.toString('utf8'), { binary: isBinary });
  };
  ws.on('upgrade', (res) => {
    say(`extensions ${res.headers['sec-websocket-extensions'] || 'none'}`);
  });
  ws.on('open', next);
  ws.on('message', (back, isBinary) => {
    const [data, wasBinary] = current;
    if (isBinary !== wasBinary || !data.equals(back)) {
      say(`mismatch ${index} sent=${wasBinary}:${data.length} got=${isBinary}:${back.length}`);
      process.exit(1);
    }
    tally.add(data, wasBinary);
    next();
  });
  ws.on('close', (code, reason) => {
    say(`done ${tally} code=${code} reason=${reason.toString('utf8')}`);
    process.exit(0);
  });
  ws.on('error', (e) => {
    say(`error ${e.message}`);
    process.exit(1);
  });
}

if (process.argv[2] === 'server') server();
else client(process.argv[3], Number(process.argv[4]), Number(process.argv[5]));
