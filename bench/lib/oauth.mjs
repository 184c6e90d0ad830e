// The load driver's side of OAuth: keep-alive HTTP through undici, PKCE,
// the token endpoint, and a browser-less walk through a server's login
// pages (the integration harness's HttpAgent: cookie jar, form parsing)
// that works on both servers: method choice -> password form -> consent.

import crypto from 'node:crypto';
import { Agent, fetch, request, setGlobalDispatcher } from 'undici';
import { HttpAgent, sameEndpoint } from '../../tests/integration/lib/harness.mjs';

// Every request of the driver (HttpAgent uses the global fetch) goes
// through one keep-alive undici agent.
setGlobalDispatcher(new Agent({ keepAliveTimeout: 30_000, connections: 256, pipelining: 1 }));
globalThis.fetch = fetch;

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** {url, verifier, state} of an authorization request with PKCE S256. */
export function authRequest(t, scope) {
  const verifier = b64url(crypto.randomBytes(32));
  const state = b64url(crypto.randomBytes(12));
  const u = new URL(t.md.authorization_endpoint);
  u.search = new URLSearchParams({
    response_type: 'code',
    client_id: t.client.client_id,
    redirect_uri: t.client.redirect_uri,
    scope,
    state,
    nonce: b64url(crypto.randomBytes(12)),
    code_challenge: b64url(crypto.createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
  }).toString();
  return { url: u.href, verifier, state };
}

/** POST to an endpoint with the client's Basic authentication; returns
 * the parsed JSON, throwing unless the status is 200. */
export async function postForm(t, url, form) {
  const res = await request(url, {
    method: 'POST',
    headers: { authorization: t.basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** Exchanges the code in callback url cb; checks state and the answer. */
export async function redeem(t, a, cb) {
  const p = new URL(cb).searchParams;
  if (p.get('state') !== a.state) throw new Error(`state mismatch in ${cb}`);
  const code = p.get('code');
  if (!code) throw new Error(`no code in ${cb}`);
  const tok = await postForm(t, t.md.token_endpoint, {
    grant_type: 'authorization_code', code, redirect_uri: t.client.redirect_uri, code_verifier: a.verifier,
  });
  if (!tok.access_token || !tok.id_token) throw new Error(`token answer without access_token/id_token: ${Object.keys(tok)}`);
  return tok;
}

/**
 * Walks agent from an authorization URL to the client: the method choice
 * (t.chooseLink picks the password method), the password form, the
 * consent (allow). Returns the callback URL (never requested).
 */
export async function walkLogin(t, agent, authorizeUrl, who) {
  const isClient = (next) => sameEndpoint(next, t.client.redirect_uri);
  let req = { url: authorizeUrl, method: 'GET' };
  let loggedIn = false;
  for (let step = 0; step < 8; step++) {
    const r = await agent.followUntil(req.url, isClient, req);
    if (r.stopped) return r.url;
    const res = r.res;
    if (res.status >= 400) throw new Error(`${res.status} at ${r.url}: ${res.pageText().slice(0, 300)}`);
    const forms = res.forms();
    const login = forms.find((f) => f.controls.some((c) => c.name === 'password'));
    const consent = forms.find((f) => f.controls.some((c) => c.name === 'decision'));
    if (login) {
      if (loggedIn || !who) throw new Error(`login form at ${r.url}: ${res.alerts().join(' | ')}`);
      req = agent.formRequest(login, { account: who.account, password: who.password });
      loggedIn = true;
    } else if (consent) {
      const allow = consent.buttons.find((b) => b.name === 'decision' && b.value === 'allow');
      req = agent.formRequest(consent, {}, allow);
    } else {
      const pick = res.links().find((l) => l.href && t.chooseLink(l.href));
      if (!pick) throw new Error(`unexpected page ${res.status} at ${r.url}: ${res.pageText().slice(0, 300)}`);
      req = { url: pick.href, method: 'GET' };
    }
  }
  throw new Error('no redirect to the client after 8 pages');
}

/** A fresh browser (empty cookie jar). */
export function newAgent() {
  return new HttpAgent({ userAgent: 'isso-bench', timeoutMs: 30_000 });
}

/** A whole password login through the pages and the code exchange, in a
 * fresh browser; returns {agent, tokens}. */
export async function passwordLogin(t, who, scope) {
  const agent = newAgent();
  const a = authRequest(t, scope);
  const cb = await walkLogin(t, agent, a.url, who);
  return { agent, tokens: await redeem(t, a, cb) };
}

/** Single sign-on with agent's session: /authorize answers with the code
 * at once (no page); then the code exchange. */
export async function ssoLogin(t, agent, scope) {
  const a = authRequest(t, scope);
  let url = a.url;
  for (let hop = 0; hop < 4; hop++) {
    const res = await request(url, { headers: { cookie: agent.jar.header(url), 'user-agent': agent.userAgent } });
    await res.body.dump();
    const setCookie = res.headers['set-cookie'];
    if (setCookie) agent.jar.store(url, Array.isArray(setCookie) ? setCookie : [setCookie]);
    const loc = res.headers.location;
    if (res.statusCode < 300 || res.statusCode > 399 || !loc) {
      throw new Error(`SSO showed a page (${res.statusCode} at ${url}) instead of the code`);
    }
    url = new URL(loc, url).href;
    if (sameEndpoint(url, t.client.redirect_uri)) return redeem(t, a, url);
  }
  throw new Error('SSO: too many redirects');
}
