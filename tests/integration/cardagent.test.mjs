// isso-cardagent on its own: the HiPKI local server protocol (pkcs11info,
// sign, popupForm in Chromium), the NHI WebSocket, and what it refuses.
// Cards are the test PKI's SoftHSM2 tokens (scripts/test-pki.sh) behind the
// testcard PKCS#11 layer, whose state dir (PIN counters, removed cards)
// belongs to this file.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {
  BUILD_DIR, Daemon, freePort, limit, sleep, startTestServer, testPki, waitReady,
} from './lib/harness.mjs';
import { NO_BROWSER, axeCheck, launchBrowser, newPage } from './lib/browser.mjs';
import { connect, frame } from './lib/ws-raw.mjs';

const SOFTHSM_MODULE = process.env.ISSO_SOFTHSM_MODULE || '/usr/lib/softhsm/libsofthsm2.so';
const SANITIZER = /(AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:)/;

const RC = {
  OK: 0, UNTRUSTED: 0x76000031, BAD_REQUEST: 0x76000001, NO_MODULE: 0x76000002,
  NO_CARD: 0x76000004, PIN_FORMAT: 0x76000005, PIN_INCORRECT: 0x76000006, PIN_LOCKED: 0x76000007,
  NOT_LOGIN: 0x7600000B, CONFIRM: 0x7600000C, DECLINED: 0x7600000D,
};
const TRANSFER = 'I agree to transfer NT$1,000,000';
const CKR_PIN_INCORRECT = 0xa0;
const CKR_PIN_LOCKED = 0xa4;
const TRUSTED = 'https://isso.gov.taipei';
const EVIL = 'https://evil.example';
// What the popup adds to its requests; a request with neither a trusted
// Origin nor this header is refused.
const ASK = { 'X-HiPKI-Site': TRUSTED };

let pki; // {dir, cards}
let state; // testcard state dir
let tmp;
let agent; // Daemon
let url; // http://127.0.0.1:<port>
let nhiPort;
let page; // the test page server (trusted as http://127.0.0.1:<port>)
let browser = null;
let slots = {}; // serialNumber -> slotID
const secrets = []; // strings that must never reach the agent's log

function certDer(rel) {
  const pem = fs.readFileSync(path.join(pki.dir, rel), 'utf8');
  return new crypto.X509Certificate(pem).raw;
}

function moicaCard(i) { return pki.cards.moica[i]; }

function rmState(card, what) { fs.rmSync(path.join(state, `${card}.${what}`), { force: true }); }
function removeCard(card) { fs.writeFileSync(path.join(state, `${card}.removed`), ''); }
function insertCard(card) { rmState(card, 'removed'); }
function pinFailures(card) {
  try { return Number(fs.readFileSync(path.join(state, `${card}.pin-failures`), 'utf8')); } catch { return 0; }
}

async function startAgent(args, env = {}) {
  const port = await freePort();
  const d = new Daemon('isso-cardagent', path.join(BUILD_DIR, 'isso-cardagent'),
    ['--listen', '127.0.0.1', '--port', String(port), ...args],
    {
      env: {
        PATH: process.env.PATH,
        SOFTHSM2_CONF: path.join(pki.dir, 'softhsm2.conf'),
        ISSO_TESTCARD_MODULE: SOFTHSM_MODULE,
        ISSO_TESTCARD_STATE: state,
        ...env,
      },
      cwd: tmp,
    });
  await waitReady(d, `http://127.0.0.1:${port}/selfTest.htm`);
  // the HiPKI port answers before the NHI server has started and the
  // agent has logged what it listens on
  const deadline = Date.now() + limit(5000);
  while (!d.stderr.includes('"event":"listening"')) {
    assert.ok(Date.now() < deadline, `the agent logs "listening": ${d.stderr.slice(-2000)}`);
    await sleep(20);
  }
  return { d, port, url: `http://127.0.0.1:${port}` };
}

async function getJson(p, headers = ASK) {
  const res = await fetch(url + p, { headers });
  assert.equal(res.status, 200, `GET ${p}`);
  return { res, body: await res.json() };
}

async function sign(req, headers = ASK) {
  for (const k of ['pin']) if (typeof req[k] === 'string' && req[k].length >= 6) secrets.push(req[k]);
  const res = await fetch(`${url}/sign`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(req),
  });
  const body = await res.json();
  return { res, body };
}

/** iSSO's login challenge for issuer (docs/cardagent.md): the only text
 * the agent signs in its iSSO profile. */
function chal(issuer = TRUSTED, { nonce = crypto.randomBytes(32).toString('base64url'), time = new Date() } = {}) {
  return `iSSO-LOGIN-v1\n${issuer}\n${nonce}\n${time.toISOString().replace(/\.\d{3}Z$/, 'Z')}`;
}

function signReq(card, extra = {}) {
  return {
    func: 'MakeSignature', signatureType: 'PKCS1', tbs: chal(), tbsEncoding: 'NONE',
    hashAlgorithm: 'SHA256', withCardSN: 'true', pin: card.pin, nonce: '', slotID: slots[card.card_sn], ...extra,
  };
}

/** A raw HTTP request with any Host header (fetch sets its own). */
function rawGet(port, p, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, headers }, (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    req.end();
  });
}

function execFileP(file, args) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'buffer', maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

// The page a trusted site would serve: opens the agent's popupForm,
// answers getTbs with the request, and keeps what the popup replies.
const SITE_PAGE = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>site</title></head>
<body><button id="go" type="button">sign</button><script>
window.messages = [];
window.result = null;
window.popup = null;
document.getElementById('go').addEventListener('click', () => {
  const agent = window.AGENT;
  const popup = window.open(agent + '/popupForm', 'hipki', 'width=400,height=300');
  window.popup = popup;
  window.addEventListener('message', (ev) => {
    if (ev.source !== popup) return;
    const msg = JSON.parse(ev.data);
    window.messages.push({ origin: ev.origin, msg });
    if (msg.func === 'getTbs') popup.postMessage(JSON.stringify(window.REQUEST), agent);
    else window.result = msg;
  });
});
</script></body></html>`;

before(async () => {
  pki = await testPki();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'isso-cardagent-'));
  state = path.join(tmp, 'testcard');
  fs.mkdirSync(state);
  page = await startTestServer((req, body, res) => {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(SITE_PAGE);
  });
  nhiPort = await freePort();
  const a = await startAgent(['--nhi-port', String(nhiPort),
    '--module', path.join(BUILD_DIR, 'libisso-testcard.so'),
    '--trust', TRUSTED, '--trust', `${page.url}/`, '--nhi-pin', pki.cards.nhi_token_pin,
    '--nhi-service-cert', path.join(pki.dir, pki.cards.nhi_service_cert)]);
  agent = a.d;
  url = a.url;
  const { body } = await getJson('/pkcs11info');
  for (const s of body.slots) if (s.token) slots[s.token.serialNumber] = s.slotID;
  if (!NO_BROWSER) browser = await launchBrowser();
  for (const c of pki.cards.moica) secrets.push(c.pin, c.national_id);
  for (const c of pki.cards.nhi) secrets.push(c.registration_password, c.national_id);
});

after(async () => {
  await browser?.close();
  await page?.close();
  if (agent?.running) await agent.stop();
  if (!process.env.ISSO_TEST_KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------- pkcs11info

test('pkcs11info lists every reader and card, without certificates unless asked', { timeout: limit(10_000) }, async () => {
  const { res, body } = await getJson('/pkcs11info');
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('access-control-allow-origin'), null);
  assert.equal(body.func, 'pkcs11info');
  assert.equal(body.ret_code, 0);
  assert.equal(body.last_error, 0);
  assert.equal(typeof body.moduleInfo.libraryDescription, 'string');
  const serials = body.slots.filter((s) => s.token).map((s) => s.token.serialNumber);
  for (const c of [...pki.cards.moica, ...pki.cards.rogue]) assert.ok(serials.includes(c.card_sn), c.card_sn);
  for (const c of pki.cards.nhi) assert.ok(serials.includes(c.card_no), c.card_no);
  for (const s of body.slots) {
    assert.match(s.slotDescription, /^Generic Smart Card Reader \d+$/);
    assert.equal(typeof s.slotID, 'number');
    if (!s.token) continue;
    assert.equal(s.token.certs, undefined, 'no certs without withcert=true');
    assert.equal(typeof s.token.flags, 'number');
    assert.ok([0, 1, 2, 3].includes(s.token.pinTriesLeft));
  }
  const card = moicaCard(0);
  const tok = body.slots.find((s) => s.token?.serialNumber === card.card_sn).token;
  assert.equal(tok.label, card.card_sn);
  assert.equal(tok.pinTriesLeft, 3);
});

test('pkcs11info?withcert=true carries each card certificate', { timeout: limit(10_000) }, async () => {
  const { body } = await getJson('/pkcs11info?withcert=true');
  const card = moicaCard(0);
  const tok = body.slots.find((s) => s.token?.serialNumber === card.card_sn).token;
  assert.equal(tok.certs.length, 1);
  assert.deepEqual(Buffer.from(tok.certs[0].certb64, 'base64'), certDer(card.cert));
  assert.equal(tok.certs[0].label, 'MOICA signature');
  assert.equal(tok.certs[0].id, '01');
  const nhi = pki.cards.nhi[0];
  const ntok = body.slots.find((s) => s.token?.serialNumber === nhi.card_no).token;
  assert.deepEqual(Buffer.from(ntok.certs[0].certb64, 'base64'), certDer(nhi.cert));
});

// ---------------------------------------------------------------- sign

test('PKCS1: RSA SHA-256 over the tbs bytes, verified with certb64', { timeout: limit(10_000) }, async () => {
  const card = moicaCard(0);
  const text = chal();
  const { body } = await sign(signReq(card, { tbs: text }));
  assert.equal(body.ret_code, 0, JSON.stringify(body));
  assert.equal(body.func, 'MakeSignature');
  assert.equal(body.last_error, 0);
  assert.equal(body.cardSN, card.card_sn);
  const der = Buffer.from(body.certb64, 'base64');
  assert.deepEqual(der, certDer(card.cert));
  const key = new crypto.X509Certificate(der).publicKey;
  const sig = Buffer.from(body.signature, 'base64');
  assert.ok(crypto.verify('sha256', Buffer.from(text, 'utf8'), key, sig));
  assert.ok(!crypto.verify('sha256', Buffer.from(`${text.slice(0, -1)}9`, 'utf8'), key, sig));

  // base64 tbs: the decoded bytes are signed
  const raw = Buffer.from(chal(`${TRUSTED}/isso`));
  const r2 = await sign(signReq(card, { tbs: raw.toString('base64'), tbsEncoding: 'base64' }));
  assert.equal(r2.body.ret_code, 0);
  assert.ok(crypto.verify('sha256', raw, key, Buffer.from(r2.body.signature, 'base64')));
});

test('PKCS7: SignedData with the tbs attached, verified by openssl cms', { timeout: limit(15_000) }, async () => {
  const card = moicaCard(1);
  const tbs = Buffer.from(chal());
  const { body } = await sign(signReq(card, { signatureType: 'PKCS7', tbs: tbs.toString('base64'), tbsEncoding: 'base64', withCardSN: 'false' }));
  assert.equal(body.ret_code, 0, JSON.stringify(body));
  assert.equal(body.cardSN, undefined, 'withCardSN false: no cardSN');
  const file = path.join(tmp, 'sig.p7');
  fs.writeFileSync(file, Buffer.from(body.signature, 'base64'));
  const content = await execFileP('openssl', ['cms', '-verify', '-noverify', '-binary', '-inform', 'DER', '-in', file]);
  assert.deepEqual(content, tbs);
  // the signer certificate inside is the card's, and the attributes are there
  const signer = path.join(tmp, 'signer.pem');
  await execFileP('openssl', ['cms', '-verify', '-noverify', '-binary', '-inform', 'DER', '-in', file, '-signer', signer, '-out', '/dev/null']);
  assert.deepEqual(new crypto.X509Certificate(fs.readFileSync(signer)).raw, certDer(card.cert));
  const printed = (await execFileP('openssl', ['cms', '-cmsout', '-print', '-inform', 'DER', '-in', file])).toString();
  for (const attr of ['contentType', 'messageDigest', 'signingTime']) assert.match(printed, new RegExp(attr));
  assert.match(printed, /sha256/);
  // a changed byte of content no longer verifies
  const der = Buffer.from(body.signature, 'base64');
  const at = der.indexOf(tbs);
  assert.ok(at > 0);
  der[at + 20] ^= 1;
  fs.writeFileSync(file, der);
  await assert.rejects(execFileP('openssl', ['cms', '-verify', '-noverify', '-binary', '-inform', 'DER', '-in', file]));
});

test('without slotID the first MOICA-like card signs; NHI cards are never used', { timeout: limit(10_000) }, async () => {
  const keep = moicaCard(0);
  const others = [...pki.cards.moica, ...pki.cards.rogue].filter((c) => c.card_sn !== keep.card_sn);
  for (const c of others) removeCard(c.card_sn);
  try {
    const req = signReq(keep);
    delete req.slotID;
    const { body } = await sign(req);
    assert.equal(body.ret_code, 0, JSON.stringify(body));
    assert.equal(body.cardSN, keep.card_sn);
    // with no MOICA card at all (NHI cards still in): no card
    removeCard(keep.card_sn);
    const r2 = await sign(req);
    assert.equal(r2.body.ret_code, RC.NO_CARD);
  } finally {
    for (const c of [...others, keep]) insertCard(c.card_sn);
  }
});

test('wrong PINs count down, the third locks, a malformed PIN uses no try', { timeout: limit(15_000) }, async () => {
  const card = pki.cards.moica.find((c) => c.pin !== '123456') ?? moicaCard(2);
  const wrong = card.pin === '97531864' ? '86420975' : '97531864';
  const info = async () => (await getJson('/pkcs11info')).body.slots.find((s) => s.token?.serialNumber === card.card_sn).token;
  try {
    let r = await sign(signReq(card, { pin: wrong }));
    assert.equal(r.body.ret_code, RC.PIN_INCORRECT);
    assert.equal(r.body.last_error, CKR_PIN_INCORRECT);
    assert.equal(r.body.pinTriesLeft, 2);
    assert.equal(r.body.signature, undefined);

    for (const bad of ['12345', '123456789', '12a456', ' 123456', '１２３４５６', '', 123456]) {
      r = await sign(signReq(card, { pin: bad }));
      assert.equal(r.body.ret_code, RC.PIN_FORMAT, `pin ${JSON.stringify(bad)}`);
      assert.equal(r.body.last_error, 0);
    }
    r = await sign({ ...signReq(card), pin: undefined });
    assert.equal(r.body.ret_code, RC.PIN_FORMAT);
    assert.equal(pinFailures(card.card_sn), 1, 'malformed PINs never reached C_Login');
    assert.equal((await info()).pinTriesLeft, 2);

    r = await sign(signReq(card, { pin: wrong }));
    assert.equal(r.body.ret_code, RC.PIN_INCORRECT);
    assert.equal(r.body.pinTriesLeft, 1);
    r = await sign(signReq(card, { pin: wrong }));
    assert.equal(r.body.ret_code, RC.PIN_LOCKED);
    assert.equal(r.body.last_error, CKR_PIN_LOCKED);
    assert.equal(r.body.pinTriesLeft, 0);
    assert.equal((await info()).pinTriesLeft, 0);

    r = await sign(signReq(card));
    assert.equal(r.body.ret_code, RC.PIN_LOCKED, 'the right PIN on a locked card');
    assert.equal(r.body.last_error, CKR_PIN_LOCKED);
    assert.equal(r.body.signature, undefined);
  } finally {
    rmState(card.card_sn, 'pin-failures');
  }
  const r = await sign(signReq(card));
  assert.equal(r.body.ret_code, 0, 'unlocked again');
});

test('a removed card is no card; back in its reader it signs again', { timeout: limit(10_000) }, async () => {
  const card = moicaCard(0);
  removeCard(card.card_sn);
  try {
    const { body } = await sign(signReq(card));
    assert.equal(body.ret_code, RC.NO_CARD);
    assert.equal(body.signature, undefined);
    const info = (await getJson('/pkcs11info')).body;
    assert.equal(info.slots.find((s) => s.slotID === slots[card.card_sn]).token, null);
  } finally {
    insertCard(card.card_sn);
  }
  assert.equal((await sign(signReq(card))).body.ret_code, 0);
});

test('untrusted sites get 0x76000031 and never reach the card', { timeout: limit(10_000) }, async () => {
  const card = moicaCard(0);
  for (const headers of [
    {}, // curl, or a cross-site no-cors request that reached us without an Origin
    { Origin: EVIL },
    { Origin: 'null' },
    { Origin: `${TRUSTED}.evil.example` },
    { Origin: url }, // the popup's own origin, but no site named
    { Origin: url, 'X-HiPKI-Site': EVIL },
    { 'X-HiPKI-Site': EVIL },
    { Origin: TRUSTED, 'X-HiPKI-Site': EVIL },
  ]) {
    const { body } = await sign(signReq(card, { pin: '000000' }), headers);
    assert.equal(body.ret_code, RC.UNTRUSTED, JSON.stringify(headers));
    assert.equal(body.signature, undefined);
    const info = await getJson('/pkcs11info?withcert=true', headers);
    assert.equal(info.body.ret_code, RC.UNTRUSTED);
    assert.equal(info.body.slots, undefined);
  }
  assert.equal(pinFailures(card.card_sn), 0, 'no PIN was tried for an untrusted site');
  // trusted: the site itself, or the popup naming it
  for (const headers of [{ Origin: TRUSTED }, { Origin: url, 'X-HiPKI-Site': TRUSTED }, { 'X-HiPKI-Site': TRUSTED }]) {
    const { body } = await sign(signReq(card), headers);
    assert.equal(body.ret_code, 0, JSON.stringify(headers));
  }
});

// A PKCS#11 layer over the testcard module whose C_Login answers
// CKR_USER_ALREADY_LOGGED_IN without looking at the PIN (a token left
// logged in): "always", or only for the first call ("once").
const LOGGED_IN_SHIM = `#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <p11-kit/pkcs11.h>
static CK_FUNCTION_LIST mine;
static CK_FUNCTION_LIST_PTR real;
static int calls;
static CK_RV
shim_login(CK_SESSION_HANDLE s, CK_USER_TYPE u, CK_UTF8CHAR_PTR pin, CK_ULONG n)
{
	const char *mode = getenv("SHIM_MODE");
	if (strcmp(mode, "always") == 0 || (strcmp(mode, "once") == 0 && calls++ == 0))
		return CKR_USER_ALREADY_LOGGED_IN;
	return real->C_Login(s, u, pin, n);
}
CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
	void *dl = dlopen(getenv("SHIM_MODULE"), RTLD_NOW | RTLD_LOCAL);
	CK_C_GetFunctionList get = dl != NULL ? (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList") : NULL;
	CK_RV rv = get != NULL ? get(&real) : CKR_GENERAL_ERROR;
	if (rv != CKR_OK)
		return rv;
	mine = *real;
	mine.C_Login = shim_login;
	*out = &mine;
	return CKR_OK;
}
`;

test('a token left logged in is logged out first: the PIN is always checked', { timeout: limit(20_000) }, async () => {
  const src = path.join(tmp, 'logged-in-shim.c');
  const so = path.join(tmp, 'logged-in-shim.so');
  fs.writeFileSync(src, LOGGED_IN_SHIM);
  const cflags = (await execFileP('pkg-config', ['--cflags', 'p11-kit-1'])).toString().trim().split(/\s+/).filter(Boolean);
  await execFileP(process.env.CC || 'cc', ['-shared', '-fPIC', '-o', so, src, ...cflags, '-ldl']);
  const card = moicaCard(0);
  for (const mode of ['always', 'once']) {
    const a = await startAgent(['--module', so, '--trust', TRUSTED, '--nhi-port', '0'],
      { SHIM_MODE: mode, SHIM_MODULE: path.join(BUILD_DIR, 'libisso-testcard.so') });
    try {
      const ask = async (pin) => {
        const res = await fetch(`${a.url}/sign`, {
          method: 'POST', headers: { 'Content-Type': 'application/json', ...ASK }, body: JSON.stringify(signReq(card, { pin })),
        });
        return res.json();
      };
      const wrong = await ask(card.pin === '86420975' ? '97531864' : '86420975');
      assert.equal(wrong.signature, undefined, `${mode}: a wrong PIN never signs`);
      const right = await ask(card.pin);
      if (mode === 'always') {
        // still logged in after a logout: a card error, whatever the PIN
        for (const r of [wrong, right]) {
          assert.equal(r.ret_code, 0x7600000a, JSON.stringify(r));
          assert.equal(r.last_error, 0x100);
        }
        assert.equal(right.signature, undefined);
      } else {
        assert.equal(wrong.ret_code, RC.PIN_INCORRECT, JSON.stringify(wrong));
        assert.equal(right.ret_code, 0, JSON.stringify(right));
      }
      assert.match(a.d.stderr, /"event":"card_already_logged_in"/);
    } finally {
      rmState(card.card_sn, 'pin-failures');
      const r = await a.d.stop();
      assert.equal(r.code, 0, a.d.tail());
    }
  }
});

test('the iSSO profile signs only this site\'s login challenge; other text never reaches the card', { timeout: limit(20_000) }, async () => {
  const card = moicaCard(0);
  const wrong = card.pin === '97531864' ? '86420975' : '97531864';
  const info = async () => (await getJson('/pkcs11info')).body.slots.find((s) => s.token?.serialNumber === card.card_sn).token;
  const good = chal();
  const [tag, issuer, nonce, time] = good.split('\n');
  const refused = [
    TRANSFER,
    `${TRANSFER}\n${good}`,
    chal(EVIL), // another site's challenge
    chal('https://isso.gov.taipei.evil.example'),
    chal('http://isso.gov.taipei'), // same host, other scheme
    `${good}\n`, `${good}\nI agree to transfer NT$1,000,000`, good.replace(/\n/g, '\r\n'), ` ${good}`,
    ['iSSO-LOGIN-v2', issuer, nonce, time].join('\n'),
    ['isso-login-v1', issuer, nonce, time].join('\n'),
    [tag, issuer, nonce.slice(1), time].join('\n'),
    [tag, issuer, `${nonce.slice(1)}=`, time].join('\n'),
    [tag, issuer, nonce, '2026-02-30T10:00:00Z'].join('\n'),
    [tag, issuer, nonce, time.replace('Z', '+08:00')].join('\n'),
    [tag, `${issuer}?x=1`, nonce, time].join('\n'),
    [tag, 'https://user@isso.gov.taipei', nonce, time].join('\n'),
    [tag, issuer, time, nonce].join('\n'),
  ];
  for (const tbs of refused) {
    for (const extra of [{ tbs }, { tbs: Buffer.from(tbs).toString('base64'), tbsEncoding: 'base64', signatureType: 'PKCS7' }]) {
      // a wrong PIN: had the card been asked, a try would be gone
      const { body } = await sign(signReq(card, { ...extra, pin: wrong }));
      assert.equal(body.ret_code, RC.NOT_LOGIN, `refused: ${JSON.stringify(tbs).slice(0, 80)}`);
      assert.equal(body.signature, undefined);
      assert.equal(body.last_error, 0);
      assert.equal(body.pinTriesLeft, undefined);
      assert.match(body.message, /login challenge/);
    }
  }
  // through the agent's own window (the popup's headers) it is the same
  const viaPopup = await sign(signReq(card, { tbs: TRANSFER, pin: wrong }), { Origin: url, ...ASK });
  assert.equal(viaPopup.body.ret_code, RC.NOT_LOGIN);
  assert.equal(pinFailures(card.card_sn), 0, 'no refused text ever reached C_Login');
  assert.equal((await info()).pinTriesLeft, 3);

  // the real challenge reaches the card: a wrong PIN costs a try there
  try {
    const w = await sign(signReq(card, { tbs: good, pin: wrong }));
    assert.equal(w.body.ret_code, RC.PIN_INCORRECT);
    assert.equal(pinFailures(card.card_sn), 1);
  } finally {
    rmState(card.card_sn, 'pin-failures');
  }
  // and with the right PIN it is signed, also with a path in the issuer
  for (const text of [good, chal(`${TRUSTED}/isso/`)]) {
    const { body } = await sign(signReq(card, { tbs: text }));
    assert.equal(body.ret_code, 0, JSON.stringify(body));
    const key = new crypto.X509Certificate(Buffer.from(body.certb64, 'base64')).publicKey;
    assert.ok(crypto.verify('sha256', Buffer.from(text), key, Buffer.from(body.signature, 'base64')));
  }
  // a site signs only its own challenge: the page's origin is not TRUSTED's
  const other = await sign(signReq(card, { tbs: good }), { 'X-HiPKI-Site': `${page.url}` });
  assert.equal(other.body.ret_code, RC.NOT_LOGIN);
  assert.equal((await sign(signReq(card, { tbs: chal(page.url) }), { 'X-HiPKI-Site': page.url })).body.ret_code, 0);
  assert.match(agent.stderr, /"event":"sign_refused".*"reason":"not_login_challenge"/);
  assert.match(agent.stderr, /"event":"sign_refused".*"reason":"other_site"/);
});

test('a Host other than the agent itself gets 403', { timeout: limit(10_000) }, async () => {
  const port = Number(new URL(url).port);
  for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1:${port + 1}`, `127.0.0.2:${port}`]) {
    const r = await rawGet(port, '/pkcs11info', { Host: host });
    assert.equal(r.status, 403, host);
    assert.doesNotMatch(r.body, /slots/);
  }
  for (const host of [`localhost:${port}`, `127.0.0.1:${port}`]) {
    const r = await rawGet(port, '/pkcs11info', { Host: host });
    assert.equal(r.status, 200, host);
  }
});

test('bad requests get a JSON error, never a crash', { timeout: limit(15_000) }, async () => {
  const card = moicaCard(0);
  const post = async (body, type = 'application/json') => {
    const res = await fetch(`${url}/sign`, { method: 'POST', headers: { 'Content-Type': type, ...ASK }, body });
    return { status: res.status, body: await res.json() };
  };
  // only JSON: the types a cross-site form or no-cors fetch may send are refused
  const valid = JSON.stringify(signReq(card, { pin: '000000' }));
  for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
    'application/jsonx', 'application/json-seq', '']) {
    const r = await post(valid, type);
    assert.equal(r.status, 415, `Content-Type ${type}`);
    assert.equal(r.body.ret_code, RC.BAD_REQUEST);
    assert.equal(r.body.signature, undefined);
  }
  const bare = await fetch(`${url}/sign`, { method: 'POST', headers: ASK, body: new Blob([valid]) });
  assert.equal(bare.status, 415, 'no Content-Type');
  assert.equal(pinFailures(card.card_sn), 0, 'none of them reached the card');
  for (const type of ['application/json; charset=utf-8', 'Application/JSON']) {
    const r = await post(JSON.stringify(signReq(card)), type);
    assert.equal(r.body.ret_code, 0, `Content-Type ${type}`);
  }
  for (const body of ['', 'not json', '[]', '"x"', '{"tbs":', '{"tbs":"a","tbs":"b","pin":"123456"}', '{'.repeat(5000)]) {
    const r = await post(body);
    assert.equal(r.body.ret_code, RC.BAD_REQUEST, body.slice(0, 40));
    assert.equal(r.body.func, 'MakeSignature');
  }
  for (const extra of [
    { tbs: '' }, { tbs: 5 }, { tbs: 'x'.repeat(4097) }, { tbs: '!!!', tbsEncoding: 'base64' },
    { tbs: Buffer.alloc(4097).toString('base64'), tbsEncoding: 'base64' }, { tbsEncoding: 'hex' },
    { signatureType: 'CMS' }, { hashAlgorithm: 'SHA1' }, { func: 'Decrypt' }, { slotID: '1' }, { slotID: -1 },
  ]) {
    const { body } = await sign(signReq(card, extra));
    assert.equal(body.ret_code, RC.BAD_REQUEST, JSON.stringify(extra).slice(0, 60));
    assert.equal(typeof body.message, 'string');
  }
  // exactly 4096 bytes is within the limit (and then not a login challenge)
  assert.equal((await sign(signReq(card, { tbs: 'y'.repeat(4096) }))).body.ret_code, RC.NOT_LOGIN);
  const big = await post(JSON.stringify({ ...signReq(card), tbs: 'z'.repeat(70 * 1024) }));
  assert.equal(big.status, 413);
  assert.equal(big.body.ret_code, RC.BAD_REQUEST);
  // an unknown slot
  assert.notEqual((await sign(signReq(card, { slotID: 987654321 }))).body.ret_code, 0);
  // other paths and methods
  assert.equal((await fetch(`${url}/sign`)).status, 405);
  assert.equal((await fetch(`${url}/nope`)).status, 404);
  assert.equal(agent.running, true);
});

test('popupForm, addDomain and selfTest pages', { timeout: limit(10_000) }, async () => {
  const res = await fetch(`${url}/popupForm`);
  assert.equal(res.status, 200);
  const csp = res.headers.get('content-security-policy');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /connect-src 'self'/);
  assert.equal(res.headers.get('x-frame-options'), 'DENY');
  const html = await res.text();
  assert.match(html, /正在與晶片卡溝通/);
  assert.match(html, /Talking to your card/);
  assert.match(html, /src="\/popupForm.js"/);
  const js = await fetch(`${url}/popupForm.js`);
  assert.match(js.headers.get('content-type'), /javascript/);
  const add = await fetch(`${url}/addDomain?domain=${encodeURIComponent(EVIL)}`);
  assert.equal(add.status, 200);
  assert.doesNotMatch(await add.text(), /evil/);
  // addDomain trusted nothing
  assert.equal((await getJson('/pkcs11info', { Origin: EVIL })).body.ret_code, RC.UNTRUSTED);
  const st = await (await fetch(`${url}/selfTest.htm`)).text();
  assert.match(st, /testcard/);
  assert.match(st, /id="cards">\d+</);
});

// ---------------------------------------------------------------- popupForm in a browser

async function popupFlow(origin, request) {
  const { context, page: p } = await newPage(browser);
  try {
    await p.goto(`${origin}/`);
    await p.evaluate(([agentUrl, req]) => { window.AGENT = agentUrl; window.REQUEST = req; }, [url, request]);
    const popupP = p.waitForEvent('popup');
    await p.click('#go');
    const popup = await popupP;
    await p.waitForFunction(() => window.result !== null, null, { timeout: limit(15_000) });
    const out = await p.evaluate(() => ({ result: window.result, messages: window.messages }));
    if (!popup.isClosed()) await popup.waitForEvent('close', { timeout: limit(5_000) }).catch(() => {});
    out.popupClosed = popup.isClosed();
    return out;
  } finally {
    await context.close();
  }
}

test('popupForm: a trusted page gets a signature through the popup', { skip: NO_BROWSER, timeout: limit(60_000) }, async () => {
  const card = moicaCard(0);
  const text = chal(page.url);
  const req = signReq(card, { tbs: text });
  const out = await popupFlow(page.url, req);
  assert.equal(out.messages[0].msg.func, 'getTbs');
  assert.equal(out.messages[0].origin, url);
  const r = out.result;
  assert.equal(r.ret_code, 0, JSON.stringify(r));
  assert.equal(r.cardSN, card.card_sn);
  const key = new crypto.X509Certificate(Buffer.from(r.certb64, 'base64')).publicKey;
  assert.ok(crypto.verify('sha256', Buffer.from(text), key, Buffer.from(r.signature, 'base64')));
  assert.ok(out.popupClosed, 'the popup closes itself');

  const info = await popupFlow(page.url, { func: 'pkcs11info', withcert: true });
  assert.equal(info.result.ret_code, 0);
  assert.ok(info.result.slots.some((s) => s.token?.certs?.length));
});

test('popupForm: an untrusted page gets 0x76000031', { skip: NO_BROWSER, timeout: limit(60_000) }, async () => {
  const card = moicaCard(0);
  // the same page from another origin (localhost is not the trusted 127.0.0.1)
  const other = page.url.replace('127.0.0.1', 'localhost');
  const out = await popupFlow(other, signReq(card, { pin: '000000' }));
  assert.equal(out.result.ret_code, RC.UNTRUSTED);
  assert.equal(out.result.signature, undefined);
  assert.equal(pinFailures(card.card_sn), 0);
});

// ---------------------------------------------------------------- the general signer

test('popupForm: the iSSO profile refuses other text and the page is told why', { skip: NO_BROWSER, timeout: limit(60_000) }, async () => {
  const card = moicaCard(0);
  const out = await popupFlow(page.url, signReq(card, { tbs: TRANSFER }));
  assert.equal(out.result.ret_code, RC.NOT_LOGIN);
  assert.equal(out.result.signature, undefined);
  assert.equal(out.result.confirm, undefined);
  assert.ok(out.popupClosed);
  assert.equal(pinFailures(card.card_sn), 0);
});

/** A second agent with --general-signer, trusting the test page. */
async function withGeneralSigner(fn) {
  const a = await startAgent(['--module', path.join(BUILD_DIR, 'libisso-testcard.so'), '--trust', page.url,
    '--nhi-port', '0', '--general-signer']);
  try {
    assert.match(a.d.stderr, /"profile":"general-signer"/);
    await fn(a);
  } finally {
    await a.d.stop();
  }
  assert.doesNotMatch(a.d.stderr, SANITIZER);
  assert.ok(!a.d.stderr.includes('NT$1,000,000'), 'the text never reaches the log');
  return a;
}

/** The page asks the general signer (agent a) to sign request; returns
 * the page, its popup and context once the popup shows the text. */
async function openConfirm(a, request) {
  const { context, page: p } = await newPage(browser);
  await p.goto(`${page.url}/`);
  await p.evaluate(([agentUrl, req]) => { window.AGENT = agentUrl; window.REQUEST = req; }, [a.url, request]);
  const popupP = p.waitForEvent('popup');
  await p.click('#go');
  const popup = await popupP;
  await popup.locator('#confirm').waitFor({ state: 'visible', timeout: limit(10_000) });
  return { context, p, popup };
}

test('general signer: the text is shown in the agent\'s window and signed only after the citizen confirms there', { skip: NO_BROWSER, timeout: limit(90_000) }, async () => {
  const card = moicaCard(0);
  await withGeneralSigner(async (a) => {
    const slot = (await (await fetch(`${a.url}/pkcs11info`, { headers: { 'X-HiPKI-Site': page.url } })).json())
      .slots.find((s) => s.token?.serialNumber === card.card_sn).slotID;
    const { context, p, popup } = await openConfirm(a, { ...signReq(card, { tbs: TRANSFER }), slotID: slot });
    try {
      assert.equal(await popup.locator('#confirm-text').textContent(), TRANSFER);
      assert.equal(await popup.locator('#confirm-site').textContent(), page.url);
      await axeCheck(popup, 'the agent\'s confirmation window');
      // nothing signed while the citizen has not confirmed
      await sleep(1500);
      assert.equal(await p.evaluate(() => window.result), null, 'signing waits for the citizen');
      assert.equal(pinFailures(card.card_sn), 0);
      // the page cannot reach into the window to press Sign
      const reach = await p.evaluate(() => {
        try { window.popup.document.getElementById('confirm-yes').click(); return 'clicked'; } catch (e) { return e.name; }
      });
      assert.equal(reach, 'SecurityError');
      // the citizen reads and confirms in the agent's window
      await popup.locator('#confirm-yes:not([disabled])').waitFor({ timeout: limit(5_000) });
      await popup.click('#confirm-yes');
      await p.waitForFunction(() => window.result !== null, null, { timeout: limit(15_000) });
      const r = await p.evaluate(() => window.result);
      assert.equal(r.ret_code, 0, JSON.stringify(r));
      assert.equal(r.confirm, undefined, 'the confirmation token never reaches the page');
      const key = new crypto.X509Certificate(Buffer.from(r.certb64, 'base64')).publicKey;
      assert.ok(crypto.verify('sha256', Buffer.from(TRANSFER), key, Buffer.from(r.signature, 'base64')));
      const messages = await p.evaluate(() => window.messages.map((m) => m.msg));
      assert.ok(messages.every((m) => m.confirm === undefined && m.text === undefined));
    } finally {
      await context.close();
    }

    // "Do not sign": the page hears so, the card is never asked
    const second = await openConfirm(a, { ...signReq(card, { tbs: TRANSFER, pin: '86420975' }), slotID: slot });
    try {
      await second.popup.click('#confirm-no');
      await second.p.waitForFunction(() => window.result !== null, null, { timeout: limit(15_000) });
      assert.equal((await second.p.evaluate(() => window.result)).ret_code, RC.DECLINED);
      assert.equal(pinFailures(card.card_sn), 0);
    } finally {
      await second.context.close();
    }

    // outside the window: the page's own origin gets no general signing,
    // a made-up or reused token is refused, a token covers only its text
    const body = (extra = {}) => JSON.stringify({ ...signReq(card, { tbs: TRANSFER, ...extra }), slotID: slot });
    const post = async (headers, b = body()) => (await fetch(`${a.url}/sign`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-HiPKI-Site': page.url, ...headers }, body: b,
    })).json();
    assert.equal((await post({ Origin: page.url })).ret_code, RC.NOT_LOGIN);
    assert.equal((await post({})).ret_code, RC.NOT_LOGIN);
    assert.equal((await post({ Origin: a.url, 'X-HiPKI-Confirm': 'f'.repeat(64) })).ret_code, RC.DECLINED);
    const asked = await post({ Origin: a.url });
    assert.equal(asked.ret_code, RC.CONFIRM);
    assert.equal(asked.text, TRANSFER);
    assert.equal(asked.signature, undefined);
    assert.equal((await post({ Origin: a.url, 'X-HiPKI-Confirm': asked.confirm }, body({ tbs: `${TRANSFER}0` }))).ret_code, RC.DECLINED);
    assert.equal((await post({ Origin: a.url, 'X-HiPKI-Confirm': asked.confirm })).ret_code, RC.DECLINED, 'a token is good once');
    // text that would not read as what is signed is never offered
    for (const tbs of ['pay \u202eelbuod\u202c', 'a\u200bb', 'bell\u0007', 'x\u0085y']) {
      const r = await post({ Origin: a.url }, body({ tbs }));
      assert.equal(r.ret_code, RC.BAD_REQUEST, JSON.stringify(tbs));
      assert.equal(r.confirm, undefined);
    }
    assert.equal(pinFailures(card.card_sn), 0);
    // the login challenge still signs at once
    const login = await post({ Origin: a.url }, body({ tbs: chal(page.url) }));
    assert.equal(login.ret_code, 0, JSON.stringify(login));
  });
});

// ---------------------------------------------------------------- NHI WebSocket

function nhiCard() { return pki.cards.nhi[0]; }

function rocDate(iso) {
  const [y, m, d] = iso.split('-');
  return `${String(Number(y) - 1911).padStart(3, '0')}${m}${d}`;
}

async function nhi(fn) {
  const keep = nhiCard();
  const others = pki.cards.nhi.filter((c) => c.card_no !== keep.card_no);
  for (const c of others) removeCard(c.card_no);
  const ws = await connect(nhiPort, { origin: TRUSTED });
  try {
    assert.equal(ws.status, 101);
    assert.ok(ws.acceptOk, 'Sec-WebSocket-Accept');
    await fn(ws, keep);
  } finally {
    ws.destroy();
    for (const c of others) insertCard(c.card_no);
  }
}

test('WebSocket: GetVersion, GetBasic (name from Big5), GetRandom', { timeout: limit(15_000) }, async () => {
  await nhi(async (ws, card) => {
    const v = await ws.command('GetVersion');
    assert.equal(v.ret, 0);
    assert.match(v.version, /^isso-cardagent /);
    const b = await ws.command('GetBasic');
    assert.deepEqual(b, {
      ret: 0, card_no: card.card_no, name: card.name, national_id: card.national_id,
      birth: rocDate(card.birthdate), sex: card.sex,
    });
    assert.deepEqual(await ws.command(`SecureGetBasicWithParam?Pwd=${encodeURIComponent(card.registration_password)}`), b);
    const r1 = await ws.command('GetRandom');
    const r2 = await ws.command('GetRandom');
    assert.match(r1.random, /^[0-9a-f]{64}$/);
    assert.notEqual(r1.random, r2.random);
  });
});

/** EnCrypt's blob opened with the test NHI service's private key. */
function openBlob(b64) {
  const key = fs.readFileSync(path.join(pki.dir, 'nhi-service.key'));
  return crypto.privateDecrypt({ key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    Buffer.from(b64, 'base64'));
}

test('WebSocket: H_Sign verifies with the card certificate; EnCrypt opens with the service key', { timeout: limit(15_000) }, async () => {
  await nhi(async (ws, card) => {
    const random = `R_${crypto.randomBytes(24).toString('base64url')}`;
    const s = await ws.command(`H_Sign?Random=${random}`);
    assert.equal(s.ret, 0, JSON.stringify(s));
    assert.equal(s.card_no, card.card_no);
    const der = Buffer.from(s.cert, 'base64');
    assert.deepEqual(der, certDer(card.cert));
    const key = new crypto.X509Certificate(der).publicKey;
    assert.ok(crypto.verify('sha256', Buffer.from(random, 'ascii'), key, Buffer.from(s.signature, 'base64')));

    const pwd = card.registration_password;
    const e = await ws.command(`EnCrypt?Pwd=${encodeURIComponent(pwd)}&Random=${random}`);
    assert.equal(e.ret, 0, JSON.stringify(e));
    assert.equal(e.card_no, card.card_no);
    const blob = Buffer.from(e.blob, 'base64');
    assert.equal(blob.length, 256, 'one RSA-2048 block');
    assert.equal(openBlob(e.blob).toString('utf8'), `NHI-PWD\n${random}\n${pwd}`);
    // not a signature any more: the card's public key checks nothing
    assert.ok(!crypto.verify('sha256', Buffer.from(`NHI-PWD\n${random}\n${pwd}`, 'utf8'), key, blob));
    // OAEP is randomised: the same password gives another blob each time
    const again = await ws.command(`EnCrypt?Pwd=${encodeURIComponent(pwd)}&Random=${random}`);
    assert.notEqual(again.blob, e.blob);
    assert.equal(openBlob(again.blob).toString('utf8'), `NHI-PWD\n${random}\n${pwd}`);
    // parameter order does not matter; percent-encoding is decoded
    const e2 = await ws.command(`EnCrypt?Random=${random}&Pwd=a%26b%3Dc%25d`);
    assert.equal(openBlob(e2.blob).toString('utf8'), `NHI-PWD\n${random}\na&b=c%d`);
    const e3 = await ws.command(`EnCrypt?Random=${'Z'.repeat(128)}&Pwd=${encodeURIComponent('~ !"#$%&\'()*')}`);
    assert.equal(openBlob(e3.blob).toString('utf8'), `NHI-PWD\n${'Z'.repeat(128)}\n~ !"#$%&'()*`);
  });
});

test('WebSocket: bad commands and parameters get -1 / -2', { timeout: limit(15_000) }, async () => {
  await nhi(async (ws) => {
    for (const [cmd, ret] of [
      ['Nope', -1], ['getbasic', -1], ['', -1], ['GetBasic ', -1], ['H_Sign?Random=a b', -1],
      ['EnCrypt?Pwd=%zz&Random=a', -1], ['Get\u00e9Basic', -1],
      ['H_Sign', -2], ['H_Sign?Random=', -2], ['H_Sign?Random=a/b', -2], [`H_Sign?Random=${'a'.repeat(129)}`, -2],
      ['H_Sign?Random=a&Random=b', -2], ['H_Sign?Random=a&Extra=1', -2], ['H_Sign?Random=a&Pwd=abcdef', -2],
      ['EnCrypt?Pwd=12345&Random=a', -2], ['EnCrypt?Pwd=1234567890123&Random=a', -2], ['EnCrypt?Pwd=abcdef', -2],
      ['EnCrypt?Pwd=abc%0Adef&Random=a', -2], ['GetBasic?Pwd=abcdef', -2], ['SecureGetBasicWithParam', -2],
      ['GetRandom?Random=a', -2],
      // a NUL inside a value: never cut short (H_Sign would sign "abc")
      ['H_Sign?Random=abc%00def', -2], ['H_Sign?Random=abc%00', -2], ['H_Sign?Random=%00', -2],
      ['EnCrypt?Pwd=abcdef%00gh&Random=a', -2], ['EnCrypt?Pwd=abcdefgh&Random=a%00b', -2],
      ['SecureGetBasicWithParam?Pwd=%00bcdefg', -2],
    ]) {
      const r = await ws.command(cmd);
      assert.deepEqual(r, { ret }, JSON.stringify(cmd));
    }
    // still serving
    assert.equal((await ws.command(`H_Sign?Random=${'a'.repeat(128)}`)).ret, 0);
  });
});

test('WebSocket: no card / card removed', { timeout: limit(15_000) }, async () => {
  await nhi(async (ws, card) => {
    removeCard(card.card_no);
    try {
      assert.deepEqual(await ws.command('GetBasic'), { ret: -4 });
      assert.deepEqual(await ws.command('H_Sign?Random=abc'), { ret: -4 });
    } finally {
      insertCard(card.card_no);
    }
    assert.equal((await ws.command('GetBasic')).ret, 0);
  });
});

test('WebSocket: untrusted or missing Origin and a foreign Host are refused at the handshake', { timeout: limit(10_000) }, async () => {
  for (const opts of [{ origin: EVIL }, {}, { origin: 'null' }, { origin: TRUSTED, host: `evil.example:${nhiPort}` }]) {
    const r = await connect(nhiPort, opts);
    assert.equal(r.status, 403, JSON.stringify(opts));
  }
  assert.equal((await connect(nhiPort, { origin: TRUSTED, path: '/other' })).status, 404);
  assert.equal((await connect(nhiPort, { origin: TRUSTED, headers: { 'Sec-WebSocket-Version': '8' } })).status, 426);
  assert.equal((await connect(nhiPort, { origin: TRUSTED, key: 'c2hvcnQ=' })).status, 400);
  assert.equal((await connect(nhiPort, { origin: TRUSTED, headers: { Upgrade: null } })).status, 426);
  const ok = await connect(nhiPort, { origin: TRUSTED, host: `iccert.nhi.gov.tw:${nhiPort}` });
  assert.equal(ok.status, 101, 'the real component\'s host name is accepted');
  ok.destroy();
});

test('WebSocket framing: ping, fragments, close; bad frames close the connection', { timeout: limit(20_000) }, async () => {
  await nhi(async (ws) => {
    ws.raw(frame(9, 'hello'));
    const pong = await ws.next();
    assert.equal(pong.opcode, 10);
    assert.equal(pong.payload.toString(), 'hello');
    // a fragmented command with a ping in between
    ws.raw(frame(1, 'GetVer', { fin: false }));
    ws.raw(frame(9, 'p'));
    ws.raw(frame(0, 'sion'));
    assert.equal((await ws.next()).opcode, 10);
    const v = await ws.next();
    assert.equal(JSON.parse(v.payload.toString()).ret, 0);
    // 16-bit length form, under the limit
    ws.raw(frame(1, `H_Sign?Random=${'b'.repeat(128)}&`.padEnd(200, '&')));
    assert.equal(JSON.parse((await ws.next()).payload.toString()).ret, 0);
    // orderly close
    ws.raw(frame(8, Buffer.from([0x03, 0xe8])));
    assert.equal(await ws.closeCode(), 1000);
    await ws.ended();
  });
  const cases = [
    ['unmasked', [frame(1, 'GetVersion', { mask: false })], 1002],
    ['reserved bit', [frame(1, 'GetVersion', { rsv: 4 })], 1002],
    ['unknown opcode', [frame(3, 'x')], 1002],
    ['continuation first', [frame(0, 'x')], 1002],
    ['text inside a fragmented message', [frame(1, 'a', { fin: false }), frame(1, 'b')], 1002],
    ['fragmented ping', [frame(9, 'x', { fin: false })], 1002],
    ['long ping', [frame(9, 'x'.repeat(126))], 1002],
    ['non-minimal length', [frame(1, 'GetVersion', { lengthForm: 16 })], 1002],
    ['bad close code', [frame(8, Buffer.from([0x03, 0xed]))], 1002],
    ['binary', [frame(2, 'GetVersion')], 1003],
    ['invalid UTF-8', [frame(1, Buffer.from([0x47, 0xff, 0xfe]))], 1007],
    ['over 8 KiB in one frame', [frame(1, 'a'.repeat(8193))], 1009],
    ['over 8 KiB in fragments', [frame(1, 'a'.repeat(5000), { fin: false }), frame(0, 'a'.repeat(5000))], 1009],
    ['64-bit length', [frame(1, 'a'.repeat(70000))], 1009],
  ];
  for (const [what, frames, code] of cases) {
    const ws = await connect(nhiPort, { origin: TRUSTED });
    for (const f of frames) ws.raw(f);
    assert.equal(await ws.closeCode(), code, what);
    await ws.ended();
  }
  // the largest message allowed is answered
  const ws = await connect(nhiPort, { origin: TRUSTED });
  ws.raw(frame(1, 'x'.repeat(8192)));
  const f = await ws.next();
  assert.equal(f.opcode, 1);
  assert.deepEqual(JSON.parse(f.payload.toString()), { ret: -1 });
  ws.destroy();
});

test('WebSocket over TLS with --nhi-tls-cert / --nhi-tls-key', { timeout: limit(20_000) }, async () => {
  const cert = path.join(tmp, 'nhi-tls.crt');
  const key = path.join(tmp, 'nhi-tls.key');
  await execFileP('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=iccert.nhi.gov.tw',
    '-keyout', key, '-out', cert]);
  const port = await freePort();
  const a = await startAgent(['--module', path.join(BUILD_DIR, 'libisso-testcard.so'), '--trust', TRUSTED,
    '--nhi-port', String(port), '--nhi-tls-cert', cert, '--nhi-tls-key', key, '--nhi-pin', pki.cards.nhi_token_pin]);
  try {
    assert.match(a.d.stderr, /"nhi_tls":true/);
    const ws = await connect(port, { origin: TRUSTED, secure: true });
    assert.equal(ws.status, 101);
    assert.equal((await ws.command('GetVersion')).ret, 0);
    // no --nhi-service-cert: nobody to encrypt the password to
    assert.match(a.d.stderr, /"event":"no_nhi_service_cert"/);
    assert.deepEqual(await ws.command('EnCrypt?Pwd=abcdefgh&Random=abc'), { ret: -6 });
    assert.equal((await ws.command('H_Sign?Random=abc')).ret, 0, 'the rest works');
    ws.raw(frame(9, 'tls'));
    assert.equal((await ws.next()).opcode, 10);
    ws.close();
    const bad = await connect(port, { origin: EVIL, secure: true });
    assert.equal(bad.status, 403);
    // plain text on the TLS port gets no upgrade
    await assert.rejects(connect(port, { origin: TRUSTED }).then((r) => { if (r.status !== 101) throw new Error('refused'); return r; }));
  } finally {
    const r = await a.d.stop();
    assert.equal(r.code, 0, a.d.tail());
    assert.doesNotMatch(a.d.stderr, SANITIZER, a.d.tail());
  }
});

// ---------------------------------------------------------------- no module, log, exit

test('without a usable module: 0x76000002 and NHI -3, pages still served', { timeout: limit(15_000) }, async () => {
  const a = await startAgent(['--module', path.join(tmp, 'no-such-module.so'), '--trust', TRUSTED, '--nhi-port', '0']);
  try {
    const info = await (await fetch(`${a.url}/pkcs11info`, { headers: ASK })).json();
    assert.equal(info.ret_code, RC.NO_MODULE);
    assert.deepEqual(info.slots, []);
    const res = await fetch(`${a.url}/sign`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', ...ASK }, body: JSON.stringify({ tbs: chal(), pin: '123456' }),
    });
    assert.equal((await res.json()).ret_code, RC.NO_MODULE);
    assert.match(await (await fetch(`${a.url}/selfTest.htm`)).text(), /not loaded/);
  } finally {
    const r = await a.d.stop();
    assert.equal(r.code, 0, a.d.tail());
  }
});

test('bad options stop the agent before it listens', { timeout: limit(10_000) }, async () => {
  const notCert = path.join(tmp, 'not-a-cert.pem');
  fs.writeFileSync(notCert, 'hello\n');
  for (const args of [['--trust', 'ftp://x'], ['--trust', 'https://a.gov/path'], ['--port', '70000'], ['--bogus'], ['--nhi-tls-cert', '/x'],
    ['--nhi-service-cert', path.join(tmp, 'no-such.crt')], ['--nhi-service-cert', notCert]]) {
    const d = new Daemon('isso-cardagent', path.join(BUILD_DIR, 'isso-cardagent'), ['--nhi-port', '0', '--port', '0', ...args], { env: { PATH: process.env.PATH }, cwd: tmp });
    await d.exited;
    assert.notEqual(d.exitCode, 0, args.join(' '));
    assert.doesNotMatch(d.stderr, /"listening"/);
  }
  // the general signer is switched on only by a clear yes
  const d = new Daemon('isso-cardagent', path.join(BUILD_DIR, 'isso-cardagent'), ['--nhi-port', '0', '--port', '0'],
    { env: { PATH: process.env.PATH, ISSO_CARDAGENT_GENERAL_SIGNER: 'maybe' }, cwd: tmp });
  await d.exited;
  assert.equal(d.exitCode, 2);
  assert.match(d.stderr, /ISSO_CARDAGENT_GENERAL_SIGNER/);
});

test('the log holds no PIN, password, national ID or tbs', { timeout: limit(10_000) }, async () => {
  const log = agent.stderr;
  assert.match(log, /"event":"listening"/);
  assert.match(log, /"event":"sign"/);
  for (const s of new Set(secrets)) assert.ok(!log.includes(s), `the log contains a secret (${s.slice(0, 2)}…)`);
  for (const s of ['iSSO-LOGIN', 'NT$1,000,000', 'NHI-PWD', '登入']) assert.ok(!log.includes(s), `the log contains ${s}`);
});

test('SIGTERM with a WebSocket open: exit 0, no sanitizer report', { timeout: limit(15_000) }, async () => {
  const ws = await connect(nhiPort, { origin: TRUSTED });
  assert.equal(ws.status, 101);
  await sleep(50);
  const r = await agent.stop();
  assert.equal(r.killed, false, 'stopped within the time limit');
  assert.equal(r.code, 0, agent.tail());
  assert.equal(await ws.closeCode(), 1001, 'going away');
  assert.doesNotMatch(agent.stderr, SANITIZER, agent.tail());
});
