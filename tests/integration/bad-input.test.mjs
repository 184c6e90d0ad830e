// Hostile and malformed input: issod must answer every request with a
// clear 4xx (error page or OAuth error), never a 5xx, never crash, and keep
// answering afterwards (a health check follows each probe).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import {
  startStack, HttpAgent, redirectParams, sameEndpoint, limit, parseLinks,
} from './lib/harness.mjs';

const RP = 'http://127.0.0.1:9/cb';
const T = { timeout: limit(10_000) };

let stack;
let md;
let rp; // a registered confidential client
let user;

before(async () => {
  stack = await startStack({ label: 'badinput' });
  md = await stack.metadata();
  rp = await stack.registerClient({ name: 'bad input rp', redirectUris: [RP], scope: 'openid profile' });
  user = await stack.addUser({ account: 'bad.input', password: 'Tp-Bad-Input-1', phone: '0933444555' });
}, { timeout: limit(30_000) });

after(async () => {
  if (stack) await stack.stop({ check: false });
});

/** Deterministic pseudo-random bytes (xorshift32). */
function bytes(n, seed) {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * A request with node:http, tolerant of the server answering (413) and
 * closing before the body is fully sent. Resolves {status, headers, body}
 * or {error} when the connection died without an answer.
 */
function raw(method, path, { headers = {}, body = null, chunked = false } = {}) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (v) => { if (!done) { done = true; resolve(v); } };
    const h = { ...headers };
    if (body !== null && !chunked) h['content-length'] = String(body.length);
    if (chunked) h['transfer-encoding'] = 'chunked';
    const req = http.request({ host: '127.0.0.1', port: stack.port, method, path, headers: h, agent: false, timeout: 8000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => finish({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (error) => finish({ status: res.statusCode, headers: res.headers, body: '', error }));
    });
    req.on('timeout', () => { req.destroy(new Error('timeout')); });
    req.on('error', (error) => finish({ error }));
    if (body !== null) {
      if (chunked) {
        for (let i = 0; i < body.length; i += 16384) req.write(body.subarray(i, i + 16384));
      } else {
        req.write(body);
      }
    }
    req.end();
  });
}

async function assertHealthy(after) {
  assert.ok(await stack.healthy(), `issod stopped answering after ${after}\n${stack.issod.tail(3000)}`);
}

function assertNo5xx(r, what) {
  assert.ok(!r.error || r.status, `${what}: no answer (${r.error?.code || r.error?.message})`);
  assert.ok(r.status < 500, `${what}: status ${r.status}\n${(r.body || '').slice(0, 500)}`);
}

const authorizeQuery = (extra = '') => `/authorize?response_type=code&client_id=${encodeURIComponent(rp.client_id)}&redirect_uri=${encodeURIComponent(RP)}&scope=openid&state=s&code_challenge=${'x'.repeat(43)}&code_challenge_method=S256${extra}`;

const ENDPOINTS = [
  '/authorize', '/token', '/userinfo', '/jwks', '/revoke', '/introspect', '/logout',
  '/login', '/login/taipeipass', '/consent', '/.well-known/openid-configuration', '/no-such-page',
];

test('oversized bodies -> 413', T, async () => {
  const big = Buffer.alloc(256 * 1024, 'a');
  big.write('grant_type=');
  for (const path of ['/token', '/introspect', '/revoke', '/authorize', '/login/taipeipass', '/consent', '/userinfo']) {
    const r = await raw('POST', path, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: big });
    if (r.status !== undefined) assert.equal(r.status, 413, `POST ${path} with 256 KiB: ${r.status}`);
    // (a server may also close the connection after the limit: no answer is acceptable, a crash is not)
    await assertHealthy(`oversized POST ${path}`);
  }
  const r = await raw('POST', '/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: big, chunked: true });
  if (r.status !== undefined) assert.equal(r.status, 413, `chunked 256 KiB: ${r.status}`);
  await assertHealthy('oversized chunked POST');
});

test('bad percent-encoding or invalid UTF-8 on /authorize -> 400 page', T, async () => {
  for (const bad of ['%zz', '%', '%4', '%E4%B8', '%FF%FE', '%C0%AF', '%ED%A0%80']) {
    const r = await raw('GET', authorizeQuery(`&nonce=${bad}`));
    assert.equal(r.status, 400, `nonce=${bad}: ${r.status}`);
    assert.equal(r.headers.location, undefined, `nonce=${bad}: no redirect`);
    assert.match(r.headers['content-type'] || '', /^text\/html/i, `nonce=${bad}: an HTML page`);
    await assertHealthy(`nonce=${bad}`);
  }
  const nul = await raw('GET', authorizeQuery('&state=a%00b'));
  assert.ok(nul.status >= 400 && nul.status < 500, `NUL in a parameter: ${nul.status}`);
  await assertHealthy('NUL in a parameter');
});

test('duplicate parameters on /authorize -> invalid_request, no crash', T, async () => {
  const agent = new HttpAgent();
  // duplicated scope / state / response_type: error page or error redirect, never a code
  for (const extra of ['&scope=openid', '&state=t', '&response_type=code', '&code_challenge=' + 'y'.repeat(43)]) {
    const res = await agent.get(stack.url(authorizeQuery(extra)));
    assert.ok(res.status < 500, `${extra}: ${res.status}`);
    if (res.redirected && sameEndpoint(res.location, RP)) {
      assert.equal(redirectParams(res.location).get('error'), 'invalid_request', `${extra}: ${res.location}`);
    } else {
      assert.equal(res.status, 400, `${extra}: expected 400 or an invalid_request redirect, got ${res.status} ${res.location || ''}`);
    }
  }
  // duplicated client_id / redirect_uri: which client and which URI are
  // unknown, so RFC 6749 §4.1.2.1 applies: inform the user, MUST NOT redirect
  const twoClients = await agent.get(stack.url(`${authorizeQuery()}&client_id=other`));
  assert.equal(twoClients.status, 400, `repeated client_id: expected an error page, got ${twoClients.status} ${twoClients.location || ''}`);
  assert.equal(twoClients.location, null);
  const twoUris = await agent.get(stack.url(`${authorizeQuery()}&redirect_uri=${encodeURIComponent('http://127.0.0.1:9/evil')}`));
  assert.equal(twoUris.status, 400, `repeated redirect_uri: expected an error page, got ${twoUris.status} ${twoUris.location || ''}`);
  assert.equal(twoUris.location, null);
  // on the token endpoint too
  const auth = `Basic ${Buffer.from(`${rp.client_id}:${rp.client_secret}`).toString('base64')}`;
  const tok = await raw('POST', '/token', {
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: auth },
    body: Buffer.from('grant_type=authorization_code&grant_type=refresh_token&code=a&code=b'),
  });
  assert.equal(tok.status, 400, tok.body);
  assert.equal(JSON.parse(tok.body).error, 'invalid_request');
  await assertHealthy('duplicate parameters');
});

test('10 KB garbage Authorization header', T, async () => {
  const g = bytes(10 * 1024, 7);
  let garbage = '';
  for (const b of g) garbage += String.fromCharCode(0x21 + (b % 94)); // visible ASCII
  const values = [garbage, `Bearer ${garbage}`, `Basic ${garbage}`, `Basic ${Buffer.from(garbage).toString('base64')}`];
  for (const path of ['/userinfo', '/token', '/introspect', '/revoke', '/logout', '/authorize']) {
    for (const v of values) {
      for (const method of ['GET', 'POST']) {
        const r = await raw(method, path, {
          headers: { authorization: v, 'content-type': 'application/x-www-form-urlencoded' },
          body: method === 'POST' ? Buffer.from('token=abc&grant_type=client_credentials') : null,
        });
        assertNo5xx(r, `${method} ${path} Authorization ${v.slice(0, 10)}…`);
        if (path === '/userinfo' || path === '/token' || path === '/introspect') {
          assert.ok([400, 401, 405, 431].includes(r.status), `${method} ${path}: ${r.status}`);
        }
      }
    }
    await assertHealthy(`garbage Authorization on ${path}`);
  }
});

test('non-UTF-8 in a form -> 4xx', T, async () => {
  const agent = new HttpAgent();
  const auth = new URL(stack.url(authorizeQuery()));
  const r = await agent.followUntil(auth.href);
  assert.equal(r.res.status, 200, `method page: ${r.res.status}`);
  const pick = r.res.links().find((l) => new URL(l.href).pathname === '/login/taipeipass');
  assert.ok(pick, 'a link to the TaipeiPass login');
  const page = await agent.get(pick.href);
  const form = page.forms().find((f) => f.has('password'));
  assert.ok(form, 'the login form');
  const hidden = new URLSearchParams(form.fields()).toString();
  const bodies = [
    Buffer.from(`${hidden}&account=%FF%FE&password=x`),
    Buffer.concat([Buffer.from(`${hidden}&account=`), Buffer.from([0xff, 0xc0, 0xaf, 0xed, 0xa0, 0x80]), Buffer.from('&password=x')]),
    Buffer.from(`${hidden}&account=${encodeURIComponent(user.account)}&password=%C3%28`),
  ];
  for (const body of bodies) {
    const res = await agent.request(form.action, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body,
    });
    assert.ok(res.status >= 400 && res.status < 500, `non-UTF-8 login form: ${res.status}`);
    assert.ok(!(res.redirected && new URL(res.location).pathname.startsWith('/consent')), 'never logged in');
    await assertHealthy('non-UTF-8 login form');
  }
  const tok = await raw('POST', '/token', {
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=ISO-8859-1' },
    body: Buffer.from([...Buffer.from('grant_type=authorization_code&code='), 0xe9, 0xff]),
  });
  assert.equal(tok.status, 400);
  await assertHealthy('non-UTF-8 token request');
});

test('random binary POSTs to every endpoint: never 5xx, always answering', { timeout: limit(20_000) }, async () => {
  const types = [
    'application/x-www-form-urlencoded', 'application/octet-stream', 'multipart/form-data; boundary=xyz',
    'application/json', 'text/plain; charset=utf-8', null,
  ];
  let seed = 1;
  for (const path of ENDPOINTS) {
    for (const type of types) {
      const body = bytes(512 + (seed * 977) % 8192, seed++);
      const headers = type ? { 'content-type': type } : {};
      const r = await raw('POST', path, { headers, body });
      assertNo5xx(r, `POST ${path} (${type}) seed ${seed - 1}`);
    }
    await assertHealthy(`random POSTs to ${path}`);
  }
});

test('very long URL and odd methods', T, async () => {
  const long = await raw('GET', `/authorize?client_id=${'a'.repeat(200 * 1024)}`);
  if (long.status !== undefined) assert.ok(long.status >= 400 && long.status < 500, `200 KiB URL: ${long.status}`);
  await assertHealthy('a 200 KiB URL');
  for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE']) {
    for (const path of ['/token', '/authorize', '/userinfo']) {
      const r = await raw(method, path, { body: method === 'TRACE' ? null : Buffer.from('x=1') });
      assertNo5xx(r, `${method} ${path}`);
    }
  }
  await assertHealthy('odd methods');
});

test('garbage on the socket (not HTTP)', T, async () => {
  for (const payload of [bytes(4096, 99), Buffer.from('GET / HTTP/9.9\r\n\r\n'), Buffer.from('\r\n\r\n\r\n'), Buffer.from('GET /authorize HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n')]) {
    const answer = await new Promise((resolve) => {
      const chunks = [];
      const s = net.connect(stack.port, '127.0.0.1', () => s.end(payload));
      s.setTimeout(3000, () => s.destroy());
      s.on('data', (d) => chunks.push(d));
      s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      s.on('error', () => {});
    });
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(answer);
    // 505 (HTTP Version Not Supported) is the right answer to HTTP/9.9
    if (m) assert.ok(Number(m[1]) < 500 || Number(m[1]) === 505, `status ${m[1]} for socket garbage`);
    await assertHealthy('socket garbage');
  }
});

test('the language switch link stays relative on a crafted // path', T, async () => {
  const paths = [
    '//evil.example/x', '/%2F%2Fevil.example', '//evil.example/x?next=//evil.example', '///evil.example/',
    '/\\evil.example/x', '//evil.example', '/login?t=x&lang=zh-TW',
  ];
  for (const p of paths) {
    const r = await raw('GET', p);
    assertNo5xx(r, `GET ${p}`);
    assert.match(r.headers['content-type'] || '', /^text\/html/i, `GET ${p}: an HTML page`);
    const base = `${stack.issuer}${p}`; // the page's own URL, as a browser has it
    const link = parseLinks(r.body, base).find((l) => l.attrs.hreflang !== undefined);
    assert.ok(link, `GET ${p}: a language switch link (hreflang)`);
    const href = link.attrs.href;
    assert.ok(href.startsWith('?'), `GET ${p}: the language link must be relative to the page ("?…"), got ${JSON.stringify(href)}`);
    assert.ok(!/^\s*(\/\/|\\|[a-z][a-z0-9+.-]*:)/i.test(href), `GET ${p}: ${href}`);
    assert.match(href, /(^\?|&)lang=(en|zh-TW)$/, `GET ${p}: switches lang`);
    // resolved as a browser would against the page's own URL: still issod
    assert.equal(new URL(href, base).origin, stack.issuer, `GET ${p}: resolves to ${new URL(href, base).href}`);
  }
  await assertHealthy('crafted paths');
});

test('issoctl client add refuses look-alike loopback and user-info URIs', { timeout: limit(20_000) }, async () => {
  const bad = [
    'http://127.0.0.1.evil.example/cb', 'http://localhost@evil.example/cb', 'https://good@evil.example/cb',
    'http://example.com/cb', 'http://localhost.evil.example/cb', 'http://127.0.0.1@evil.example/cb',
    'http://[::1].evil.example/cb', 'http://localhost:8081@evil.example/cb', 'http://127.0.0.1:8081.evil.example/cb',
    'http://localhost:80evil.example/cb',
  ];
  const good = ['http://127.0.0.1:8081/cb', 'http://localhost/cb', 'http://[::1]:9/cb', 'https://service.example.gov.taipei/cb'];
  const base = ['client', 'add', '--name', 'uri probe', '--scope', 'openid'];
  const refused = (r, what) => {
    assert.equal(r.failed, true, `${what} was accepted: ${JSON.stringify(r)}`);
    assert.notEqual(r.code, 0, `${what}: exit code`);
    assert.equal(typeof r.json?.error, 'string', `${what}: a JSON error on stdout (${r.stdout})`);
  };
  // (refusals write nothing: four at a time)
  const probes = [];
  for (const [i, u] of bad.entries()) {
    probes.push([`redirect URI ${u}`, ['--redirect-uri', u]]);
    if (i < 4) probes.push([`post-logout URI ${u}`, ['--redirect-uri', RP, '--post-logout-redirect-uri', u]]);
    if (i % 4 === 0) probes.push([`back-channel URI ${u}`, ['--redirect-uri', RP, '--backchannel-logout-uri', u]]);
    if (i % 4 === 1) probes.push([`jwks_uri ${u}`, ['--redirect-uri', RP, '--auth-method', 'private_key_jwt', '--jwks-uri', u]]);
  }
  for (let i = 0; i < probes.length; i += 4) {
    const batch = probes.slice(i, i + 4);
    const results = await Promise.all(batch.map(([, args]) => stack.issoctl([...base, ...args], { allowFailure: true })));
    results.forEach((r, j) => refused(r, batch[j][0]));
  }
  for (const u of good) {
    const r = await stack.issoctl([...base, '--redirect-uri', u], { allowFailure: true });
    assert.ok(!r.failed, `${u} was refused: ${r.stdout}${r.stderr}`);
    assert.deepEqual(r.redirect_uris, [u]);
  }
  const listed = await stack.issoctl(['client', 'list']);
  const all = JSON.stringify(listed);
  assert.ok(!all.includes('evil.example') && !all.includes('example.com/'), 'no refused URI was stored');
});

test('login steps: an unknown step is 404, a request method a step does not take is 405, for every method', T, async () => {
  const agent = new HttpAgent();
  const r = await agent.followUntil(stack.url(authorizeQuery()));
  assert.equal(r.res.status, 200, `method page: ${r.res.status}`);
  const t = new URL(r.url).searchParams.get('t');
  assert.match(t, /^[A-Za-z0-9_-]{43}$/, 'the login transaction');
  const ids = [...new Set(r.res.links().map((l) => new URL(l.href).pathname)
    .filter((p) => /^\/login\/[a-z-]+$/.test(p)).map((p) => p.slice('/login/'.length)))];
  assert.ok(ids.length >= 5, `every method offered: ${ids}`);
  for (const id of ids) {
    for (const step of ['no-such-step', 'phone/x', 'status/']) {
      const res = await raw('GET', `/login/${id}/${step}?t=${t}`);
      assert.equal(res.status, 404, `GET /login/${id}/${step}: ${res.status}`);
    }
    // the first page of every method exists and reads the transaction
    // (moica-mobile answers 503 first when no MOICA roots are configured,
    // as here: no result certificate could be checked)
    const first = await raw('GET', `/login/${id}?t=${'A'.repeat(43)}`);
    assert.equal(first.status, id === 'moica-mobile' ? 503 : 400, `GET /login/${id} with an unknown transaction: ${first.status}`);
  }
  // the polled and returning steps take GET only: refused before the
  // transaction is read (moica-mobile's: moica-mobile.test.mjs, where its
  // MOICA roots are configured)
  for (const path of ['/login/taipeipass/app-status', '/login/taipeipass/org', '/login/telecom/status',
    '/login/telecom/done']) {
    const res = await raw('POST', `${path}?t=${t}`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from('x=1') });
    assert.equal(res.status, 405, `POST ${path}: ${res.status}`);
  }
  await assertHealthy('login step probes');
});

test('issod stops cleanly after all that', T, async () => {
  const s = stack;
  stack = null;
  await s.stop();
});
