// A TaipeiPass password reset (忘記密碼) and what it ends and tells:
// every earlier login of the member ends — access and refresh tokens,
// browser sessions (single sign-on), also those of a TaipeiPass app login
// — and the TaipeiPass app devices enrolled with the old password are
// revoked — and the member gets an SMS saying the password was changed, on the
// number the reset was proven with, without any secret in it. A reset
// that does not complete sends no such notice. (iSSO has no e-mail
// sender: a member with an e-mail address gets the SMS only.)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as client from 'openid-client';
import * as tpapp from './lib/tpapp.mjs';
import {
  startStack, HttpAgent, REPO, limit, redirectParams, sameEndpoint, sleep, decodeEntities,
} from './lib/harness.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted: the agent stops at it
const SCOPE = 'openid uuid profile phone';
const T = { timeout: limit(20_000) };
const MSG = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'zh-TW.json'), 'utf8'));

function msg(key) {
  assert.ok(typeof MSG[key] === 'string', `no message ${key} in locales/zh-TW.json`);
  return MSG[key];
}

let stack;
let cfg;

before(async () => {
  stack = await startStack({ label: 'tpreset' });
  const c = await stack.registerClient({
    name: '臺北市測試機關', purpose: '密碼重設測試', redirectUris: [RP], scope: SCOPE,
  });
  cfg = await client.discovery(new URL(stack.issuer), c.client_id, { id_token_signed_response_alg: 'ES256' },
    client.ClientSecretBasic(c.client_secret), { execute: [client.allowInsecureRequests], timeout: 5 });
}, { timeout: limit(60_000) });

after(async () => {
  if (stack) await stack.stop({ check: false });
});

const isRp = (next) => sameEndpoint(next, RP);
const pathOf = (url) => new URL(url).pathname;

async function startAuth(extra = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: RP, scope: SCOPE, state, nonce, ...extra,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  return { url, verifier, state, nonce };
}

async function redeem(a, cb) {
  return client.authorizationCodeGrant(cfg, new URL(cb), {
    pkceCodeVerifier: a.verifier, expectedState: a.state, expectedNonce: a.nonce,
  });
}

/** Every SMS the sim phone holds for phone, newest first. */
async function smsList(phone) {
  const res = await fetch(`${stack.simUrl}/phone/${phone}/sms`);
  assert.equal(res.status, 200);
  return res.json();
}

/** Waits (the reset's SMS go through the outbox) for an SMS to phone
 * that satisfies pred; fails after ms. */
async function waitSms(phone, pred, what, ms = 3000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = (await smsList(phone)).find(pred);
    if (found) return found;
    if (Date.now() >= deadline) assert.fail(`no ${what} SMS reached ${phone} within ${ms} ms`);
    await sleep(100);
  }
}

const codeForm = (res) => res.forms().find((f) => f.has('pending') && f.has('code'));

/** Forgot password → the code page: {agent, res}. */
async function forgotStart(phone) {
  const agent = new HttpAgent();
  const page = await agent.get(stack.url('/taipeipass/forgot'));
  const form = page.forms().find((f) => f.has('phone') && !f.has('account'));
  assert.ok(form, 'the forgot form');
  const { res } = await agent.submit(form, { phone });
  assert.ok(codeForm(res), `the code page: ${res.pageText().slice(0, 300)}`);
  return { agent, res };
}

/** A TaipeiPass app login of member in agent, answered by the app's
 * device dev (tpapp.enrolled): its tokens. */
async function appLogin(agent, member, dev) {
  const a = await startAuth();
  const r = await agent.followUntil(a.url.href, isRp);
  const t = new URL(r.url).searchParams.get('t');
  const page = await agent.get(stack.url(`/login/taipeipass/app?t=${t}`));
  const qr = decodeEntities(/data-qr="([^"]+)"/.exec(page.text)[1]);
  const number = /id="tp-number">(\d{2})</.exec(page.text)[1];
  const ok = await tpapp.answer(stack, qr, dev, { number });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const done = await agent.followUntil(stack.url(`/login/taipeipass/app-done?t=${t}`), isRp);
  let cb = done.url;
  if (!done.stopped) {
    assert.equal(pathOf(done.url), '/consent');
    const cf = done.res.forms().find((f) => f.buttons.some((b) => b.name === 'decision'));
    cb = (await agent.submit(cf, {}, cf.buttons.find((b) => b.value === 'allow'), isRp)).url;
  }
  return redeem(a, cb);
}

test('a completed reset ends the app login\'s session and refresh token and tells the member by SMS', T, async () => {
  const m = await stack.addUser({ account: 'reset.notice', password: 'Before-reset-42', phone: '0912000555', email: 'reset.notice@example.tw' });
  const browser = new HttpAgent(); // the member's browser, logged in by the app
  const dev = await tpapp.enrolled(stack, m, 'the member\'s phone');
  const tokens = await appLogin(browser, m, dev);
  assert.ok(tokens.refresh_token, 'a refresh token');
  const silentBefore = await browser.followUntil((await startAuth({ prompt: 'none' })).url.href, isRp);
  assert.ok(redirectParams(silentBefore.url).get('code'), 'single sign-on works before the reset');

  const { agent, res } = await forgotStart(m.phone);
  const codeSms = await waitSms(m.phone, (s) => /^\d{6}$/.test(s.code ?? ''), 'code');
  const newPw = 'After-reset-42';
  const done = (await agent.submit(codeForm(res), { code: codeSms.code, password: newPw, password2: newPw })).res;
  assert.equal(done.status, 200, done.alerts().join(' | '));
  assert.ok(done.pageText().includes(msg('tp.reset_done')));

  const notice = await waitSms(m.phone, (s) => s.body === msg('tp.reset_notice_sms'), 'password-changed');
  assert.ok(!notice.code, 'the notice carries no code');
  assert.ok(!notice.body.includes(newPw) && !notice.body.includes(m.account), 'nor the password or account');
  assert.equal((await smsList(m.phone))[0].body, msg('tp.reset_notice_sms'), 'it is the last SMS');

  await assert.rejects(client.refreshTokenGrant(cfg, tokens.refresh_token), (err) => {
    assert.equal(err?.error ?? err?.cause?.error, 'invalid_grant');
    return true;
  });
  const silentAfter = await browser.followUntil((await startAuth({ prompt: 'none' })).url.href, isRp);
  assert.equal(redirectParams(silentAfter.url).get('error'), 'login_required', 'the session ended');
  // the app's device, enrolled with the old password, approves no more
  const devices = await stack.issoctl(['member', 'device', 'list', '--account', m.account]);
  assert.equal(devices.length, 1);
  assert.equal(devices[0].revoked, true, 'the reset revoked the device');
  await assert.rejects(appLogin(new HttpAgent(), m, dev), /unknown_device/);
  // enrolled again with the new password, it does
  const dev2 = await tpapp.enrolled(stack, { account: m.account, password: newPw });
  assert.ok((await appLogin(new HttpAgent(), m, dev2)).access_token);
});

test('a reset that does not complete sends no notice', T, async () => {
  const m = await stack.addUser({ account: 'reset.nonotice', password: 'Before-reset-43', phone: '0912000556' });
  const { agent, res } = await forgotStart(m.phone);
  const codeSms = await waitSms(m.phone, (s) => /^\d{6}$/.test(s.code ?? ''), 'code');
  const wrong = codeSms.code === '000000' ? '111111' : '000000';
  const r = (await agent.submit(codeForm(res), { code: wrong, password: 'Never-set-42', password2: 'Never-set-42' })).res;
  assert.equal(r.status, 400);
  await sleep(500); // the outbox would have sent it by now
  const all = await smsList(m.phone);
  assert.equal(all.length, 1, `only the code: ${all.map((s) => s.body).join(' | ')}`);
});

test('issod is still healthy', T, async () => {
  assert.ok(await stack.healthy());
});
