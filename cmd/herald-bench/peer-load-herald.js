'use strict';
// Preloaded into the Socket.IO peer's load tool (node -r ./peer-load-herald.js
// load.js --url HERALD …) so that load.js, unchanged, drives Herald's
// /socket.io/ endpoint (peer-socketio.sh herald). load.js's sockets connect
// to Herald directly, as any socket.io-client does; only what load.js asks
// of the peer's own internal endpoints is translated:
//
//   POST /internal/notify {id_usuario | user, msgId, sentAt, titulo, mensaje}
//       becomes Herald's POST /notifications, ephemeral (the peer stores
//       nothing), to that employee, with a service token (HERALD_TOKEN):
//       {"to":{"employees":[id]},"persist":false,"type":"load","title":titulo,
//        "body":mensaje,"data":{"msgId":…,"sentAt":…}}; Herald answers 202,
//       which load.js counts as accepted.
//   GET /internal/stats[?gc=1]
//       is answered here: the mode load.js expects, Herald's PID
//       (HERALD_PID), its open Socket.IO streams (from /metrics) as the
//       client count, its Go heap in use as heapUsed; gcRan false (Herald
//       has no forced GC), so load.js reports raw RSS only.
//
// Herald delivers an ephemeral message as its notification JSON, the
// payload's fields under "data"; load.js reads msgId and sentAt at the top
// level, so its nueva_notificacion listeners get data merged over the
// notification (a few object spreads per message in the load tool).
//
// Cookie mode's `user` is u<id> (peer-socketio.sh gives employee <id> the
// username u<id>).
const http = require('http');
const { PassThrough } = require('stream');
const { EventEmitter } = require('events');

const TOKEN = process.env.HERALD_TOKEN;
const PID = Number(process.env.HERALD_PID || 0);
if (!TOKEN) throw new Error('peer-load-herald.js: HERALD_TOKEN (a service token of Herald) is required');
const arg = (name, def) => {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
};
const MODE = arg('mode', 'azure');
const EVENT = arg('event', 'nueva_notificacion');

const request = http.request;

// A stand-in for http.ClientRequest as load.js uses it: setTimeout, on,
// write, end, destroy. The real request is made at end(), once the body is
// known.
class Deferred extends EventEmitter {
  constructor(run) {
    super();
    this.run = run;
    this.chunks = [];
    this.timeout = null;
    this.real = null;
  }
  setTimeout(ms, fn) { this.timeout = [ms, fn]; return this; }
  write(c) { this.chunks.push(Buffer.from(c)); return true; }
  destroy(err) { if (this.real) this.real.destroy(err); else this.emit('error', err); return this; }
  end(c) {
    if (c) this.write(c);
    this.run(Buffer.concat(this.chunks).toString('utf8'), this);
    return this;
  }
  attach(real) {
    this.real = real;
    if (this.timeout) real.setTimeout(this.timeout[0], this.timeout[1]);
    real.on('error', (e) => this.emit('error', e));
  }
}

function answer(cb, status, body) {
  const res = new PassThrough();
  res.statusCode = status;
  res.headers = { 'content-type': 'application/json' };
  process.nextTick(() => { cb(res); res.end(JSON.stringify(body)); });
}

function metrics(opts, done) {
  const req = request({ host: opts.host, port: opts.port, method: 'GET', path: '/metrics', agent: opts.agent }, (res) => {
    let txt = '';
    res.setEncoding('utf8');
    res.on('data', (c) => { txt += c; });
    res.on('end', () => done(txt));
  });
  req.on('error', () => done(''));
  req.end();
}

function sample(txt, re) {
  const m = txt.match(re);
  return m ? Number(m[1]) : 0;
}

function stats(opts, cb) {
  const d = new Deferred(() => metrics(opts, (txt) => {
    const clients = sample(txt, /^herald_streams_open_by_transport\{transport="socketio"\} (\S+)$/m);
    answer(cb, 200, { mode: MODE, pid: PID, clients, sockets: clients,
      heapUsed: sample(txt, /^go_memstats_heap_inuse_bytes (\S+)$/m), gcRan: false });
  }));
  return d;
}

function employeeOf(b) {
  if (b.id_usuario != null) return Number(b.id_usuario);
  const m = /^u(\d+)$/.exec(String(b.user || ''));
  return m ? Number(m[1]) : NaN;
}

function notify(opts, cb) {
  return new Deferred((text, d) => {
    const b = JSON.parse(text || '{}');
    const body = JSON.stringify({
      to: { employees: [employeeOf(b)] }, persist: false, type: 'load',
      title: String(b.titulo || b.title || 'load'), body: String(b.mensaje || b.msg || ''),
      data: { msgId: b.msgId, sentAt: b.sentAt },
    });
    const real = request({ host: opts.host, port: opts.port, method: 'POST', path: '/notifications', agent: opts.agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: 'Bearer ' + TOKEN } }, cb);
    d.attach(real);
    real.end(body);
  });
}

http.request = function (opts, cb) {
  if (opts && typeof opts === 'object' && !(opts instanceof URL) && typeof opts.path === 'string') {
    if (opts.path.startsWith('/internal/stats')) return stats(opts, cb);
    if (opts.path === '/internal/notify') return notify(opts, cb);
  }
  return request.apply(this, arguments);
};

// Herald's notification JSON carries the payload under "data".
const { Socket } = require('socket.io-client');
const on = Socket.prototype.on;
Socket.prototype.on = function (ev, fn) {
  if (ev !== EVENT) return on.call(this, ev, fn);
  return on.call(this, ev, (p, ...rest) => fn(p && typeof p.data === 'object' && p.data ? { ...p, ...p.data } : p, ...rest));
};
