// Two issod nodes on one PostgreSQL store (lib/pgsql.mjs, a throwaway
// cluster), both answering for the same issuer, no sticky sessions: a
// mobile natural-person certificate (moica-mobile) login started on node
// A whose status is asked of both nodes at once, many times a second, for
// longer than two TW FidO poll intervals. isso-sim records every ATH-02
// poll: all nodes together must poll the transaction at most once every
// 4 s (the turn is taken in the store, src/auth/methods/moica-mobile.c).
// The login then completes on node B (phone + SMS code + consent) and its
// code is redeemed through the proxy with openid-client.
//
// A counter's CIBA request started on node A is polled on both (the poll
// interval is counted in the store: slow_down on the other node), listed
// and approved by the app on node B, and its tokens come once.
//
// Both nodes try to sign an audit checkpoint every second
// (audit.checkpoint_interval = 1): at most one is written per interval,
// and `issoctl audit verify` accepts the chain and all of them.
//
// In front of both, haproxy (lib/haproxy.mjs: in the foreground as a
// child of the test, round robin, no stickiness, a new connection per
// request so consecutive requests of one citizen alternate between the
// nodes, health checks on /readyz).
// Password logins through it complete across the nodes; then node B is
// killed with SIGKILL in the middle of several logins: every consent,
// token and audit row committed before is still in PostgreSQL, the tokens
// still work, and the citizens in flight finish on node A.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createHash } from 'node:crypto';
import * as client from 'openid-client';
import {
  startStack, HttpAgent, Daemon, waitReady, freePort, BUILD_DIR, redirectParams, sameEndpoint,
  sleep, limit,
} from './lib/harness.mjs';
import * as tpapp from './lib/tpapp.mjs';
import { Postgres } from './lib/pgsql.mjs';
import { startHaproxy } from './lib/haproxy.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted: the agent stops at it
const SCOPE = 'openid uuid profile phone id_number';
const CITIZEN = 'A123456789'; // sim/identities.json: mobile_cert_enrolled
const POLL_MS = 4000; // the TW FidO spec's pause between polls
const T = { timeout: limit(60_000) };

let pg;
let stack; // node A, isso-sim and the store
let nodeB; // the second issod
let urlB;
let cfg;
let lb; // haproxy
let lbUrl; // the issuer: both nodes' public URL
let citizens = [];
let rp; // the registered client (id and secret)

const isRp = (next) => sameEndpoint(next, RP);
const pathOf = (url) => new URL(url).pathname;
const tOf = (url) => new URL(url).searchParams.get('t');

before(async () => {
  pg = new Postgres().init();
  const lbPort = await freePort();
  lbUrl = `http://127.0.0.1:${lbPort}`;
  stack = await startStack({
    label: 'cluster',
    pki: true, // the mobile certificate is checked against the test PKI
    env: {
      ISSO_STORE_DRIVER: 'postgresql', ISSO_STORE_CONNINFO: pg.conninfo,
      ISSO_SERVER_PUBLIC_URL: lbUrl,
      ISSO_SERVER_TRUST_PROXY: '1', ISSO_SERVER_TRUSTED_PROXIES: '127.0.0.1',
      ISSO_KEYS_RELOAD_INTERVAL: '1',
      ISSO_AUDIT_CHECKPOINT_INTERVAL: '1',
    },
  });
  // node B: the same configuration and store, its own port; the public
  // URL is the proxy's, as on node A
  const portB = await freePort();
  urlB = `http://127.0.0.1:${portB}`;
  nodeB = new Daemon('issod-b', path.join(BUILD_DIR, 'issod'), [],
    { env: { ...stack.env, ISSO_SERVER_PORT: String(portB) }, cwd: stack.tmp });
  await waitReady(nodeB, `${urlB}/.well-known/openid-configuration`);

  lb = await startHaproxy({
    dir: stack.tmp, port: lbPort,
    servers: [{ name: 'a', port: stack.port }, { name: 'b', port: portB }],
  });

  const c = await stack.registerClient({
    name: '臺北市測試機關 叢集', purpose: '多節點整合測試', redirectUris: [RP], scope: SCOPE,
  });
  rp = c;
  cfg = await client.discovery(new URL(lbUrl), c.client_id, { id_token_signed_response_alg: 'ES256' },
    client.ClientSecretBasic(c.client_secret), { execute: [client.allowInsecureRequests], timeout: 15 });
  for (let i = 0; i < 8; i++) {
    citizens.push(await stack.addUser({
      account: `cluster.c${i}`, password: `Tp-Cluster-Login-${i}-42`, phone: `09120003${String(10 + i)}`,
      email: `c${i}@example.tw`, name: '林大同', birthdate: '1988-02-03',
    }));
  }
}, { timeout: limit(90_000) });

after(async () => {
  if (lb) await lb.stop();
  if (nodeB) {
    const r = await nodeB.stop();
    if (r.killed || (r.code !== 0 && r.signal !== 'SIGKILL')) console.error(nodeB.stderr.slice(-4000));
  }
  if (stack) await stack.stop({ check: false });
  if (pg) pg.destroy();
});

/** isso-sim's phone: the pending tickets for id (newest first). */
async function pending(id) {
  const res = await fetch(`${stack.simUrl}/phone/mobilecert/pending?id_num=${id}`);
  assert.equal(res.status, 200, 'isso-sim pending');
  return res.json();
}

/** GET …/status on the node at base: {status, state, next}. */
async function status(agent, base, t) {
  const res = await agent.get(`${base}/login/moica-mobile/status?t=${t}`, { headers: { accept: 'application/json' } });
  const body = res.contentType().startsWith('application/json') ? res.json() : {};
  return { status: res.status, state: body.state, next: body.next };
}

test('two nodes poll one TW FidO transaction at most every 4 s together; the login completes on the other node', T, async () => {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authUrl = client.buildAuthorizationUrl(cfg, {
    redirect_uri: RP, scope: SCOPE, state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const agent = new HttpAgent();

  // started on node A: method choice → notice → ID → QR
  const r = await agent.followUntil(authUrl.href, isRp);
  assert.equal(pathOf(r.url), '/login');
  const t = tOf(r.url);
  const card = r.res.links().find((l) => pathOf(l.href) === '/login/moica-mobile');
  assert.ok(card, 'the method choice offers 行動自然人憑證');
  const notice = await agent.get(card.href);
  const idPage = await agent.submit(notice.forms().find((f) => f.has('agree')), { agree: '1' });
  assert.equal(pathOf(idPage.url), '/login/moica-mobile/id');
  const qr = await agent.submit(idPage.res.forms().find((f) => f.has('id_number')), { id_number: CITIZEN });
  assert.equal(pathOf(qr.url), '/login/moica-mobile/qr', `after the ID: ${qr.res.pageText().slice(0, 300)}`);

  // both nodes asked at once, four at a time, every 200 ms, for 2.5 intervals
  const until = Date.now() + 2.5 * POLL_MS;
  let asked = 0;
  while (Date.now() < until) {
    const answers = await Promise.all([
      status(agent, stack.issuer, t), status(agent, urlB, t),
      status(agent, urlB, t), status(agent, stack.issuer, t),
    ]);
    for (const a of answers) {
      assert.equal(a.status, 200, 'status answered');
      assert.equal(a.state, 'pending');
    }
    asked += answers.length;
    await sleep(200);
  }
  const [ticket] = await pending(CITIZEN);
  assert.ok(ticket, 'the ticket is pending at isso-sim');
  assert.ok(asked >= 40, `asked ${asked} times`);
  assert.ok(ticket.polls >= 2, `polled ${ticket.polls} times in 10 s (at least every 5 s expected)`);
  assert.ok(ticket.polls <= 3, `polled ${ticket.polls} times in 10 s`);
  assert.equal(ticket.fast_polls, 0, 'no poll sooner than 4 s after the one before, across both nodes');

  // approved on the phone; the answer is fetched by node B
  const ok = await fetch(`${stack.simUrl}/phone/mobilecert/approve?${new URLSearchParams({ ticket: ticket.sp_ticket })}`, { method: 'POST' });
  assert.equal(ok.status, 200);
  let done;
  const deadline = Date.now() + limit(3 * POLL_MS);
  for (;;) {
    done = await status(agent, urlB, t);
    if (done.state !== 'pending') break;
    assert.ok(Date.now() < deadline, 'still pending on node B');
    await sleep(500);
  }
  assert.equal(done.state, 'done');
  assert.equal((await pending(CITIZEN)).length, 0, 'answered');

  // the phone + SMS step and consent on node B
  const phone = '0936511422';
  const page = await agent.get(new URL(done.next, urlB).href);
  assert.equal(page.status, 200, `the phone step on node B: ${page.pageText().slice(0, 300)}`);
  const pf = page.forms().find((x) => x.has('phone'));
  const sent = await agent.submit(pf, { phone }, pf.buttons.find((b) => b.value === 'send'));
  assert.equal(sent.res.status, 200);
  assert.ok(sent.url.startsWith(urlB), `still on node B: ${sent.url}`);
  const sms = await stack.readLastSms(phone);
  assert.ok(sms?.code, 'the SMS code reached the phone');
  const cf = sent.res.forms().find((x) => x.has('code'));
  const verified = await agent.submit(cf, { code: sms.code }, cf.buttons.find((b) => b.value === 'verify'), isRp);
  assert.equal(pathOf(verified.url), '/consent');
  const consent = verified.res.forms().find((f) => f.buttons.some((b) => b.name === 'decision'));
  const cb = await agent.submit(consent, {}, consent.buttons.find((b) => b.value === 'allow'), isRp);
  assert.ok(cb.stopped, 'consent leads back to the client');
  assert.ok(redirectParams(cb.url).get('code'), 'a code');

  // redeemed through the proxy
  const tokens = await client.authorizationCodeGrant(cfg, new URL(cb.url), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
  });
  const claims = tokens.claims();
  assert.equal(claims.iss, lbUrl);
  const ui = await client.fetchUserInfo(cfg, tokens.access_token, claims.sub);
  assert.equal(ui.id_number, CITIZEN);
});

/** A password login through the proxy with openid-client: the tokens. */
async function passwordLogin(user, conf = cfg) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(conf, {
    redirect_uri: RP, scope: 'openid profile', state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const cb = await new HttpAgent().loginViaPages({ authorizeUrl: url, account: user.account, password: user.password, consent: true });
  assert.ok(redirectParams(cb).get('code'), `a code in ${cb}`);
  return client.authorizationCodeGrant(conf, new URL(cb), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
  });
}

/** Requests a node has answered for route (its /metrics, asked directly). */
async function answered(base, route) {
  const text = await (await fetch(`${base}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('isso_http_request_duration_seconds_count') && line.includes(`route="${route}"`)) {
      n += Number(line.split(' ').pop());
    }
  }
  return n;
}

const rows = (sql) => pg.psql(sql).split('\n').filter((l) => l !== '');

test('issoctl keys rotate: both nodes take up the new keys without a restart and sign with them', T, async () => {
  const kids = async (base) => (await (await fetch(`${base}/jwks`)).json()).keys.map((k) => k.kid).sort();
  const old = await kids(stack.issuer);
  assert.deepEqual(await kids(urlB), old, 'both nodes publish the same keys');
  await stack.issoctl(['keys', 'rotate']);
  const deadline = Date.now() + limit(10_000);
  let a;
  let b;
  for (;;) {
    a = await kids(stack.issuer);
    b = await kids(urlB);
    if (a.length === old.length + 2 && b.length === old.length + 2) break;
    assert.ok(Date.now() < deadline, `the new keys published by both nodes (A ${a.length}, B ${b.length}, before ${old.length})`);
    await sleep(200);
  }
  assert.deepEqual(b, a, 'the same set on both nodes');
  for (const k of old) assert.ok(a.includes(k), 'the retired keys stay published');
  const fresh = a.filter((k) => !old.includes(k));
  // a new relying-party configuration (its own JWK set cache); logins
  // through haproxy reach both nodes, and each ID token is signed with
  // the new ES256 key and verifies against the set either node serves
  const conf = await client.discovery(new URL(lbUrl), rp.client_id, { id_token_signed_response_alg: 'ES256' },
    client.ClientSecretBasic(rp.client_secret), { execute: [client.allowInsecureRequests], timeout: 15 });
  const before = { a: await answered(stack.issuer, '/token'), b: await answered(urlB, '/token') };
  for (let i = 0; i < 4; i++) {
    const u = await stack.addUser({
      account: `cluster.rot${i}`, password: `Tp-Cluster-Rotate-${i}-42`, phone: `09120004${String(10 + i)}`,
      email: `rot${i}@example.tw`, name: '林大同', birthdate: '1988-02-03',
    });
    const t = await passwordLogin(u, conf);
    const header = JSON.parse(Buffer.from(t.id_token.split('.')[0], 'base64url'));
    assert.ok(fresh.includes(header.kid), `ID token ${i} signed with a new key (${header.kid})`);
  }
  const after = { a: await answered(stack.issuer, '/token'), b: await answered(urlB, '/token') };
  assert.ok(after.a > before.a && after.b > before.b, `both nodes issued tokens: ${JSON.stringify({ before, after })}`);
});

test('two nodes ticking every second write at most one audit checkpoint per interval; the chain and its checkpoints verify on PostgreSQL', T, async () => {
  // a new row in each of several intervals, so both nodes have something
  // to anchor every second
  for (let i = 0; i < 4; i++) {
    await stack.addUser({ account: `cluster.audit${i}`, password: `Cluster-Audit-${i}-42`, phone: `093300000${i}`, name: `稽核${i}` });
    await new Promise((r) => setTimeout(r, 1100));
  }
  await new Promise((r) => setTimeout(r, 2500));
  const ts = rows("SELECT ts FROM audit WHERE event = 'audit_checkpoint' ORDER BY seq");
  assert.ok(ts.length >= 2, `checkpoints written (${ts.length})`);
  assert.equal(new Set(ts).size, ts.length, `never two checkpoints in one interval: ${ts.join(', ')}`);
  const head = rows("SELECT event FROM audit ORDER BY seq DESC LIMIT 1");
  assert.deepEqual(head, ['audit_checkpoint'], 'the newest rows are anchored');
  const report = await stack.issoctl(['audit', 'verify']);
  assert.equal(report.ok, true, JSON.stringify(report));
  assert.equal(report.checkpoints, ts.length);
  assert.equal(report.unanchored_rows, 0);
});

test('counter identification (CIBA) across the nodes: the poll interval is kept in the store, the app answers on the other node, the tokens come once', T, async () => {
  const CIBA = 'urn:openid:params:grant-type:ciba';
  const counter = await stack.registerClient({ name: '臨櫃 叢集', redirectUris: [RP], scope: 'openid uuid profile', grantTypes: [CIBA] });
  const member = citizens[7];
  const dev = await tpapp.enrolled(stack, member);
  const auth = `Basic ${Buffer.from(`${counter.client_id}:${counter.client_secret}`).toString('base64')}`;
  const form = async (base, p, body) => {
    const res = await fetch(`${base}${p}`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: auth },
      body: new URLSearchParams(body),
    });
    return { status: res.status, body: await res.json() };
  };
  const app = async (base, p, payload, body) => {
    const res = await fetch(`${base}${p}`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, device: dev.device, signature: tpapp.signJws(dev.privateKey, { device: dev.device, iat: Math.floor(Date.now() / 1000), ...payload }) }),
    });
    return { status: res.status, body: await res.json() };
  };
  const nodeA = stack.url('').replace(/\/$/, '');
  const start = await form(nodeA, '/bc-authorize', { scope: 'openid uuid profile', login_hint: member.account, binding_message: '叢集櫃台1' });
  assert.equal(start.status, 200, JSON.stringify(start.body));
  const poll = (base) => form(base, '/token', { grant_type: CIBA, auth_req_id: start.body.auth_req_id });
  assert.equal((await poll(nodeA)).body.error, 'authorization_pending');
  assert.equal((await poll(urlB)).body.error, 'slow_down', 'the other node knows of the last poll');

  const list = await app(urlB, '/app/v1/ciba/pending', { action: 'ciba_pending', jti: `cluster-${Date.now()}-jti` }, {});
  assert.equal(list.status, 200, JSON.stringify(list.body));
  assert.equal(list.body.requests.length, 1);
  const entry = list.body.requests[0];
  assert.equal(entry.binding_message, '叢集櫃台1');
  const yes = await app(urlB, '/app/v1/ciba/answer', { request: entry.request, decision: 'approve', nonce: entry.nonce }, { request: entry.request, decision: 'approve' });
  assert.equal(yes.status, 200, JSON.stringify(yes.body));
  const again = await app(nodeA, '/app/v1/ciba/answer', { request: entry.request, decision: 'deny', nonce: entry.nonce }, { request: entry.request, decision: 'deny' });
  assert.equal(again.status, 409, 'one answer, whichever node');

  await sleep(5500);
  const [a, b] = await Promise.all([poll(nodeA), poll(urlB)]);
  const won = [a, b].filter((r) => r.status === 200);
  assert.equal(won.length, 1, `tokens once: ${JSON.stringify([a.body, b.body])}`);
  const ui = await (await fetch(`${urlB}/userinfo`, { headers: { authorization: `Bearer ${won[0].body.access_token}` } })).json();
  assert.equal(ui.uuid, member.uuid);
});

/** POST /token of node base as the registered client (client_secret_basic):
 * {status, body}. */
async function tokenAt(base, params) {
  const auth = Buffer.from(`${encodeURIComponent(rp.client_id)}:${encodeURIComponent(rp.client_secret)}`).toString('base64');
  const res = await fetch(`${base}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${auth}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString(),
  });
  return { status: res.status, body: await res.json() };
}

/** The kind, used and revoked flags of every token of the grant of the
 * token whose value is value, sorted. */
function grantRows(value) {
  const hash = createHash('sha256').update(value).digest('hex');
  return rows(`SELECT kind || ' ' || used || ' ' || revoked FROM tokens WHERE grant_id = `
    + `(SELECT grant_id FROM tokens WHERE hash = '${hash}') ORDER BY 1`);
}

test('one code, and then one refresh token, redeemed on both nodes at once: one answer gets tokens, the other invalid_grant, the grant is revoked', T, async () => {
  const verifier = client.randomPKCECodeVerifier();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: RP, scope: 'openid profile', state: client.randomState(), nonce: client.randomNonce(),
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  // a citizen of its own: the test below counts the consents of the others
  const user = await stack.addUser({
    account: 'cluster.race', password: 'Tp-Cluster-Race-42', phone: '0912000399',
    email: 'race@example.tw', name: '林大同', birthdate: '1988-02-03',
  });
  const cb = await new HttpAgent().loginViaPages({ authorizeUrl: url, account: user.account, password: user.password, consent: true });
  const code = redirectParams(cb).get('code');
  assert.ok(code, `a code in ${cb}`);
  const redeem = { grant_type: 'authorization_code', code, redirect_uri: RP, code_verifier: verifier };
  const answers = await Promise.all([tokenAt(stack.issuer, redeem), tokenAt(urlB, redeem)]);
  const won = answers.filter((a) => a.status === 200);
  const lost = answers.filter((a) => a.status !== 200);
  assert.equal(won.length, 1, `one redeem wins: ${JSON.stringify(answers)}`);
  assert.equal(lost.length, 1);
  assert.equal(lost[0].status, 400);
  assert.equal(lost[0].body.error, 'invalid_grant');
  assert.ok(won[0].body.access_token && won[0].body.refresh_token && won[0].body.id_token);
  // the code spent once, the winner's access and refresh token only, and
  // all of it revoked by the replay
  assert.deepEqual(grantRows(won[0].body.access_token), ['1 1 1', '2 0 1', '3 0 1']);

  // a second login's refresh token rotated on both nodes at once
  const tokens = await passwordLogin(user);
  const refresh = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token };
  const again = await Promise.all([tokenAt(stack.issuer, refresh), tokenAt(urlB, refresh)]);
  const rotated = again.filter((a) => a.status === 200);
  assert.equal(rotated.length, 1, `one rotation wins: ${JSON.stringify(again)}`);
  assert.equal(again.find((a) => a.status !== 200).body.error, 'invalid_grant');
  // code, the first access token, the second, the old refresh token
  // (used) and one successor: every one revoked
  assert.deepEqual(grantRows(tokens.access_token), ['1 1 1', '2 0 1', '2 0 1', '3 0 1', '3 1 1']);
  const after = await tokenAt(urlB, { grant_type: 'refresh_token', refresh_token: rotated[0].body.refresh_token });
  assert.equal(after.status, 400, 'the successor went with the grant');
});

test('a client_credentials token sealed on one node opens on the other; a revocation on either holds on both', T, async () => {
  const svc = await stack.registerClient({
    name: '臺北市測試機關 批次', redirectUris: [RP], scope: 'openid', grantTypes: ['client_credentials'],
  });
  const auth = `Basic ${Buffer.from(`${encodeURIComponent(svc.client_id)}:${encodeURIComponent(svc.client_secret)}`).toString('base64')}`;
  const at = async (base, p, params) => {
    const res = await fetch(`${base}${p}`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params).toString(),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : {} };
  };
  const fromA = await at(stack.issuer, '/token', { grant_type: 'client_credentials' });
  const fromB = await at(urlB, '/token', { grant_type: 'client_credentials' });
  assert.equal(fromA.status, 200, JSON.stringify(fromA.body));
  assert.equal(fromB.status, 200, JSON.stringify(fromB.body));
  assert.match(fromA.body.access_token, /^isso_at1_/);
  for (const [base, token] of [[urlB, fromA.body.access_token], [stack.issuer, fromB.body.access_token]]) {
    const i = await at(base, '/introspect', { token });
    assert.equal(i.body.active, true, `opens on ${base}`);
    assert.equal(i.body.client_id, svc.client_id);
  }
  // revoked on B: inactive on A at once (the marker is in the store)
  assert.equal((await at(urlB, '/revoke', { token: fromA.body.access_token })).status, 200);
  assert.equal((await at(stack.issuer, '/introspect', { token: fromA.body.access_token })).body.active, false);
  assert.equal((await at(urlB, '/introspect', { token: fromA.body.access_token })).body.active, false);
  assert.equal((await at(stack.issuer, '/introspect', { token: fromB.body.access_token })).body.active, true);
});

test('through haproxy: logins alternate between the nodes; kill -9 of one loses no committed row, the logins in flight finish on the other', T, async () => {
  const clientId = cfg.clientMetadata().client_id;
  const consents0 = rows(`SELECT uuid FROM consents WHERE client_id = '${clientId}'`).length;
  const before = { a: await answered(stack.issuer, '/authorize'), b: await answered(urlB, '/authorize') };
  const first = [];
  for (const u of citizens.slice(0, 2)) first.push(await passwordLogin(u));
  const after1 = { a: await answered(stack.issuer, '/authorize'), b: await answered(urlB, '/authorize') };
  assert.ok(after1.a > before.a && after1.b > before.b, `both nodes served the logins: ${JSON.stringify({ before, after1 })}`);

  // what is committed before the kill
  const tokens = rows('SELECT hash FROM tokens ORDER BY hash');
  const audit = rows('SELECT seq || \' \' || hash FROM audit ORDER BY seq');
  const consents = rows(`SELECT uuid FROM consents WHERE client_id = '${clientId}' ORDER BY uuid`);
  assert.ok(tokens.length >= 4, `${tokens.length} token rows before the kill`);
  assert.ok(audit.length >= 2, `${audit.length} audit rows before the kill`);
  assert.equal(consents.length, consents0 + 2, 'the two consents before the kill');

  // six logins at once; node B killed while they run
  let finished = 0;
  const inFlight = citizens.slice(2).map((u) => passwordLogin(u).finally(() => { finished += 1; }));
  await sleep(150);
  nodeB.child.kill('SIGKILL');
  const atKill = finished;
  const results = await Promise.allSettled(inFlight);
  for (const [i, r] of results.entries()) {
    assert.equal(r.status, 'fulfilled', `citizen ${i + 2}: ${r.reason?.stack ?? ''}`);
  }
  assert.equal(nodeB.running, false, 'node B is gone');
  assert.ok(atKill < inFlight.length, `logins were in flight at the kill (${atKill} of ${inFlight.length} done)`);
  // Let haproxy mark B down (checks every 300 ms, down after two) and
  // close the client connections it had tied to B: a POST sent on such a
  // connection just as haproxy closes it fails in the client (undici does
  // not resend a POST), which is the client's network, not a lost row.
  await sleep(1500);

  // every committed row is still there
  const tokensAfter = new Set(rows('SELECT hash FROM tokens'));
  for (const h of tokens) assert.ok(tokensAfter.has(h), 'a token row survived');
  const auditAfter = new Set(rows('SELECT seq || \' \' || hash FROM audit'));
  for (const a of audit) assert.ok(auditAfter.has(a), 'an audit row survived');
  const consentsAfter = rows(`SELECT uuid FROM consents WHERE client_id = '${clientId}'`);
  for (const c of consents) assert.ok(consentsAfter.includes(c), 'a consent survived');
  assert.equal(consentsAfter.length, consents0 + citizens.length, 'one consent per citizen');
  // and the tokens issued before the kill still work, through node A
  for (const t of [...first, ...results.map((r) => r.value)]) {
    const claims = t.claims();
    const ui = await client.fetchUserInfo(cfg, t.access_token, claims.sub);
    assert.equal(ui.sub, claims.sub);
  }
  const again = await client.refreshTokenGrant(cfg, first[0].refresh_token ?? '');
  assert.ok(again.access_token);
});
