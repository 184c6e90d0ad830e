// Cookies: with an https issuer every issod cookie is Secure and
// __Host-prefixed (Path=/, no Domain), whether or not the TLS proxy says
// X-Forwarded-Proto; a cookie without the prefix is not read. With a
// loopback http issuer (development) they are plain. Every cookie is
// SameSite=Lax: the binding and session cookies must come along on the
// top-level GET navigation from an agency to /authorize. An agency page's
// cross-site POST to /logout carries no Lax cookie, so issod turns it into
// the same request as a GET, which does.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  CookieJar, HttpAgent, limit, redirectParams, sameEndpoint, startStack, startTestServer,
} from './lib/harness.mjs';
import { NO_BROWSER, axeCheck, launchBrowser, newPage } from './lib/browser.mjs';

const T = { timeout: limit(60_000) };
const RP = 'http://127.0.0.1:9/cb';
const BYE = 'http://127.0.0.1:9/bye';
const HTTPS_ISSUER = 'https://localhost';
const PASSWORD = 'Tp-Cookie-Jar-77a';

/** A browser behind the TLS proxy: issod is spoken to directly, with or
 * without the proxy's X-Forwarded-Proto, and Secure cookies are sent back
 * as a browser on the https origin would. Keeps every Set-Cookie seen. */
class ProxiedAgent extends HttpAgent {
  constructor(proto) {
    super();
    this.proto = proto;
    this.setCookies = [];
    const jar = this.jar;
    jar.header = (url) => CookieJar.prototype.header.call(jar, String(url).replace(/^http:/, 'https:'));
  }

  async request(url, opts = {}) {
    const headers = { ...(opts.headers ?? {}) };
    if (this.proto) headers['x-forwarded-proto'] = this.proto;
    const res = await super.request(url, { ...opts, headers });
    this.setCookies.push(...res.headers.getSetCookie());
    return res;
  }
}

function authorizeUrl(stack, clientId) {
  const q = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: RP, scope: 'openid',
    state: crypto.randomBytes(8).toString('hex'), nonce: crypto.randomBytes(8).toString('hex'),
    code_challenge: crypto.createHash('sha256').update('v'.repeat(43)).digest('base64url'),
    code_challenge_method: 'S256',
  });
  return stack.url(`/authorize?${q}`);
}

const COOKIE_NAMES = new Set(['isso_bind', 'isso_sid', 'isso_b', 'isso_lang', 'isso_login_lang', 'isso_dev']);
// The device cookie is only ever read by a same-site POST of the login form.
const STRICT = new Set(['isso_dev']);

/** Checks one Set-Cookie line; returns its bare name. */
function checkCookie(line, { secure }) {
  const [pair, ...attrs] = line.split(';').map((s) => s.trim());
  const name = pair.slice(0, pair.indexOf('='));
  const lower = attrs.map((a) => a.toLowerCase());
  assert.ok(lower.includes('path=/'), `Path=/: ${line}`);
  assert.ok(!lower.some((a) => a.startsWith('domain')), `no Domain: ${line}`);
  const bare = name.replace(/^__Host-/, '');
  const sameSite = STRICT.has(bare) ? 'samesite=strict' : 'samesite=lax';
  assert.ok(lower.includes(sameSite), `${sameSite}: ${line}`);
  if (secure) {
    assert.ok(name.startsWith('__Host-'), `__Host- prefix: ${line}`);
    assert.ok(lower.includes('secure'), `Secure: ${line}`);
  } else {
    assert.ok(!name.startsWith('__Host-'), `no prefix on http: ${line}`);
    assert.ok(!lower.includes('secure'), `not Secure on http: ${line}`);
  }
  assert.ok(COOKIE_NAMES.has(bare), `a known cookie: ${line}`);
  if (bare !== 'isso_lang') assert.ok(lower.includes('httponly'), `HttpOnly: ${line}`);
  return bare;
}

let secure; // issuer https://localhost behind a trusted proxy
let plain; // the loopback http test configuration
let secureClient;
let plainClient;
let secureUser;
let plainUser;

before(async () => {
  secure = await startStack({
    label: 'cookies-https',
    env: { ISSO_SERVER_PUBLIC_URL: HTTPS_ISSUER, ISSO_SERVER_TRUST_PROXY: '1' },
  });
  plain = await startStack({ label: 'cookies-http' });
  secureClient = await secure.registerClient({ redirectUris: [RP], postLogoutRedirectUri: BYE });
  plainClient = await plain.registerClient({ redirectUris: [RP], postLogoutRedirectUri: BYE });
  secureUser = await secure.addUser({ account: 'cookie.citizen', password: PASSWORD });
  plainUser = await plain.addUser({ account: 'cookie.citizen', password: PASSWORD });
}, { timeout: limit(60_000) });

after(async () => {
  if (secure) await secure.stop();
  if (plain) await plain.stop();
});

for (const proto of ['https', null]) {
  const how = proto ? 'behind a proxy that says X-Forwarded-Proto: https' : 'without X-Forwarded-Proto';
  test(`https issuer, ${how}: __Host-, Secure cookies through a whole login and SSO`, T, async () => {
    const meta = await (await fetch(secure.url('/.well-known/openid-configuration'))).json();
    assert.equal(meta.issuer, HTTPS_ISSUER);
    const agent = new ProxiedAgent(proto);
    const first = await agent.get(authorizeUrl(secure, secureClient.client_id));
    assert.equal(first.status, 303);
    const bind = first.headers.getSetCookie();
    assert.equal(bind.length, 1, 'the binding cookie');
    assert.match(bind[0], /^__Host-isso_bind=[A-Za-z0-9_-]{20,}; Path=\/; HttpOnly; SameSite=Lax; Secure$/);

    const cb = await agent.loginViaPages({
      authorizeUrl: authorizeUrl(secure, secureClient.client_id), account: secureUser.account, password: PASSWORD,
    });
    assert.ok(sameEndpoint(cb, RP) && redirectParams(cb).get('code'), `a code: ${cb}`);
    const names = new Set(agent.setCookies.map((l) => checkCookie(l, { secure: true })));
    for (const n of ['isso_bind', 'isso_sid', 'isso_b']) assert.ok(names.has(n), `${n} was set: ${[...names]}`);

    // single sign-on: the __Host- session cookie is read back
    const again = await agent.followUntil(authorizeUrl(secure, secureClient.client_id), (next) => sameEndpoint(next, RP));
    assert.ok(again.stopped, 'SSO went straight back to the agency');

    // the same session cookie without its prefix is not the session
    const sid = agent.jar.get('__Host-isso_sid');
    assert.ok(sid);
    const bare = new ProxiedAgent(proto);
    const r = await bare.followUntil(authorizeUrl(secure, secureClient.client_id), () => false,
      { headers: { cookie: `isso_sid=${sid}` } });
    assert.equal(r.res.status, 200, `${r.url}: ${r.res.status}`);
    assert.equal(new URL(r.url).pathname, '/login', 'an unprefixed session cookie asks for a login again');
  });
}

test('loopback http issuer: plain cookies, not Secure', T, async () => {
  const agent = new ProxiedAgent(null);
  const cb = await agent.loginViaPages({
    authorizeUrl: authorizeUrl(plain, plainClient.client_id), account: plainUser.account, password: PASSWORD,
  });
  assert.ok(redirectParams(cb).get('code'));
  const names = new Set(agent.setCookies.map((l) => checkCookie(l, { secure: false })));
  for (const n of ['isso_bind', 'isso_sid', 'isso_b']) assert.ok(names.has(n), `${n} was set`);
});

test('an agency page POSTing to /logout (no Lax cookie) is sent on as a GET that ends the session', T, async () => {
  for (const [stack, c, user, mk] of [
    [secure, secureClient, secureUser, () => new ProxiedAgent('https')],
    [plain, plainClient, plainUser, () => new ProxiedAgent(null)],
  ]) {
    const agent = mk();
    await agent.loginViaPages({ authorizeUrl: authorizeUrl(stack, c.client_id), account: user.account, password: PASSWORD });
    // the cross-site POST: the browser sends no cookie with it
    const post = await agent.postForm(stack.url('/logout'),
      { client_id: c.client_id, post_logout_redirect_uri: BYE, state: 's t&1' },
      { headers: { cookie: '' } });
    assert.equal(post.status, 303);
    const loc = new URL(post.location);
    assert.equal(loc.pathname, '/logout');
    assert.equal(loc.searchParams.get('client_id'), c.client_id);
    assert.equal(loc.searchParams.get('post_logout_redirect_uri'), BYE);
    assert.equal(loc.searchParams.get('state'), 's t&1');
    // the GET carries the session: the citizen confirms, the session ends
    const out = await agent.logoutViaPages(post.location, { postLogoutRedirectUri: BYE });
    assert.ok(out.redirect && sameEndpoint(out.redirect, BYE), `back to the agency: ${out.redirect}`);
    assert.equal(new URL(out.redirect).searchParams.get('state'), 's t&1');
    const after = await agent.followUntil(authorizeUrl(stack, c.client_id), (next) => sameEndpoint(next, RP));
    assert.ok(!after.stopped, 'the session is gone: no SSO');
    // with the session cookie, a POST is handled at once (no detour)
    const again = mk();
    await again.loginViaPages({ authorizeUrl: authorizeUrl(stack, c.client_id), account: user.account, password: PASSWORD });
    const direct = await again.postForm(stack.url('/logout'), { client_id: c.client_id });
    assert.equal(direct.status, 200, 'the confirmation page, not a redirect');
  }
});

test('an agency form POSTing to /authorize (no Lax cookie) is sent on as a GET that keeps single sign-on', T, async () => {
  const agent = new ProxiedAgent('https');
  await agent.loginViaPages({
    authorizeUrl: authorizeUrl(secure, secureClient.client_id), account: secureUser.account, password: PASSWORD,
  });
  const url = new URL(authorizeUrl(secure, secureClient.client_id));
  const params = [...url.searchParams.entries()];
  const post = await agent.postForm(secure.url('/authorize'), params, { headers: { cookie: '' } });
  assert.equal(post.status, 303);
  const loc = new URL(post.location);
  assert.equal(loc.pathname, '/authorize');
  assert.deepEqual([...loc.searchParams.entries()], params, 'every parameter, in order');
  // the GET carries the session: straight back to the agency with a code
  const r = await agent.followUntil(post.location, (next) => sameEndpoint(next, RP));
  assert.ok(r.stopped && redirectParams(r.url).get('code'), 'single sign-on kept');
  // the existing API's path too
  const old = await agent.postForm(secure.url('/isso/oauth2/authorize'), params, { headers: { cookie: '' } });
  assert.equal(old.status, 303);
  assert.equal(new URL(old.location).pathname, '/isso/oauth2/authorize');
});

// The same in Chromium, where SameSite is real: the agency's site is
// http://localhost:PORT, issod is http://127.0.0.1:PORT (another site).
test('Chromium: an agency page on another site POSTs to /logout and the citizen is logged out', { ...T, skip: NO_BROWSER }, async () => {
  const agency = await startTestServer((req, body, res) => {
    const u = new URL(req.url, 'http://localhost');
    res.setHeader('content-type', 'text/html; charset=utf-8');
    if (u.pathname === '/logout-form') {
      res.end(`<!doctype html><html lang="en"><head><title>Agency</title></head><body><main>
<form method="post" action="${plain.url('/logout')}">
<input type="hidden" name="client_id" value="${browserClient.client_id}">
<input type="hidden" name="post_logout_redirect_uri" value="${agencyBase}/bye">
<input type="hidden" name="state" value="st-9">
<button type="submit">Log out of iSSO</button></form></main></body></html>`);
    } else {
      res.end(`<!doctype html><html lang="en"><head><title>Agency ${u.pathname}</title></head><body><main><p>${u.pathname}</p></main></body></html>`);
    }
  });
  const agencyBase = `http://localhost:${agency.port}`;
  const browserClient = await plain.registerClient({
    redirectUris: [`${agencyBase}/cb`], postLogoutRedirectUri: `${agencyBase}/bye`,
  });
  const browser = await launchBrowser();
  try {
    const { context, page } = await newPage(browser, { locale: 'zh-TW' });
    const authz = () => {
      const q = new URLSearchParams({
        response_type: 'code', client_id: browserClient.client_id, redirect_uri: `${agencyBase}/cb`,
        scope: 'openid', state: 'st-1', nonce: 'n-1',
        code_challenge: crypto.createHash('sha256').update('v'.repeat(43)).digest('base64url'),
        code_challenge_method: 'S256',
      });
      return plain.url(`/authorize?${q}`);
    };
    await page.goto(authz());
    await page.locator('a[href*="/login/taipeipass"]').first().click();
    await page.locator('input[name="account"]').fill(plainUser.account);
    await page.locator('input[name="password"]').fill(PASSWORD);
    await page.getByRole('button', { name: '登入', exact: true }).click();
    await page.locator('button[value="allow"]').click();
    await page.waitForURL((u) => u.origin === agencyBase && u.pathname === '/cb');

    // the agency's form: Chromium sends no session cookie with the POST
    let postCookie = null;
    page.on('request', async (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === '/logout') postCookie = (await r.allHeaders()).cookie ?? '';
    });
    await page.goto(`${agencyBase}/logout-form`);
    await page.getByRole('button', { name: 'Log out of iSSO' }).click();
    await page.waitForURL((u) => u.origin === new URL(plain.issuer).origin && u.pathname === '/logout');
    assert.ok(postCookie !== null && !postCookie.includes('isso_sid'), `the cross-site POST carried no session cookie: ${postCookie}`);
    // …yet the session was found: the citizen is asked to confirm
    await page.locator('button[name="confirm"]').waitFor();
    await axeCheck(page, 'the logout confirmation');
    await page.locator('button[name="confirm"]').click();
    await page.waitForURL((u) => u.origin === agencyBase && u.pathname === '/bye');
    assert.equal(new URL(page.url()).searchParams.get('state'), 'st-9');
    // logged out: the next login asks for the password again
    await page.goto(authz());
    await page.waitForURL((u) => u.pathname === '/login');
    await context.close();
  } finally {
    await browser.close();
    await agency.close();
  }
});
