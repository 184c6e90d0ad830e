// A small RFC 6455 client over a raw TCP socket, for tests that must send
// what a browser never would (unmasked or oversized frames, bad
// fragmentation) as well as ordinary messages. Node 20 has no WebSocket.

import crypto from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Frame bytes: opcode, payload (Buffer|string), fin, masked, rsv bits. */
export function frame(opcode, payload = Buffer.alloc(0), { fin = true, mask = true, rsv = 0, lengthForm = null } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const n = data.length;
  let head;
  const form = lengthForm ?? (n < 126 ? 7 : n <= 0xffff ? 16 : 64);
  if (form === 7) {
    head = Buffer.from([0, n]);
  } else if (form === 16) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(n, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  head[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
  if (!mask) return Buffer.concat([head, data]);
  head[1] |= 0x80;
  const key = crypto.randomBytes(4);
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = data[i] ^ key[i & 3];
  return Buffer.concat([head, key, body]);
}

/**
 * Opens ws://host:port/path (wss:// with secure, any certificate).
 * Resolves {status, headers} for a refused handshake (no socket left
 * open), or a RawWs once 101 is received.
 */
export function connect(port, { path = '/echo', origin, host = `127.0.0.1:${port}`, headers = {}, key = crypto.randomBytes(16).toString('base64'), secure = false } = {}) {
  return new Promise((resolve, reject) => {
    const sock = secure
      ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'localhost' })
      : net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('handshake timed out')); }, 5000);
    sock.on('error', (err) => { clearTimeout(timer); reject(err); });
    sock.on(secure ? 'secureConnect' : 'connect', () => {
      const lines = [
        `GET ${path} HTTP/1.1`, `Host: ${host}`, 'Upgrade: websocket', 'Connection: Upgrade',
        `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13',
      ];
      if (origin) lines.push(`Origin: ${origin}`);
      for (const [k, v] of Object.entries(headers)) {
        const i = lines.findIndex((l) => l.toLowerCase().startsWith(`${k.toLowerCase()}:`));
        if (i >= 0) lines.splice(i, 1);
        if (v !== null) lines.push(`${k}: ${v}`);
      }
      sock.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    const onData = (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(head[0].split(' ')[1]);
      const hdrs = {};
      for (const l of head.slice(1)) {
        const i = l.indexOf(':');
        hdrs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      if (status !== 101) {
        // read the rest of the body, then close
        sock.removeListener('data', onData);
        let body = buf.subarray(end + 4);
        const len = Number(hdrs['content-length'] || 0);
        const done = () => { clearTimeout(timer); sock.destroy(); resolve({ status, headers: hdrs, body: body.toString('utf8') }); };
        if (body.length >= len) return done();
        sock.on('data', (c) => { body = Buffer.concat([body, c]); if (body.length >= len) done(); });
        sock.on('end', done);
        return;
      }
      clearTimeout(timer);
      sock.removeListener('data', onData);
      const expect = crypto.createHash('sha1').update(key + GUID).digest('base64');
      const ws = new RawWs(sock, { status, headers: hdrs, acceptOk: hdrs['sec-websocket-accept'] === expect });
      ws.feed(buf.subarray(end + 4));
      resolve(ws);
    };
    sock.on('data', onData);
  });
}

export class RawWs {
  constructor(sock, info) {
    Object.assign(this, info);
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.frames = [];
    this.waiters = [];
    this.closed = false;
    sock.on('data', (c) => this.feed(c));
    sock.on('close', () => { this.closed = true; this.wake(); });
    sock.on('error', () => {});
  }

  feed(chunk) {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.buf.length < 2) break;
      const b0 = this.buf[0];
      const b1 = this.buf[1];
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) break;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) break;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      if (b1 & 0x80) throw new Error('server frames must not be masked');
      if (this.buf.length < off + len) break;
      this.frames.push({ fin: !!(b0 & 0x80), opcode: b0 & 0x0f, payload: this.buf.subarray(off, off + len) });
      this.buf = this.buf.subarray(off + len);
    }
    this.wake();
  }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The next frame from the server (null when the socket closed first). */
  async next(timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no frame from the server in time');
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.frames.shift();
  }

  /** Waits for a close frame; returns its code (or null without a code). */
  async closeCode(timeoutMs = 5000) {
    for (;;) {
      const f = await this.next(timeoutMs);
      if (f === null) return undefined;
      if (f.opcode === 8) return f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null;
    }
  }

  /** Resolves when the server closed the TCP connection. */
  async ended(timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('the server did not close the connection');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  raw(bytes) { this.sock.write(bytes); }
  send(text) { this.raw(frame(1, text)); }

  /** Sends a text message and returns the reply parsed as JSON. */
  async command(text) {
    this.send(text);
    const f = await this.next();
    if (f === null) throw new Error(`connection closed after ${JSON.stringify(text)}`);
    if (f.opcode !== 1) throw new Error(`expected a text frame, got opcode ${f.opcode}`);
    return JSON.parse(f.payload.toString('utf8'));
  }

  close() {
    try { this.raw(frame(8, Buffer.from([0x03, 0xe8]))); } catch { /* gone */ }
    this.sock.end();
  }

  destroy() { this.sock.destroy(); }
}
