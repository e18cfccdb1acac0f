// Node's built-in http2 as a WebSocket server over HTTP/2 (RFC 8441):
// enableConnectProtocol, each extended CONNECT answered 200 and its stream
// handed to `ws` for the frames. With `deflate` as its argument it accepts
// a permessage-deflate offer (ws's own negotiation, threshold 0, installed
// as ws's server does after an HTTP/1.1 handshake: `_extensions`, ws
// 8.18.3 as pinned). Echoes every message; reports on stdout:
//   listening <port>
//   extensions <its sec-websocket-extensions answer, or "none">
//   close code=<code> messages=<n> bytes=<n>
// Exits when stdin ends.
import http2 from 'node:http2';
import { createRequire } from 'node:module';
import { WebSocket } from 'ws';

// ws's extension parser and permessage-deflate are not exported by name
const require = createRequire(import.meta.url);
const wsLib = new URL('../node_modules/ws/lib/', import.meta.url).pathname;
const PerMessageDeflate = require(`${wsLib}permessage-deflate.js`);
const { format, parse } = require(`${wsLib}extension.js`);
const MAX_PAYLOAD = 64 * 1024 * 1024;
const deflate = process.argv[2] === 'deflate';

const server = http2.createServer({ settings: { enableConnectProtocol: true } });
server.on('stream', (stream, headers) => {
  if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket') {
    stream.respond({ ':status': 400 });
    stream.end();
    return;
  }
  const ws = new WebSocket(null, undefined, {});
  const answer = { ':status': 200 };
  const offer = headers['sec-websocket-extensions'];
  if (deflate && offer) {
    const pmd = new PerMessageDeflate({ threshold: 0 }, true, MAX_PAYLOAD);
    const params = pmd.accept(parse(offer)[PerMessageDeflate.extensionName]);
    answer['sec-websocket-extensions'] = format({ [PerMessageDeflate.extensionName]: params });
    ws._extensions[PerMessageDeflate.extensionName] = pmd;
  }
  process.stdout.write(`extensions ${answer['sec-websocket-extensions'] || 'none'}\n`);
  stream.respond(answer);
  // ws frames any duplex stream; an HTTP/2 stream has no Nagle to turn off
  stream.setNoDelay = () => {};
  ws.setSocket(stream, Buffer.alloc(0), { maxPayload: MAX_PAYLOAD });
  let messages = 0;
  let bytes = 0;
  ws.on('message', (data, isBinary) => {
    messages += 1;
    bytes += data.length;
    ws.send(data, { binary: isBinary });
  });
  ws.on('close', (code) => {
    process.stdout.write(`close code=${code} messages=${messages} bytes=${bytes}\n`);
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
