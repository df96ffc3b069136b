'use strict';
// Drives socket.io-client v4 for Herald's Go tests (handlers/socketio_test.go).
// Commands arrive on stdin, one JSON object a line; what the sockets see is
// written to stdout, one JSON object a line:
//
//   {"op":"open","client":"a","url":"http://127.0.0.1:N","opts":{…},"resume":true}
//       io(url, opts) with forceNew; resume: auth is a function that adds
//       lastEventId, the id of the last nueva_notificacion received
//   {"op":"emit","client":"a","event":"x","args":[…]}   socket.emit
//   {"op":"join","client":"a","room":"r"}               what an old client did to join
//   {"op":"connect","client":"a","auth":{…}}            socket.auth = auth; socket.connect()
//   {"op":"drop","client":"a"}                          close the transport (the client reconnects)
//   {"op":"close","client":"a"}                         socket.close()
//
// Output: {"client","type":"connect"|"connect_error"|"event"|"disconnect"|"upgrade", …}.
const readline = require('readline');
const { io } = require('socket.io-client');

const sockets = new Map();
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

function open(cmd) {
  const name = cmd.client;
  const opts = Object.assign({ forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 200, timeout: 10000 }, cmd.opts || {});
  let last = null;
  if (cmd.resume) {
    const base = opts.auth || {};
    opts.auth = (cb) => cb(Object.assign({}, base, last ? { lastEventId: last } : {}));
  }
  const s = io(cmd.url, opts);
  sockets.set(name, s);
  s.on('connect', () => {
    const engine = s.io.engine;
    out({ client: name, type: 'connect', transport: engine.transport.name, id: s.id });
  });
  s.io.on('open', () => s.io.engine.on('upgrade', (t) => out({ client: name, type: 'upgrade', transport: t.name })));
  s.on('connect_error', (e) => out({ client: name, type: 'connect_error', message: e.message, data: e.data === undefined ? null : e.data }));
  s.on('disconnect', (reason) => out({ client: name, type: 'disconnect', reason }));
  s.onAny((event, ...args) => {
    if (event === 'nueva_notificacion' && args[0] && args[0].id) last = args[0].id;
    out({ client: name, type: 'event', event, args, transport: s.io.engine ? s.io.engine.transport.name : null });
  });
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  const s = sockets.get(cmd.client);
  switch (cmd.op) {
    case 'open': open(cmd); break;
    case 'emit': s.emit(cmd.event, ...(cmd.args || [])); break;
    case 'join': s.emit('join', cmd.room); s.emit('subscribe', cmd.room); break;
    case 'connect': if (cmd.auth) s.auth = cmd.auth; s.connect(); break;
    case 'drop': s.io.engine.close(); break;
    case 'close': s.close(); break;
    default: out({ type: 'error', message: 'unknown op ' + cmd.op });
  }
  out({ type: 'ack', op: cmd.op, client: cmd.client || null });
});
rl.on('close', () => { for (const s of sockets.values()) s.close(); setTimeout(() => process.exit(0), 50); });
