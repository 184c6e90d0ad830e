// issod on PostgreSQL (store.driver = postgresql): a full login with
// openid-client, and a PostgreSQL restart in the middle that issod rides
// out without a restart of its own: during the outage a clear 503 (page
// in zh-TW or English, or the OAuth JSON error), afterwards every committed row still there and logins
// working again. The cluster is a throwaway one (lib/pgsql.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as client from 'openid-client';
import * as jose from 'jose';
import { startStack, HttpAgent, redirectParams, limit, REPO } from './lib/harness.mjs';
import { Postgres } from './lib/pgsql.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted: the agent stops at it
const T = { timeout: limit(30_000) };
const ZH = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'zh-TW.json'), 'utf8'));
const EN = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'en.json'), 'utf8'));

let pg;
let stack;
let user;
let rp;
let cfg;

async function codeFlow(agent) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: RP, scope: 'openid profile', state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const cb = await agent.loginViaPages({ authorizeUrl: url, account: user.account, password: user.password, consent: true });
  assert.ok(redirectParams(cb).get('code'), `a code in ${cb}`);
  return client.authorizationCodeGrant(cfg, new URL(cb), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
  });
}

async function fetchText(url, init = {}) {
  const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(15_000), ...init });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

before(async () => {
  pg = new Postgres().init();
  stack = await startStack({
    label: 'pgsql',
    // the client stays cached through the outage below, so the token
    // endpoint gets past client authentication to the token's own lookup
    env: { ISSO_STORE_DRIVER: 'postgresql', ISSO_STORE_CONNINFO: pg.conninfo, ISSO_STORE_CLIENT_CACHE_MS: '60000' },
  });
  user = await stack.addUser({
    account: 'pg.citizen', password: 'Tp-Postgres-Login-42', phone: '0912000111',
    email: 'pg@example.tw', name: '林大同', idNumber: 'A123456789', birthdate: '1988-02-03',
  });
  rp = await stack.registerClient({ name: '臺北市測試機關 PG', redirectUris: [RP], scope: 'openid profile' });
  cfg = await client.discovery(new URL(stack.issuer), rp.client_id, { id_token_signed_response_alg: 'ES256' },
    client.ClientSecretBasic(rp.client_secret), { execute: [client.allowInsecureRequests], timeout: 15 });
}, { timeout: limit(60_000) });

after(async () => {
  if (stack) await stack.stop({ check: false });
  if (pg) pg.destroy();
});

test('a full login with openid-client, every row in PostgreSQL', T, async () => {
  const tokens = await codeFlow(new HttpAgent());
  const claims = tokens.claims();
  assert.equal(claims.iss, stack.issuer);
  assert.equal(claims.acr, 'urn:isso:loa:low');
  const info = await client.fetchUserInfo(cfg, tokens.access_token, claims.sub);
  assert.equal(info.sub, claims.sub);
  assert.ok(tokens.refresh_token, 'a refresh token');
  const again = await client.refreshTokenGrant(cfg, tokens.refresh_token);
  assert.ok(again.access_token && again.access_token !== tokens.access_token);

  // The rows are in PostgreSQL, and no SQLite file was made.
  assert.ok(Number(pg.psql("SELECT count(*) FROM tokens WHERE kind = 3")) >= 2, 'refresh tokens stored');
  assert.equal(pg.psql(`SELECT scope FROM consents WHERE client_id = '${rp.client_id.replace(/'/g, '')}'`), 'openid profile');
  assert.ok(Number(pg.psql('SELECT count(*) FROM signing_keys')) >= 2, 'signing keys stored');
  assert.ok(Number(pg.psql('SELECT count(*) FROM audit')) >= 1, 'audit rows stored');
  assert.equal(fs.existsSync(path.join(stack.tmp, 'isso.db')), false);
});

test('PAR and DPoP on PostgreSQL: request_uri once, each proof once, the binding kept', T, async () => {
  const md = await stack.metadata();
  const key = await jose.generateKeyPair('ES256', { extractable: true });
  const jwk = await jose.exportJWK(key.publicKey);
  const dpop = client.getDPoPHandle(cfg, key);
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = await client.buildAuthorizationUrlWithPAR(cfg, {
    redirect_uri: RP, scope: 'openid profile', state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  }, { DPoP: dpop });
  const cb = await new HttpAgent().loginViaPages({ authorizeUrl: url, account: user.account, password: user.password });
  const tokens = await client.authorizationCodeGrant(cfg, new URL(cb), { pkceCodeVerifier: verifier, expectedState: state },
    undefined, { DPoP: dpop });
  assert.match(tokens.token_type, /^dpop$/i);
  assert.equal((await fetchText(url.href)).status, 400, 'the request_uri was used up');
  const at = tokens.access_token;
  const proof = await new jose.SignJWT({
    htm: 'GET', htu: md.userinfo_endpoint, iat: Math.floor(Date.now() / 1000), jti: crypto.randomUUID(),
    ath: crypto.createHash('sha256').update(at).digest('base64url'),
  }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).sign(key.privateKey);
  const headers = { authorization: `DPoP ${at}`, dpop: proof };
  assert.equal((await fetchText(md.userinfo_endpoint, { headers })).status, 200);
  const replayed = await fetchText(md.userinfo_endpoint, { headers });
  assert.equal(replayed.status, 401);
  assert.match(replayed.headers.get('www-authenticate') || '', /invalid_dpop_proof/);
  assert.equal((await fetchText(md.userinfo_endpoint, { headers: { authorization: `Bearer ${at}` } })).status, 401);
  assert.ok(Number(pg.psql("SELECT count(*) FROM eph WHERE kind = 'dpop_jti'")) >= 3, 'proof jtis in PostgreSQL');
  assert.equal(Number(pg.psql("SELECT count(*) FROM eph WHERE kind = 'par'")), 0, 'the pushed request was taken');
});

test('PostgreSQL restarted mid-way: 503 meanwhile, recovery without restarting issod', T, async () => {
  const before = await codeFlow(new HttpAgent());
  const pid = stack.issod.child.pid;

  pg.stop();
  try {
    // A citizen arriving now gets a clear page, zh-TW first, then English.
    const authUrl = client.buildAuthorizationUrl(cfg, {
      redirect_uri: RP, scope: 'openid', state: client.randomState(), nonce: client.randomNonce(),
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const page = await fetchText(authUrl.href);
    assert.equal(page.status, 503, `authorize during the outage: ${page.status}`);
    assert.match(page.headers.get('content-type'), /^text\/html/);
    assert.ok(page.text.includes(ZH['error.unavailable']), 'the zh-TW title');
    assert.ok(page.text.includes(ZH['error.unavailable.message']), 'the zh-TW message');
    const en = await fetchText(authUrl.href, { headers: { 'accept-language': 'en' } });
    assert.equal(en.status, 503);
    assert.ok(en.text.includes(EN['error.unavailable']), 'the English title');

    // An agency's back end gets the OAuth error, not a hang or a 500.
    const basic = Buffer.from(`${encodeURIComponent(rp.client_id)}:${encodeURIComponent(rp.client_secret)}`).toString('base64');
    const tok = await fetchText(`${stack.issuer}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: before.refresh_token }),
    });
    assert.equal(tok.status, 503, `token during the outage: ${tok.status} ${tok.text}`);
    assert.equal(tok.json?.error, 'temporarily_unavailable');
    assert.match(tok.headers.get('content-type'), /^application\/json/);
    // The client itself may come from issod's cache: the token's lookup
    // failing is still no verdict on the token. Nor is a revocation that
    // could not be written taken as done (RFC 7009 §2.2.1).
    for (const p of ['/introspect', '/revoke']) {
      const r = await fetchText(`${stack.issuer}${p}`, {
        method: 'POST',
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: before.refresh_token }),
      });
      assert.equal(r.status, 503, `${p} during the outage: ${r.status} ${r.text}`);
      assert.equal(r.json?.error, 'temporarily_unavailable');
    }
    const ui = await fetchText(`${stack.issuer}/userinfo`, { headers: { authorization: `Bearer ${before.access_token}` } });
    assert.equal(ui.status, 503, `UserInfo during the outage: ${ui.status} ${ui.text}`);
  } finally {
    pg.start();
  }

  // The same issod process, and what was committed before is still there.
  assert.equal(stack.issod.running, true);
  assert.equal(stack.issod.child.pid, pid);
  const refreshed = await client.refreshTokenGrant(cfg, before.refresh_token);
  assert.ok(refreshed.access_token);
  const info = await client.fetchUserInfo(cfg, refreshed.access_token, before.claims().sub);
  assert.equal(info.sub, before.claims().sub);
  // And a whole new login goes through.
  const after = await codeFlow(new HttpAgent());
  assert.equal(after.claims().sub, before.claims().sub);
});

test('issod is still healthy and stops cleanly on SIGTERM', T, async () => {
  assert.ok(await stack.healthy());
  const s = stack;
  stack = null;
  await s.stop();
});
