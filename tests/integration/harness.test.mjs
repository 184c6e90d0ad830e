// Unit checks of the harness itself (HTML form extraction, cookie jar,
// redirect handling). No daemon needed; runs in well under a second.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseForms, parseLinks, parseAlerts, parseTitle, decodeEntities, CookieJar, HttpAgent, startTestServer, sameEndpoint, textContent,
} from './lib/harness.mjs';

const PAGE = `<!doctype html><html lang="zh-TW"><head><title>臺北市府單一身分驗證入口 &amp; 登入</title>
<script>var f = '<form action="/evil"><input name="x">';</script>
<style>.a>b{}</style></head><body>
<!-- <form action="/commented"><input name="nope"></form> -->
<div role="alert"><p>帳號或密碼<strong>錯誤</strong></p><p>請再試一次</p></div>
<form method=post action='/login/taipeipass?t=abc&amp;x=1' id=f1>
  <input type="hidden" value="tok&quot;en" name="csrf">
  <input name=t type=hidden value=abc>
  <label for="a">帳號</label><input id="a" name="account" autocomplete="username">
  <input type="password" name="password" value="">
  <input type="checkbox" name="remember" checked>
  <input type="checkbox" name="nope">
  <input type="radio" name="r" value="1"><input type="radio" name="r" value="2" checked>
  <input type="text" name="off" value="x" disabled>
  <select name="lang"><option value="zh-TW">中文<option value="en" selected>English</select>
  <textarea name="note">
line &lt;1&gt;</textarea>
  <button type="submit" name="go" value="1">登入 <span aria-hidden="true">→</span></button>
  <input type="submit" name="alt" value="Other">
  <button type="button" name="noop">x</button>
</form>
<form action="" method="POST"><button name="decision" value="allow">同意授權</button><button name="decision" value="deny">不同意</button></form>
<input form="f1" type="hidden" name="outside" value="yes">
<a href="/login/taipeipass?t=abc" class="card"><span>台北通</span> 點我登入</a>
<a href='https://example.org/x?a=1&amp;b=2'><img alt="外部"></a>
</body></html>`;

test('form extraction: attribute order, quotes, entities, control kinds', () => {
  const forms = parseForms(PAGE, 'http://op.test/login/taipeipass?t=abc');
  assert.equal(forms.length, 2, 'scripts and comments hold no forms');
  const [f, c] = forms;
  assert.equal(f.method, 'POST');
  assert.equal(f.action, 'http://op.test/login/taipeipass?t=abc&x=1');
  assert.deepEqual(f.fields(), [
    ['csrf', 'tok"en'], ['t', 'abc'], ['account', ''], ['password', ''], ['remember', 'on'], ['r', '2'],
    ['lang', 'en'], ['note', 'line <1>'], ['outside', 'yes'],
  ]);
  assert.deepEqual(f.buttons.map((b) => [b.name, b.value, b.text]), [['go', '1', '登入 →'], ['alt', 'Other', '']]);
  assert.ok(f.has('password'));
  assert.equal(f.value('csrf'), 'tok"en');
  assert.equal(c.action, 'http://op.test/login/taipeipass?t=abc', 'empty action is the page URL');
  assert.deepEqual(c.buttons.map((b) => `${b.name}=${b.value}:${b.text}`), ['decision=allow:同意授權', 'decision=deny:不同意']);
});

test('links, alerts, title, text', () => {
  const links = parseLinks(PAGE, 'http://op.test/login?t=abc');
  assert.deepEqual(links.map((l) => [l.href, l.text]), [
    ['http://op.test/login/taipeipass?t=abc', '台北通 點我登入'],
    ['https://example.org/x?a=1&b=2', '外部'],
  ]);
  assert.deepEqual(parseAlerts(PAGE), ['帳號或密碼 錯誤 請再試一次']);
  assert.equal(parseTitle(PAGE), '臺北市府單一身分驗證入口 & 登入');
  assert.equal(decodeEntities('&#x53F0;&#21271;&amp;&bogus;'), '台北&&bogus;');
  assert.ok(!textContent(PAGE).includes('var f'));
});

test('formRequest: overrides, clicked button, GET forms', () => {
  const agent = new HttpAgent();
  const [f, c] = parseForms(PAGE, 'http://op.test/p');
  const r = agent.formRequest(f, { account: 'me', password: 'pw', remember: null }, f.buttons[0]);
  assert.equal(r.method, 'POST');
  const body = new URLSearchParams(r.form);
  assert.equal(body.get('account'), 'me');
  assert.equal(body.get('password'), 'pw');
  assert.equal(body.get('remember'), null);
  assert.equal(body.get('go'), '1');
  assert.equal(body.get('alt'), null, 'only the clicked button');
  const d = agent.formRequest(c, {}, c.buttons[1]);
  assert.deepEqual(d.form, [['decision', 'deny']]);
  const [g] = parseForms('<form action="/s?old=1"><input name="q" value="a b"></form>', 'http://op.test/');
  assert.deepEqual(agent.formRequest(g, {}), { url: 'http://op.test/s?q=a+b', method: 'GET' });
});

test('cookie jar: host, path, expiry, deletion, ports ignored', () => {
  const jar = new CookieJar();
  jar.store('http://127.0.0.1:8080/login/x', [
    'sid=1; Path=/; HttpOnly; SameSite=Lax',
    'deep=2; Path=/login',
    'gone=3; Max-Age=0',
    'old=4; Expires=Thu, 01 Jan 1970 00:00:00 GMT',
    'other=5; Domain=example.org',
    'dflt=6',
  ]);
  assert.equal(jar.header('http://127.0.0.1:9999/'), 'sid=1');
  assert.equal(jar.header('http://127.0.0.1:8080/login/taipeipass'), 'deep=2; dflt=6; sid=1');
  assert.equal(jar.header('http://127.0.0.1:8080/loginx'), 'sid=1');
  assert.equal(jar.header('http://localhost:8080/'), '');
  jar.store('http://127.0.0.1:8080/', ['sid=; Path=/; Max-Age=0']);
  assert.equal(jar.get('sid'), undefined);
  jar.store('https://a.test/', ['s=1; Secure']);
  assert.equal(jar.header('http://a.test/'), '');
  assert.equal(jar.header('https://a.test/'), 's=1');
});

test('HttpAgent: cookies across redirects, 303 turns POST into GET, followUntil stops before the client', async () => {
  const seen = [];
  const srv = await startTestServer((req, body, res) => {
    seen.push(`${req.method} ${req.url} cookie=${req.headers.cookie || ''} origin=${req.headers.origin || ''} body=${body}`);
    if (req.url === '/start') {
      res.writeHead(302, { location: '/set', 'set-cookie': 'a=1; Path=/; HttpOnly' });
    } else if (req.url === '/set') {
      res.writeHead(303, { location: '/form', 'set-cookie': ['b=2; Path=/', 'a=1x; Path=/'] });
    } else if (req.url === '/form' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end('<form method="post"><input type="hidden" name="csrf" value="k"><button name="go" value="y">Go</button></form>');
    } else if (req.url === '/form') {
      res.writeHead(303, { location: 'http://127.0.0.1:9/cb?code=abc&state=s' });
    }
    res.end();
  });
  try {
    const agent = new HttpAgent();
    const r = await agent.followUntil(`${srv.url}/start`);
    assert.equal(r.stopped, false);
    assert.equal(r.res.status, 200);
    const [form] = r.res.forms();
    const out = await agent.submit(form, {}, form.buttons[0], (next) => sameEndpoint(next, 'http://127.0.0.1:9/cb'));
    assert.equal(out.stopped, true);
    assert.equal(out.url, 'http://127.0.0.1:9/cb?code=abc&state=s');
    assert.match(seen.at(-1), /^POST \/form cookie=a=1x; b=2 origin=http:\/\/127\.0\.0\.1:\d+ body=csrf=k&go=y$/);
    assert.equal(seen.length, 4, 'the client redirect_uri was not requested');
  } finally {
    await srv.close();
  }
});
