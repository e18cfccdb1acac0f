// Node's built-in http2 as a WebSocket client over HTTP/2 (RFC 8441), for
// tether's interop tests (interop/tests/http2.rs).
//
// Usage: node h2_node_client.mjs <url> <seed> <count> [deflate]
//
// Opens one HTTP/2 session to <url> (cleartext, prior knowledge), waits for
// the server's SETTINGS and checks that they enable extended CONNECT
// (SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC 8441 section 3), then opens one
// stream with `:method CONNECT`, `:protocol websocket`, `:scheme`, `:path`,
// `:authority` and `sec-websocket-version: 13` (RFC 8441 section 4), and
// with `deflate` an offer of permessage-deflate (ws's own offer). On a 200
// the stream is handed to `ws` as its socket in the client role (masking
// its frames), with the negotiated permessage-deflate installed: ws frames
// and compresses, http2 carries. ws has no public way to run a client over
// a socket it did not connect itself, so this sets the two fields its own
// client sets after an HTTP/1.1 handshake (`_isServer`, `_extensions`;
// ws 8.18.3 as pinned in package-lock.json).
//
// Sends <count> messages one at a time (payload.mjs: binary and text,
// random and compressible, edge sizes first), checks each echo byte for
// byte and by type, then closes with 1000 "done". Reports on stdout:
//
//   extensions <the server's sec-websocket-extensions, or "none">
//   done messages=<n> text=<n> binary=<n> bytes=<n> crc=<crc32>
//        code=<close code received> reason=<close reason received>
//
// or `mismatch <index> <details>` / `error <details>` (exit status 1). The
// process exits when stdin ends, so a test that dies leaves no peer behind.

import http2 from 'node:http2';
import { createRequire } from 'node:module';
import { WebSocket } from 'ws';
import { Tally, messages } from './payload.mjs';

// ws's extension parser and permessage-deflate are not exported by name
// (its package.json `exports`), so they are loaded by path
const require = createRequire(import.meta.url);
const wsLib = new URL('../node_modules/ws/lib/', import.meta.url).pathname;
const PerMessageDeflate = require(`${wsLib}permessage-deflate.js`);
const { format, parse } = require(`${wsLib}extension.js`);

const say = (line) => process.stdout.write(line + '\n');
const fail = (line) => {
  say(line);
  process.exit(1);
};
const MAX_PAYLOAD = 64 * 1024 * 1024;

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

const [url, seed, count, mode] = process.argv.slice(2);
const target = new URL(url);
const deflate =
  mode === 'deflate' ? new PerMessageDeflate({ threshold: 0 }, false, MAX_PAYLOAD) : null;

// windows as large as tether's (Node's default is 64 KiB less one byte,
// RFC 9113's initial value, for the stream and the whole session)
const session = http2.connect(`http://${target.host}`, {
  settings: { initialWindowSize: 256 * 1024 },
});
session.on('error', (e) => fail(`error session: ${e.message}`));
session.on('connect', () => session.setLocalWindowSize(16 * 1024 * 1024));
session.once('remoteSettings', (settings) => {
  if (!settings.enableConnectProtocol) {
    fail('error the server did not enable extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL)');
  }
  const headers = {
    ':method': 'CONNECT',
    ':protocol': 'websocket',
    ':scheme': 'http',
    ':path': target.pathname + target.search,
    ':authority': target.host,
    'sec-websocket-version': '13',
  };
  if (deflate) {
    headers['sec-websocket-extensions'] = format({
      [PerMessageDeflate.extensionName]: deflate.offer(),
    });
  }
  const stream = session.request(headers, { endStream: false });
  stream.on('error', (e) => fail(`error stream: ${e.message}`));
  stream.once('response', (response) => {
    if (response[':status'] !== 200) fail(`error status ${response[':status']}`);
    const answer = response['sec-websocket-extensions'];
    say(`extensions ${answer || 'none'}`);
    const ws = new WebSocket(null, undefined, {});
    ws._isServer = false;
    if (answer) {
      if (!deflate) fail(`error extensions ${answer} answered, none offered`);
      const offered = parse(answer);
      deflate.accept(offered[PerMessageDeflate.extensionName]);
      ws._extensions[PerMessageDeflate.extensionName] = deflate;
    }
    // an HTTP/2 stream has no Nagle to turn off
    stream.setNoDelay = () => {};
    ws.setSocket(stream, Buffer.alloc(0), { maxPayload: MAX_PAYLOAD });
    run(ws);
  });
});

function run(ws) {
  const tally = new Tally();
  const all = messages(Number(seed), Number(count));
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
  ws.on('message', (back, isBinary) => {
    const [data, wasBinary] = current;
    if (isBinary !== wasBinary || !data.equals(back)) {
      fail(`mismatch ${index} sent=${wasBinary}:${data.length} got=${isBinary}:${back.length}`);
    }
    tally.add(data, wasBinary);
    next();
  });
  ws.on('close', (code, reason) => {
    say(`done ${tally} code=${code} reason=${reason.toString('utf8')}`);
    session.close(() => process.exit(0));
  });
  ws.on('error', (e) => fail(`error ${e.message}`));
  next();
}
