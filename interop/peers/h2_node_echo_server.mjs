// Node's built-in http2 as a WebSocket server over HTTP/2 (RFC 8441):
// enableConnectProtocol, each extended CONNECT answered 200 and its stream
// handed to `ws` for the frames. Echoes every message; reports on stdout:
//   listening <port>
//   close code=<code> messages=<n> bytes=<n>
// Exits when stdin ends.
import http2 from 'node:http2';
import { WebSocket } from 'ws';

const server = http2.createServer({ settings: { enableConnectProtocol: true } });
server.on('stream', (stream, headers) => {
  if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket') {
    stream.respond({ ':status': 400 });
    stream.end();
    return;
  }
  stream.respond({ ':status': 200 });
  // ws frames any duplex stream; an HTTP/2 stream has no Nagle to turn off
  stream.setNoDelay = () => {};
  const ws = new WebSocket(null, undefined, {});
  ws.setSocket(stream, Buffer.alloc(0), { maxPayload: 64 * 1024 * 1024 });
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
