// Two issod nodes on one PostgreSQL store (lib/pgsql.mjs, a throwaway
// cluster), both answering for the same issuer, no sticky sessions: a
// mobile natural-person certificate (moica-mobile) login started on node
// A whose status is asked of both nodes at once, many times a second, for
// longer than two TW FidO poll intervals. isso-sim records every ATH-02
// poll: all nodes together must poll the transaction at most once every
// 4 s (the turn is taken in the store, src/auth/methods/moica-mobile.c).
// The login then completes on node B (phone + SMS code + consent) and its
// code is redeemed through node A with openid-client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as client from 'openid-client';
import {
  startStack, HttpAgent, Daemon, waitReady, freePort, BUILD_DIR, redirectParams, sameEndpoint,
  sleep, limit,
} from './lib/harness.mjs';
import { Postgres } from './lib/pgsql.mjs';

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

const isRp = (next) => sameEndpoint(next, RP);
const pathOf = (url) => new URL(url).pathname;
const tOf = (url) => new URL(url).searchParams.get('t');

before(async () => {
  pg = new Postgres().init();
  stack = await startStack({
    label: 'cluster',
    env: { ISSO_STORE_DRIVER: 'postgresql', ISSO_STORE_CONNINFO: pg.conninfo },
  });
  // node B: the same configuration and store, its own port; the public
  // URL stays the one both nodes serve (as behind a proxy)
  const portB = await freePort();
  urlB = `http://127.0.0.1:${portB}`;
  nodeB = new Daemon('issod-b', path.join(BUILD_DIR, 'issod'), [],
    { env: { ...stack.env, ISSO_SERVER_PORT: String(portB) }, cwd: stack.tmp });
  await waitReady(nodeB, `${urlB}/.well-known/openid-configuration`);
  const c = await stack.registerClient({
    name: '臺北市測試機關 叢集', purpose: '多節點整合測試', redirectUris: [RP], scope: SCOPE,
  });
  cfg = await client.discovery(new URL(stack.issuer), c.client_id, { id_token_signed_response_alg: 'ES256' },
    client.ClientSecretBasic(c.client_secret), { execute: [client.allowInsecureRequests], timeout: 15 });
}, { timeout: limit(90_000) });

after(async () => {
  if (nodeB) {
    const r = await nodeB.stop();
    if (r.killed || r.code !== 0) console.error(nodeB.stderr.slice(-4000));
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

  // redeemed through node A
  const tokens = await client.authorizationCodeGrant(cfg, new URL(cb.url), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
  });
  const claims = tokens.claims();
  assert.equal(claims.iss, stack.issuer);
  const ui = await client.fetchUserInfo(cfg, tokens.access_token, claims.sub);
  assert.equal(ui.id_number, CITIZEN);
});
