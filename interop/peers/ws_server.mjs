// A Node `ws` server for tether's interop tests (interop/tests/node_ws.rs).
//
// Usage: node ws_server.mjs [--greet] [--echo] [--ping-ms=N] [--no-auto-pong]
//
//   --greet         send "connection established" to each new client
//   --echo          answer text with "echo <text>", binary with the same bytes
//   --ping-ms=N     ping each client every N ms, payload "ping-<n>"
//   --no-auto-pong  construct the server with `autoPong: false`
//
// Listens on an ephemeral port of 127.0.0.1. Reports on stdout, one event a
// line, `<event> <client id> <details>`:
//
//   listening <port>
//   open <id>
//   text <id> <byte length> <text>        binary <id> <byte length>
//   ping <id> <payload>                   pong <id> <payload>
//                                         (printable ASCII, else hex:<hex>)
//   sent-ping <id> <payload>              sent-pong <id> <payload>
//   counts <id> pings=<sent> pongs=<received>
//   close <id> <code> <reason>            error <id> <message>
//
// Commands on stdin, one a line, applied to every open client:
//
//   close <code> <reason...>   close with that code and reason
//   pong <payload>             send an unsolicited Pong
//   text <text>                send a text message
//   report                     stop pinging, ping "sync", and once its Pong is
//                              back print `counts` (pings before "sync" and
//                              the Pongs that answered them)
//
// The process exits when stdin ends, so a test that dies leaves no server.

import { WebSocketServer } from 'ws';
import { createInterface } from 'node:readline';

const args = new Set(process.argv.slice(2).filter((a) => !a.includes('=')));
const opts = Object.fromEntries(
  process.argv
    .slice(2)
    .filter((a) => a.includes('='))
    .map((a) => a.replace(/^--/, '').split('=')),
);
const greet = args.has('--greet');
const echo = args.has('--echo');
const pingMs = Number(opts['ping-ms'] ?? 0);
const autoPong = !args.has('--no-auto-pong');

const say = (line) => process.stdout.write(line + '\n');
// A control payload as text when it is printable ASCII, else `hex:<hex>`.
const show = (data) =>
  /^[\x20-\x7e]*$/.test(data.toString('latin1'))
    ? data.toString('latin1')
    : `hex:${data.toString('hex')}`;

const clients = new Map();
let nextId = 1;

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, autoPong });
wss.on('listening', () => say(`listening ${wss.address().port}`));
wss.on('error', (e) => {
  say(`error 0 ${e.message}`);
  process.exit(1);
});

wss.on('connection', (ws) => {
  const id = nextId++;
  const client = { ws, pings: 0, pongs: 0, timer: null, onSync: null };
  clients.set(id, client);
  say(`open ${id}`);

  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      say(`binary ${id} ${data.length}`);
      if (echo) ws.send(data, { binary: true });
    } else {
      const text = data.toString('utf8');
      say(`text ${id} ${data.length} ${text}`);
      if (echo) ws.send(`echo ${text}`);
    }
  });
  ws.on('ping', (data) => say(`ping ${id} ${show(data)}`));
  ws.on('pong', (data) => {
    const payload = show(data);
    say(`pong ${id} ${payload}`);
    if (payload === 'sync' && client.onSync) {
      client.onSync();
    } else if (payload.startsWith('ping-')) {
      client.pongs++;
    }
  });
  ws.on('close', (code, reason) => {
    clearInterval(client.timer);
    clients.delete(id);
    say(`close ${id} ${code} ${reason.toString('utf8')}`);
  });
  ws.on('error', (e) => say(`error ${id} ${e.message}`));

  if (greet) ws.send('connection established');
  if (pingMs > 0) {
    client.timer = setInterval(() => {
      client.pings++;
      const payload = `ping-${client.pings}`;
      ws.ping(payload);
      say(`sent-ping ${id} ${payload}`);
    }, pingMs);
  }
});

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const [command, ...rest] = line.split(' ');
  for (const [id, client] of clients) {
    const { ws } = client;
    switch (command) {
      case 'close':
        ws.close(Number(rest[0]), rest.slice(1).join(' '));
        break;
      case 'pong':
        ws.pong(rest.join(' '));
        say(`sent-pong ${id} ${rest.join(' ')}`);
        break;
      case 'text':
        ws.send(rest.join(' '));
        break;
      case 'report':
        clearInterval(client.timer);
        client.onSync = () => {
          client.onSync = null;
          say(`counts ${id} pings=${client.pings} pongs=${client.pongs}`);
        };
        ws.ping('sync');
        break;
      default:
        say(`error ${id} unknown command ${command}`);
    }
  }
});
rl.on('close', () => process.exit(0));
