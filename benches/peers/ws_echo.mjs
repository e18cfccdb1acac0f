// Node `ws` echo server with permessage-deflate on, for the compressed echo
// benchmark (benches/src/bin/loadgen.rs, `--deflate-libs ws`).
//
// Usage: NODE_PATH=interop/node_modules taskset -c 0 node benches/peers/ws_echo.mjs
//
// `ws` comes from the interop peers' install (`bash interop/install.sh`,
// ws 8.18.3 pinned in interop/package-lock.json); NODE_PATH is how this file,
// outside interop/, finds it (`createRequire` resolves through NODE_PATH,
// ESM `import` does not).
//
// Compression: `perMessageDeflate: true`, ws's defaults: zlib level 6
// (Z_DEFAULT_COMPRESSION), memLevel 8, 15-bit windows, context takeover
// unless the client asks otherwise, threshold 1024 bytes (smaller messages
// go out uncompressed), at most 10 zlib jobs at once (`concurrencyLimit`),
// which run on libuv's thread pool (taskset keeps those threads on the
// same core as the event loop).
//
// Prints `listening 127.0.0.1:<port>` on stdout once ready, echoes every
// message as it came (text as text, binary as binary), and exits when its
// stdin ends, so a load generator that dies leaves no server behind.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { WebSocketServer } = require('ws');

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: true });
wss.on('listening', () => {
  const { address, port } = wss.address();
  process.stdout.write(`listening ${address}:${port}\n`);
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
