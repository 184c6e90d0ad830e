#!/usr/bin/env node
// 示範機關線上服務 — a small city-agency service that logs citizens in
// through iSSO (OpenID Connect code flow + PKCE) and shows what it received.
//
//   node demo/agency.mjs            (from the repository root)
//
// Environment:
//   DEMO_PORT         listening port (8081)
//   DEMO_HOST         listening address (127.0.0.1)
//   DEMO_PUBLIC_URL   its own base URL (http://127.0.0.1:DEMO_PORT); the
//                     client must be registered with <base>/callback and
//                     post-logout <base>/
//   DEMO_ISSUER       the iSSO issuer (http://127.0.0.1:8080)
//   DEMO_CLIENT_FILE  JSON {client_id, client_secret} (var/demo-client.json)
//   DEMO_SCOPE        scopes to ask for (openid uuid profile id_number phone email birthdate)

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as oidc from '../tests/node_modules/openid-client/build/index.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PORT = parseInt(process.env.DEMO_PORT || '8081', 10);
const HOST = process.env.DEMO_HOST || '127.0.0.1';
const PUBLIC_URL = (process.env.DEMO_PUBLIC_URL || `http://127.0.0.1:${PORT}`).replace(/\/+$/, '');
const ISSUER = (process.env.DEMO_ISSUER || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const CLIENT_FILE = path.resolve(process.env.DEMO_CLIENT_FILE || 'var/demo-client.json');
const SCOPE = process.env.DEMO_SCOPE || 'openid uuid profile id_number phone email birthdate';
const REDIRECT_URI = `${PUBLIC_URL}/callback`;
const POST_LOGOUT_URI = `${PUBLIC_URL}/`;
const CSS = fs.readFileSync(path.join(HERE, 'agency.css'));
const CSS_ETAG = `"${crypto.createHash('sha256').update(CSS).digest('base64url').slice(0, 16)}"`;

// ---------------------------------------------------------------- texts

const TEXT = {
  'zh-TW': {
    org: '臺北市政府',
    site: '示範機關線上服務',
    skip: '跳到主要內容',
    otherLang: 'English',
    otherLangCode: 'en',
    demoBanner: '這是 iSSO 開放原始碼專案的示範服務，不是正式的市府網站；資料僅供測試。',
    homeTitle: '市民線上申辦服務',
    homeLead: '本服務示範機關如何透過「臺北市政府單一身分驗證入口（iSSO）」確認您的身分，並只取得您同意提供的資料。',
    loginButton: '使用臺北市單一身分驗證登入',
    loginHigh: '以高驗證等級登入（自然人憑證等）',
    whatWeAsk: '本服務將向 iSSO 申請的資料',
    whatWeAskNote: '登入後，iSSO 會列出本服務申請的欄位，由您決定是否同意授權。',
    youAreIn: (n) => `${n}，您好，您已登入。`,
    viewData: '查看本服務取得的資料',
    logout: '登出',
    loggedOut: '您已登出本服務與 iSSO。',
    meTitle: '本服務取得的資料',
    meLead: '以下是 iSSO 依您的授權提供給本服務的內容。',
    idTokenCaption: 'ID Token 聲明（身分驗證結果）',
    userinfoCaption: 'UserInfo 回應（您授權的會員資料）',
    field: '欄位',
    value: '內容',
    raw: '原始 JSON',
    grantedScope: '取得的授權範圍（scope）',
    home: '回首頁',
    tryAgain: '重新登入',
    errorTitle: '登入未完成',
    errorCode: '錯誤代碼',
    errorDetail: '說明',
    errors: {
      access_denied: '您選擇不同意授權，本服務未取得任何資料。',
      login_required: '需要重新登入。',
      consent_required: '需要您的授權同意。',
      interaction_required: '需要您在 iSSO 完成操作。',
      invalid_request: '登入請求有誤，請重新操作。',
      invalid_scope: '本服務申請的資料範圍未獲核准。',
      unauthorized_client: '本服務尚未獲准使用 iSSO 登入。',
      server_error: 'iSSO 暫時發生錯誤，請稍後再試。',
      temporarily_unavailable: 'iSSO 暫時無法服務，請稍後再試。',
      expired: '登入請求已逾時或無效，請重新登入。',
      not_configured: '本示範服務尚未設定 iSSO 用戶端（找不到用戶端設定檔）。',
      unreachable: '目前無法連線到 iSSO，請稍後再試。',
      exchange: '無法向 iSSO 兌換登入結果。',
      unknown: '登入過程發生問題。',
    },
    notFound: '找不到這個頁面。',
    yes: '是',
    no: '否',
    footer: '示範機關線上服務 · 使用臺北市政府單一身分驗證入口（iSSO）登入',
  },
  en: {
    org: 'Taipei City Government',
    site: 'Demo Agency Online Services',
    skip: 'Skip to main content',
    otherLang: '中文',
    otherLangCode: 'zh-TW',
    demoBanner: 'This is a demo service of the open-source iSSO project, not an official city website. Test data only.',
    homeTitle: 'Online services for citizens',
    homeLead: 'This service shows how a city agency confirms who you are through the Taipei City single identity verification portal (iSSO), and receives only the data you agree to share.',
    loginButton: 'Log in with Taipei City single sign-on (iSSO)',
    loginHigh: 'Log in with high assurance (citizen certificate etc.)',
    whatWeAsk: 'Data this service asks iSSO for',
    whatWeAskNote: 'After you log in, iSSO lists the fields this service asks for and you decide whether to share them.',
    youAreIn: (n) => `Hello ${n}, you are logged in.`,
    viewData: 'See the data this service received',
    logout: 'Log out',
    loggedOut: 'You have logged out of this service and iSSO.',
    meTitle: 'Data this service received',
    meLead: 'This is what iSSO released to this service with your consent.',
    idTokenCaption: 'ID token claims (result of the identity check)',
    userinfoCaption: 'UserInfo response (member data you agreed to share)',
    field: 'Field',
    value: 'Value',
    raw: 'Raw JSON',
    grantedScope: 'Granted scope',
    home: 'Home',
    tryAgain: 'Log in again',
    errorTitle: 'Login not completed',
    errorCode: 'Error code',
    errorDetail: 'Details',
    errors: {
      access_denied: 'You declined to share your data; this service received nothing.',
      login_required: 'You need to log in again.',
      consent_required: 'Your consent is needed.',
      interaction_required: 'Please complete the steps at iSSO.',
      invalid_request: 'The login request was not valid. Please try again.',
      invalid_scope: 'The data this service asked for is not approved.',
      unauthorized_client: 'This service is not yet approved to log in with iSSO.',
      server_error: 'iSSO had a problem. Please try again later.',
      temporarily_unavailable: 'iSSO is temporarily unavailable. Please try again later.',
      expired: 'The login request expired or is not valid. Please log in again.',
      not_configured: 'This demo service has no iSSO client configured (client file not found).',
      unreachable: 'iSSO cannot be reached right now. Please try again later.',
      exchange: 'The login result could not be redeemed at iSSO.',
      unknown: 'Something went wrong during login.',
    },
    notFound: 'Page not found.',
    yes: 'Yes',
    no: 'No',
    footer: 'Demo agency online services · log in with the Taipei City single identity verification portal (iSSO)',
  },
};

const CLAIM_LABELS = {
  sub: ['識別碼', 'Subject identifier'],
  uuid: ['系統唯一識別碼', 'Unique person ID'],
  name: ['姓名', 'Name'],
  id_number: ['身分證字號', 'National ID number'],
  phone_number: ['手機號碼', 'Mobile number'],
  phone_number_verified: ['手機已驗證', 'Mobile verified'],
  email: ['電子郵件', 'E-mail'],
  email_verified: ['電子郵件已驗證', 'E-mail verified'],
  birthdate: ['出生日期', 'Date of birth'],
  address: ['地址', 'Address'],
  member_level: ['會員等級', 'Member level'],
  iss: ['簽發者', 'Issuer'],
  aud: ['接收者', 'Audience'],
  azp: ['授權對象', 'Authorized party'],
  exp: ['到期時間', 'Expires'],
  iat: ['簽發時間', 'Issued at'],
  auth_time: ['驗證時間', 'Authenticated at'],
  nonce: ['隨機值', 'Nonce'],
  acr: ['驗證等級', 'Assurance level'],
  amr: ['驗證方式', 'Authentication methods'],
  sid: ['登入工作階段', 'Session ID'],
  at_hash: ['存取權杖雜湊', 'Access token hash'],
};
const ACR_LABELS = {
  'urn:isso:loa:low': ['低', 'low'],
  'urn:isso:loa:substantial': ['中', 'substantial'],
  'urn:isso:loa:high': ['高', 'high'],
};
const AMR_LABELS = {
  pwd: ['密碼', 'password'], otp: ['一次性密碼', 'one-time code'], sms: ['簡訊', 'SMS'],
  sc: ['智慧卡', 'smart card'], pin: ['PIN 碼', 'PIN'], hwk: ['硬體金鑰', 'hardware key'],
  swk: ['軟體金鑰', 'software key'], mca: ['多通道', 'multiple channels'], mfa: ['多因素', 'multi-factor'],
};
const TIME_CLAIMS = new Set(['exp', 'iat', 'auth_time', 'nbf']);

// ---------------------------------------------------------------- sessions

const SESSION_TTL_MS = 60 * 60 * 1000;
const MAX_SESSIONS = 10_000;
const sessions = new Map(); // id -> {created, pending?, login?, logoutState?}

function newId() {
  return crypto.randomBytes(32).toString('base64url');
}

function parseCookies(header) {
  const out = {};
  for (const part of (header || '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

function addCookie(res, cookie) {
  const prev = res.getHeader('set-cookie');
  res.setHeader('set-cookie', prev ? [].concat(prev, cookie) : cookie);
}

function getSession(req, res, { create = false } = {}) {
  const now = Date.now();
  const id = parseCookies(req.headers.cookie).demo_sid;
  let s = id ? sessions.get(id) : undefined;
  if (s && now - s.created > SESSION_TTL_MS) {
    sessions.delete(id);
    s = undefined;
  }
  if (!s && create) {
    if (sessions.size >= MAX_SESSIONS) {
      for (const [k, v] of sessions) if (now - v.created > SESSION_TTL_MS) sessions.delete(k);
      if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value);
    }
    const nid = newId();
    s = { created: now };
    sessions.set(nid, s);
    const secure = PUBLIC_URL.startsWith('https:') ? '; Secure' : '';
    addCookie(res, `demo_sid=${nid}; Path=/; HttpOnly; SameSite=Lax${secure}`);
  }
  return s;
}

// ---------------------------------------------------------------- OIDC

let clientInfo = null;
let configPromise = null;

function loadClient() {
  if (clientInfo) return clientInfo;
  let raw;
  try {
    raw = fs.readFileSync(CLIENT_FILE, 'utf8');
  } catch {
    return null;
  }
  const j = JSON.parse(raw);
  if (!j.client_id) throw new Error(`${CLIENT_FILE} has no client_id`);
  clientInfo = j;
  return j;
}

/** The openid-client Configuration, discovered once (retried after a failure). */
function getConfig() {
  const c = loadClient();
  if (!c) return Promise.resolve(null);
  if (!configPromise) {
    const metadata = { client_secret: c.client_secret };
    if (c.id_token_signed_response_alg) metadata.id_token_signed_response_alg = c.id_token_signed_response_alg;
    const auth = c.client_secret ? oidc.ClientSecretBasic(c.client_secret) : oidc.None();
    const execute = new URL(ISSUER).protocol === 'http:' ? [oidc.allowInsecureRequests] : [];
    configPromise = oidc.discovery(new URL(ISSUER), c.client_id, metadata, auth, { execute, timeout: 10 })
      .catch((err) => {
        configPromise = null;
        throw err;
      });
  }
  return configPromise;
}

// ---------------------------------------------------------------- HTML

function esc(v) {
  return String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

/** The browser's language from Accept-Language: English when English
 * comes before any Chinese, Chinese otherwise. */
function browserLang(req) {
  const tags = String(req.headers['accept-language'] || '')
    .split(',')
    .map((part) => {
      const [tag, ...params] = part.trim().toLowerCase().split(';');
      const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)).find(Boolean);
      return { tag, q: q ? Number(q[1]) : 1 };
    })
    .filter((x) => x.tag && x.q > 0)
    .sort((a, b) => b.q - a.q);
  for (const { tag } of tags) {
    if (tag === 'en' || tag.startsWith('en-')) return 'en';
    if (tag === 'zh' || tag.startsWith('zh-')) return 'zh-TW';
  }
  return 'zh-TW';
}

/** The page language: the visitor's choice on this site (?lang=, then its
 * cookie), else the browser's. */
function pickLang(req, url, res) {
  const q = url.searchParams.get('lang');
  if (q === 'en' || q === 'zh-TW') {
    addCookie(res, `demo_lang=${q}; Path=/; SameSite=Lax; Max-Age=31536000`);
    return q;
  }
  const c = parseCookies(req.headers.cookie).demo_lang;
  if (c === 'en' || c === 'zh-TW') return c;
  return browserLang(req);
}

/** The language the visitor chose on this site, or null: only a choice is
 * sent to iSSO as ui_locales; without one iSSO reads the same browser
 * language itself and the citizen's own choice there still counts. */
function chosenLang(req, url) {
  const q = url.searchParams.get('lang');
  if (q === 'en' || q === 'zh-TW') return q;
  const c = parseCookies(req.headers.cookie).demo_lang;
  return c === 'en' || c === 'zh-TW' ? c : null;
}

function layout(lang, { title, body, url }) {
  const t = TEXT[lang];
  const switchUrl = new URL(url.href);
  switchUrl.searchParams.set('lang', t.otherLangCode);
  const switchHref = `${switchUrl.pathname}${switchUrl.search}`;
  return `<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} | ${esc(t.site)}</title>
<link rel="stylesheet" href="/agency.css">
</head>
<body>
<a class="skip-link" href="#main">${esc(t.skip)}</a>
<header class="site-header">
  <div class="inner">
    <a class="brand" href="/"><span class="org">${esc(t.org)}</span><span class="name">${esc(t.site)}</span></a>
    <nav aria-label="${lang === 'en' ? 'Site' : '網站選單'}">
      <ul>
        <li><a href="/">${esc(t.home)}</a></li>
        <li><a href="${esc(switchHref)}" lang="${t.otherLangCode}" hreflang="${t.otherLangCode}">${esc(t.otherLang)}</a></li>
      </ul>
    </nav>
  </div>
</header>
<div class="demo-banner"><p>${esc(t.demoBanner)}</p></div>
<main id="main" tabindex="-1">
${body}
</main>
<footer class="site-footer"><div class="inner"><p>${esc(t.footer)}</p></div></footer>
</body>
</html>
`;
}

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

function send(res, status, html, extra = {}) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    ...SECURITY_HEADERS,
    ...extra,
  });
  res.end(html);
}

function redirect(res, location) {
  res.writeHead(303, { location, 'cache-control': 'no-store', ...SECURITY_HEADERS });
  res.end();
}

function claimLabel(lang, key) {
  const l = CLAIM_LABELS[key];
  return l ? l[lang === 'en' ? 1 : 0] : key;
}

function formatValue(lang, key, v) {
  const en = lang === 'en';
  if (v === null || v === undefined) return '';
  if (typeof v === 'boolean') return esc(v ? TEXT[lang].yes : TEXT[lang].no);
  if (TIME_CLAIMS.has(key) && typeof v === 'number') {
    const d = new Date(v * 1000);
    const s = d.toLocaleString(en ? 'en-GB' : 'zh-TW', { timeZone: 'Asia/Taipei', dateStyle: 'medium', timeStyle: 'medium' });
    return `<time datetime="${esc(d.toISOString())}">${esc(s)}</time> <span class="claim-key">${esc(v)}</span>`;
  }
  if (key === 'acr' && ACR_LABELS[v]) return `${esc(ACR_LABELS[v][en ? 1 : 0])} <span class="claim-key">${esc(v)}</span>`;
  if (key === 'amr' && Array.isArray(v)) {
    return v.map((m) => (AMR_LABELS[m] ? `${esc(AMR_LABELS[m][en ? 1 : 0])} (${esc(m)})` : esc(m))).join('、');
  }
  if (key === 'address' && typeof v === 'object') {
    if (v.formatted) return esc(v.formatted);
    return esc([v.postal_code, v.region, v.locality, v.street_address].filter(Boolean).join(' '));
  }
  if (Array.isArray(v)) return v.map(esc).join(', ');
  if (typeof v === 'object') return `<code>${esc(JSON.stringify(v))}</code>`;
  return esc(v);
}

function claimsTable(lang, labelledBy, obj, id) {
  const t = TEXT[lang];
  const rows = Object.entries(obj).map(([k, v]) => `<tr data-claim="${esc(k)}"><th scope="row">${esc(claimLabel(lang, k))}<span class="claim-key">${esc(k)}</span></th><td>${formatValue(lang, k, v)}</td></tr>`).join('\n');
  return `<div class="table-wrap"><table id="${id}" aria-labelledby="${labelledBy}">
<thead><tr><th scope="col">${esc(t.field)}</th><th scope="col">${esc(t.value)}</th></tr></thead>
<tbody>
${rows}
</tbody></table></div>`;
}

// ---------------------------------------------------------------- pages

function homePage(req, res, url, lang) {
  const t = TEXT[lang];
  const s = getSession(req, res);
  const langQ = lang === 'en' ? '?lang=en' : '';
  let notice = '';
  const st = url.searchParams.get('state');
  if (s && st && s.logoutState && st === s.logoutState) {
    delete s.logoutState;
    notice = `<p class="notice ok" role="status">${esc(t.loggedOut)}</p>`;
  }
  let body;
  if (s?.login) {
    const who = s.login.userinfo?.name || s.login.claims?.name || s.login.claims.sub;
    body = `${notice}
<h1>${esc(t.homeTitle)}</h1>
<p class="notice ok">${esc(t.youAreIn(who))}</p>
<div class="actions">
  <a class="button" href="/me">${esc(t.viewData)}</a>
  <a class="button secondary" href="/logout">${esc(t.logout)}</a>
</div>`;
  } else {
    const asked = SCOPE.split(/\s+/).filter((x) => x && x !== 'openid');
    body = `${notice}
<h1>${esc(t.homeTitle)}</h1>
<p class="lead">${esc(t.homeLead)}</p>
<div class="actions">
  <a class="button" id="login" href="/login${langQ}">${esc(t.loginButton)}</a>
  <a class="button secondary" href="/login?acr=high${lang === 'en' ? '&amp;lang=en' : ''}">${esc(t.loginHigh)}</a>
</div>
<section class="card" aria-labelledby="asked">
  <h2 id="asked">${esc(t.whatWeAsk)}</h2>
  <ul>${asked.map((sc) => `<li><code>${esc(sc)}</code></li>`).join('')}</ul>
  <p>${esc(t.whatWeAskNote)}</p>
</section>`;
  }
  send(res, 200, layout(lang, { title: t.homeTitle, body, url }));
}

function errorPage(res, url, lang, status, code, detail) {
  const t = TEXT[lang];
  const msg = t.errors[code] || t.errors.unknown;
  const langQ = lang === 'en' ? '?lang=en' : '';
  const body = `<div class="notice error" role="alert">
<h1>${esc(t.errorTitle)}</h1>
<p>${esc(msg)}</p>
</div>
<dl class="meta">
  <dt>${esc(t.errorCode)}</dt><dd><code>${esc(code)}</code></dd>
  ${detail ? `<dt>${esc(t.errorDetail)}</dt><dd>${esc(detail)}</dd>` : ''}
</dl>
<div class="actions">
  <a class="button" href="/login${langQ}">${esc(t.tryAgain)}</a>
  <a class="button secondary" href="/${langQ}">${esc(t.home)}</a>
</div>`;
  send(res, status, layout(lang, { title: t.errorTitle, body, url }));
}

async function startLogin(req, res, url, lang) {
  let config;
  try {
    config = await getConfig();
  } catch (err) {
    return errorPage(res, url, lang, 502, 'unreachable', err.message);
  }
  if (!config) return errorPage(res, url, lang, 500, 'not_configured', CLIENT_FILE);
  const s = getSession(req, res, { create: true });
  const verifier = oidc.randomPKCECodeVerifier();
  const pending = {
    verifier,
    state: oidc.randomState(),
    nonce: oidc.randomNonce(),
    lang,
    started: Date.now(),
  };
  const params = {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  };
  const chosen = chosenLang(req, url);
  if (chosen) params.ui_locales = chosen;
  if (url.searchParams.get('acr') === 'high') params.acr_values = 'urn:isso:loa:high';
  else if (url.searchParams.get('acr') === 'substantial') params.acr_values = 'urn:isso:loa:substantial';
  s.pending = pending;
  redirect(res, oidc.buildAuthorizationUrl(config, params).href);
}

async function callback(req, res, url, lang) {
  const s = getSession(req, res);
  const pending = s?.pending;
  const state = url.searchParams.get('state');
  if (url.searchParams.get('error')) {
    if (pending && pending.state === state) delete s.pending;
    const code = url.searchParams.get('error');
    return errorPage(res, url, pending?.lang || lang, 400, /^[a-z_]{1,64}$/.test(code) ? code : 'unknown', url.searchParams.get('error_description'));
  }
  if (!pending || pending.state !== state || Date.now() - pending.started > 15 * 60 * 1000) {
    return errorPage(res, url, lang, 400, 'expired');
  }
  delete s.pending;
  lang = pending.lang;
  let config;
  try {
    config = await getConfig();
  } catch (err) {
    return errorPage(res, url, lang, 502, 'unreachable', err.message);
  }
  try {
    const currentUrl = new URL(`${url.pathname}${url.search}`, PUBLIC_URL);
    const tokens = await oidc.authorizationCodeGrant(config, currentUrl, {
      pkceCodeVerifier: pending.verifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
    });
    const claims = tokens.claims();
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    s.login = {
      claims: { ...claims },
      userinfo: { ...userinfo },
      idToken: tokens.id_token,
      scope: tokens.scope || '',
      at: Date.now(),
    };
  } catch (err) {
    const code = err?.error && /^[a-z_]{1,64}$/.test(err.error) ? err.error : 'exchange';
    process.stderr.write(`demo: code exchange failed: ${err?.name}: ${err?.message}\n`);
    return errorPage(res, url, lang, 502, code, err?.error_description || err?.message);
  }
  redirect(res, '/me');
}

function mePage(req, res, url, lang) {
  const s = getSession(req, res);
  if (!s?.login) return redirect(res, '/');
  const t = TEXT[lang];
  const { claims, userinfo, scope } = s.login;
  const body = `<h1>${esc(t.meTitle)}</h1>
<p class="lead">${esc(t.meLead)}</p>
<dl class="meta"><dt>${esc(t.grantedScope)}</dt><dd><code>${esc(scope)}</code></dd></dl>
<h2 id="userinfo-h">${esc(t.userinfoCaption)}</h2>
${claimsTable(lang, 'userinfo-h', userinfo, 'userinfo')}
<h2 id="idtoken-h">${esc(t.idTokenCaption)}</h2>
${claimsTable(lang, 'idtoken-h', claims, 'idtoken')}
<details>
  <summary>${esc(t.raw)}</summary>
  <h3>UserInfo</h3>
  <pre id="raw-userinfo">${esc(JSON.stringify(userinfo, null, 2))}</pre>
  <h3>ID Token</h3>
  <pre id="raw-idtoken">${esc(JSON.stringify(claims, null, 2))}</pre>
</details>
<div class="actions">
  <a class="button secondary" href="/logout">${esc(t.logout)}</a>
  <a class="button secondary" href="/">${esc(t.home)}</a>
</div>`;
  send(res, 200, layout(lang, { title: t.meTitle, body, url }));
}

async function logout(req, res, url, lang) {
  const s = getSession(req, res);
  if (!s?.login) return redirect(res, '/');
  const idToken = s.login.idToken;
  delete s.login;
  let config;
  try {
    config = await getConfig();
  } catch {
    return redirect(res, '/');
  }
  s.logoutState = oidc.randomState();
  const params = { post_logout_redirect_uri: POST_LOGOUT_URI, state: s.logoutState };
  const chosen = chosenLang(req, url);
  if (chosen) params.ui_locales = chosen;
  if (idToken) params.id_token_hint = idToken;
  redirect(res, oidc.buildEndSessionUrl(config, params).href);
}

// ---------------------------------------------------------------- server

async function handle(req, res) {
  const url = new URL(req.url, PUBLIC_URL);
  if (url.pathname === '/agency.css') {
    if (req.headers['if-none-match'] === CSS_ETAG) {
      res.writeHead(304, { etag: CSS_ETAG });
      return res.end();
    }
    res.writeHead(200, { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'public, max-age=300', etag: CSS_ETAG, 'x-content-type-options': 'nosniff' });
    return res.end(CSS);
  }
  if (url.pathname === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end('{"status":"ok"}');
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
    return res.end('405 Method Not Allowed\n');
  }
  const lang = pickLang(req, url, res);
  switch (url.pathname) {
    case '/': return homePage(req, res, url, lang);
    case '/login': return startLogin(req, res, url, lang);
    case '/callback': return callback(req, res, url, lang);
    case '/me': return mePage(req, res, url, lang);
    case '/logout': return logout(req, res, url, lang);
    default: {
      const t = TEXT[lang];
      return send(res, 404, layout(lang, { title: t.notFound, body: `<h1>${esc(t.notFound)}</h1><p><a href="/">${esc(t.home)}</a></p>`, url }));
    }
  }
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    process.stderr.write(`demo: ${err?.stack || err}\n`);
    if (!res.headersSent) {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('500 Internal Server Error\n');
    } else {
      res.end();
    }
  });
});

server.listen(PORT, HOST, () => {
  const c = loadClient();
  process.stdout.write(`demo agency service: ${PUBLIC_URL}/  (issuer ${ISSUER}, client ${c ? c.client_id : `not configured: ${CLIENT_FILE}`})\n`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
