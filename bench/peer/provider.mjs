// The benchmark's peer: node oidc-provider (pinned in bench/package.json)
// configured like issod as far as the two compare — ES256 ID tokens, one
// confidential client_secret_basic client with the code, refresh and
// client_credentials grants, PKCE, refresh-token rotation, the same
// scopes, introspection, the same token lifetimes — with a login of its
// own: a method-choice page, an account/password form checked with
// argon2id at issod's cost (libsodium's "interactive": t=2, m=64 MiB,
// p=1, through the native argon2 package on libuv's thread pool) and a
// consent page remembered per account and client.
//
// Configured by the environment (bench/lib/servers.mjs sets it):
//   PEER_PORT          port on 127.0.0.1
//   PEER_CLIENT        JSON {client_id, client_secret, redirect_uri, scope}
//   PEER_USERS         JSON [{account, password, name, phone, email}]
//   PEER_AT_FORMAT     opaque (default) or jwt (RFC 9068-style ES256 JWT
//                      access tokens through a default resource)
//   PEER_SEED_USERS, PEER_SEED_SESSIONS
//                      accounts and live sessions made at start (bench/scale.mjs)
// Prints one line "ready <port>" on stdout when it listens.
//
// Storage is in memory (a Map with expiry, see MemoryAdapter below): the
// peer writes nothing to disk, which docs/PERFORMANCE.md states as a
// caveat of every comparison.

import crypto from 'node:crypto';
import http from 'node:http';
import argon2 from 'argon2';
import Provider from 'oidc-provider';

const port = Number(process.env.PEER_PORT);
const issuer = `http://127.0.0.1:${port}`;
const clientCfg = JSON.parse(process.env.PEER_CLIENT);
const atFormat = process.env.PEER_AT_FORMAT === 'jwt' ? 'jwt' : 'opaque';
const RESOURCE = 'urn:isso-bench:api';

// ---------------------------------------------------------------- storage

const entries = new Map(); // `${model}:${id}` -> {payload, exp}
const byUid = new Map(); // uid -> id (sessions)
const byGrant = new Map(); // grantId -> Set of keys

class MemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const k = this.key(id);
    entries.set(k, { payload, exp: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    if (payload.uid) byUid.set(payload.uid, id);
    if (payload.grantId) {
      let s = byGrant.get(payload.grantId);
      if (!s) byGrant.set(payload.grantId, (s = new Set()));
      s.add(k);
    }
  }

  async find(id) {
    const k = this.key(id);
    const e = entries.get(k);
    if (!e) return undefined;
    if (e.exp <= Date.now()) {
      entries.delete(k);
      return undefined;
    }
    return e.payload;
  }

  async findByUid(uid) {
    const id = byUid.get(uid);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode() {
    return undefined; // no device flow
  }

  async consume(id) {
    const e = entries.get(this.key(id));
    if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    const k = this.key(id);
    const e = entries.get(k);
    if (e?.payload.uid) byUid.delete(e.payload.uid);
    entries.delete(k);
  }

  async revokeByGrantId(grantId) {
    for (const k of byGrant.get(grantId) ?? []) entries.delete(k);
    byGrant.delete(grantId);
  }
}

// Expired rows leave the map, as issod purges its tables.
setInterval(() => {
  const now = Date.now();
  for (const [k, e] of entries) {
    if (e.exp <= now) {
      if (e.payload.uid) byUid.delete(e.payload.uid);
      entries.delete(k);
    }
  }
}, 10_000).unref();

// ---------------------------------------------------------------- accounts

const users = new Map();
for (const u of JSON.parse(process.env.PEER_USERS)) {
  const hash = await argon2.hash(u.password, {
    type: argon2.argon2id, timeCost: 2, memoryCost: 65536, parallelism: 1,
  });
  users.set(u.account, { ...u, hash, sub: crypto.randomUUID() });
}
// Seeded state for bench/scale.mjs (bench/run.mjs seeds nothing):
// accounts beyond the bench users, each with its own hash string (they
// never log in), and live sessions each with its grant, of the size a
// real login leaves.
const seedUsers = Number(process.env.PEER_SEED_USERS) || 0;
const seedSessions = Number(process.env.PEER_SEED_SESSIONS) || 0;
{
  const model = [...users.values()][0];
  for (let i = 0; i < seedUsers; i++) {
    const n = String(i).padStart(8, '0');
    users.set(`seed.${n}`, {
      account: `seed.${n}`, password: null, name: `${model.name}${n}`, phone: `09${n}`,
      email: `seed${n}@bench.example`, hash: `${model.hash.slice(0, -8)}${n}`, sub: crypto.randomUUID(),
    });
  }
  const now = Math.floor(Date.now() / 1000);
  const ttl = 8 * 3600;
  for (let i = 0; i < seedSessions; i++) {
    const id = crypto.randomBytes(32).toString('base64url');
    const uid = crypto.randomBytes(16).toString('base64url');
    const grantId = crypto.randomBytes(32).toString('base64url');
    const accountId = crypto.randomUUID();
    entries.set(`Session:${id}`, {
      payload: {
        iat: now, exp: now + ttl, uid, jti: id, kind: 'Session', loginTs: now, accountId,
        authorizations: { [clientCfg.client_id]: { sid: crypto.randomUUID(), grantId, persistsLogout: false } },
      },
      exp: Date.now() + ttl * 1000,
    });
    byUid.set(uid, id);
    entries.set(`Grant:${grantId}`, {
      payload: {
        iat: now, exp: now + ttl, jti: grantId, kind: 'Grant', accountId, clientId: clientCfg.client_id,
        openid: { scope: clientCfg.scope }, loginTs: now,
      },
      exp: Date.now() + ttl * 1000,
    });
  }
}
const bySub = new Map([...users.values()].map((u) => [u.sub, u]));
// verified for an unknown account, as issod verifies a dummy hash
const unknownAccountHash = [...users.values()][0].hash;

async function findAccount(ctx, sub) {
  const u = bySub.get(sub);
  if (!u) return undefined;
  return {
    accountId: sub,
    async claims() {
      return {
        sub, name: u.name, phone_number: u.phone, phone_number_verified: true,
        email: u.email, email_verified: true,
      };
    },
  };
}

// ---------------------------------------------------------------- provider

const remembered = new Map(); // `${account}\0${client}` -> grantId (consent kept)
const signingKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
  .privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  adapter: MemoryAdapter,
  clients: [{
    client_id: clientCfg.client_id,
    client_secret: clientCfg.client_secret,
    redirect_uris: [clientCfg.redirect_uri],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
    scope: clientCfg.scope,
  }],
  jwks: { keys: [{ ...signingKey, kid: 'bench-es256', alg: 'ES256', use: 'sig' }] },
  scopes: ['openid', 'offline_access', 'profile', 'phone', 'email'],
  claims: {
    openid: ['sub'],
    profile: ['name'],
    phone: ['phone_number', 'phone_number_verified'],
    email: ['email', 'email_verified'],
  },
  findAccount,
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: atFormat === 'jwt'
      ? {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'api', audience: RESOURCE, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } },
        }),
      }
      : { enabled: false },
  },
  pkce: { required: () => true },
  // issod: refresh tokens for clients with the grant, rotated on every use
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  ttl: {
    AuthorizationCode: 60,
    AccessToken: 600,
    ClientCredentials: 600,
    IdToken: 600,
    RefreshToken: 2592000,
    Session: 28800,
    Interaction: 900,
    Grant: 28800,
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async loadExistingGrant(ctx) {
    const clientId = ctx.oidc.client.clientId;
    const accountId = ctx.oidc.session.accountId;
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(clientId)
      || remembered.get(`${accountId}\0${clientId}`);
    return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
  },
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!doctype html><title>error</title><p role="alert">${escapeHtml(out.error)}: ${escapeHtml(out.error_description ?? '')}</p>`;
  },
});

// ---------------------------------------------------------------- pages

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res, status, title, body) {
  const html = `<!doctype html><html lang="zh-TW"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(title)}</title></head><body><main>${body}</main></body></html>`;
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

const MAX_FORM = 8192;

function readForm(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_FORM) {
        reject(new Error('form too large'));
        req.destroy();
      } else {
        chunks.push(c);
      }
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

function loginForm(res, uid, alert = '') {
  page(res, 200, '登入 Log in', `${alert ? `<p role="alert">${escapeHtml(alert)}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<label>帳號 Account <input name="account" autocomplete="username"></label>
<label>密碼 Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">登入 Log in</button></form>`);
}

async function interaction(req, res) {
  const [, , uid, action] = new URL(req.url, issuer).pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  if (req.method === 'GET' && !action) {
    if (details.prompt.name === 'login') {
      // the method choice, as issod's /login (one method here)
      return page(res, 200, '選擇登入方式 Choose', `<ul><li><a href="/interaction/${uid}/password">台北通 password</a></li></ul>`);
    }
    const scopes = details.prompt.details.missingOIDCScope ?? [];
    return page(res, 200, '同意 Consent', `<p>${escapeHtml(details.params.client_id)}: ${escapeHtml(scopes.join(' '))}</p>
<form method="post" action="/interaction/${uid}/confirm">
<button name="decision" value="allow">同意 Allow</button>
<button name="decision" value="deny">拒絕 Deny</button></form>`);
  }
  if (req.method === 'GET' && action === 'password') return loginForm(res, uid);
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const u = users.get(form.get('account') ?? '');
    // an unknown account costs a hash too (no enumeration by timing)
    const ok = u
      ? await argon2.verify(u.hash, form.get('password') ?? '')
      : (await argon2.verify(unknownAccountHash, `x${form.get('password') ?? ''}`), false);
    if (!ok) return loginForm(res, uid, '帳號或密碼錯誤 Wrong account or password');
    return provider.interactionFinished(req, res, { login: { accountId: u.sub } }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'confirm') {
    const form = await readForm(req);
    if (form.get('decision') !== 'allow') {
      return provider.interactionFinished(req, res, { error: 'access_denied' }, { mergeWithLastSubmission: false });
    }
    const { prompt: { details: d }, params, session: { accountId } } = details;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: params.client_id });
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    remembered.set(`${accountId}\0${params.client_id}`, grantId);
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return page(res, 404, 'not found', '<p role="alert">not found</p>');
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      if (!res.headersSent) page(res, 400, 'error', `<p role="alert">${escapeHtml(err.message)}</p>`);
      else res.destroy();
    });
    return;
  }
  callback(req, res);
});
server.keepAliveTimeout = 30_000;
server.listen(port, '127.0.0.1', () => process.stdout.write(`ready ${port}\n`));
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.once(sig, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
