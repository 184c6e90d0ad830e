// SMS notices (here: the password-changed notice of a TaipeiPass reset)
// are store jobs, not the in-memory outbox of one-time codes: a notice
// queued on a node that dies before the gateway took it is sent by another
// node sharing the store. The gateway is isso-sim's, behind a switch that
// makes it fail on demand, so the node queues the notice, fails to send
// it (a logged attempt, the job given back for later) and is then killed
// with SIGKILL; a second node on the same PostgreSQL sends it. In the
// store the number and the text are sealed; no log line carries them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startStack, startTestServer, freePort, Daemon, waitReady, HttpAgent, REPO, BUILD_DIR, limit, sleep,
} from './lib/harness.mjs';
import { Postgres } from './lib/pgsql.mjs';

const T = { timeout: limit(60_000) };
const MSG = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'zh-TW.json'), 'utf8'));
const NOTICE = MSG['tp.reset_notice_sms'];

let pg;
let stack;
let gateway;
let gatewayFails = false;
let nodeB = null;

/** Every SMS the sim phone holds for phone, newest first. */
async function smsList(phone) {
  const res = await fetch(`${stack.simUrl}/phone/${phone}/sms`);
  assert.equal(res.status, 200);
  return res.json();
}

async function waitSms(phone, pred, what, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = (await smsList(phone)).find(pred);
    if (found) return found;
    if (Date.now() >= deadline) assert.fail(`no ${what} SMS reached ${phone} within ${ms} ms`);
    await sleep(100);
  }
}

function events(daemon, name) {
  return daemon.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => {
    try { return JSON.parse(l); } catch { return null; }
  }).filter((e) => e?.event === name);
}

async function untilEvent(daemon, name, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (events(daemon, name).length > 0) return;
    if (!daemon.running) throw daemon.failure(`exited before logging ${name}`);
    await sleep(50);
  }
  throw daemon.failure(`did not log ${name} within ${timeoutMs} ms`);
}

const SANITIZER = /(AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:)/;

function noSanitizerReport(d) {
  assert.ok(!SANITIZER.test(d.stderr), `${d.name} reported a sanitizer error:\n${d.tail()}`);
}

before(async () => {
  pg = new Postgres().init();
  // isso-sim's SMS gateway, behind a switch: 503 while gatewayFails.
  gateway = await startTestServer(async (req, body, res) => {
    if (gatewayFails || !stack?.simUrl) {
      res.statusCode = 503;
      res.end('gateway down');
      return;
    }
    const r = await fetch(`${stack.simUrl}${req.url}`, {
      method: req.method,
      headers: { 'content-type': req.headers['content-type'] ?? 'application/x-www-form-urlencoded' },
      body: req.method === 'POST' ? body : undefined,
    });
    res.statusCode = r.status;
    res.setHeader('content-type', r.headers.get('content-type') ?? 'text/plain');
    res.end(Buffer.from(await r.arrayBuffer()));
  });
  stack = await startStack({
    label: 'sms-notice',
    env: {
      ISSO_STORE_DRIVER: 'postgresql',
      ISSO_STORE_CONNINFO: pg.conninfo,
      ISSO_SMS_URL: `${gateway.url}/api/mtk/SmSend`,
    },
  });
}, { timeout: limit(60_000) });

after(async () => {
  if (nodeB) await nodeB.stop();
  if (stack) await stack.stop({ check: false });
  if (gateway) await gateway.close();
  if (pg) pg.destroy();
});

test('a notice queued on a node killed before sending it is sent by another node', T, async () => {
  const phone = '0912000666';
  const m = await stack.addUser({ account: 'notice.survives', password: 'Before-reset-42', phone });

  // The reset's code is a one-time code: the in-memory outbox, gateway up.
  const agent = new HttpAgent();
  const page = await agent.get(stack.url('/taipeipass/forgot'));
  const { res } = await agent.submit(page.forms().find((f) => f.has('phone') && !f.has('account')), { phone });
  const codeForm = res.forms().find((f) => f.has('pending') && f.has('code'));
  assert.ok(codeForm, 'the code page');
  const codeSms = await waitSms(phone, (s) => /^\d{6}$/.test(s.code ?? ''), 'code', 5000);

  // The gateway fails now: the notice is queued, tried, given back.
  gatewayFails = true;
  const newPw = 'After-reset-42';
  const done = (await agent.submit(codeForm, { code: codeSms.code, password: newPw, password2: newPw })).res;
  assert.equal(done.status, 200, done.alerts().join(' | '));
  const nodeA = stack.issod;
  await untilEvent(nodeA, 'sms_notice_failed', limit(10_000));

  // Sealed in the store: neither the number nor the text.
  const rows = pg.psql("SELECT data FROM jobs WHERE kind = 'sms_notice'");
  assert.ok(rows.length > 0, 'the notice is a store job');
  assert.ok(!rows.includes(phone) && !rows.includes(NOTICE), 'number and text are sealed');
  assert.ok(!(await smsList(phone)).some((s) => s.body === NOTICE), 'not sent yet');

  nodeA.child.kill('SIGKILL');
  await nodeA.exited;
  gatewayFails = false;

  // Another node on the same store, straight to isso-sim's gateway.
  const port = await freePort();
  nodeB = new Daemon('issod-b', path.join(BUILD_DIR, 'issod'), [], {
    env: { ...stack.env, ISSO_SERVER_PORT: String(port), ISSO_SMS_URL: `${stack.simUrl}/api/mtk/SmSend` },
    cwd: stack.tmp,
  });
  await waitReady(nodeB, `http://127.0.0.1:${port}/readyz`);
  const notice = await waitSms(phone, (s) => s.body === NOTICE, 'password-changed', limit(15_000));
  assert.ok(!notice.code, 'the notice carries no code');
  await untilEvent(nodeB, 'sms_notice_sent', limit(5_000));
  const sent = events(nodeB, 'sms_notice_sent')[0];
  assert.ok(Number(sent.attempts) >= 2, `sent on a later attempt: ${sent.attempts}`);
  assert.equal(pg.psql("SELECT count(*) FROM jobs WHERE kind = 'sms_notice'"), '0', 'the job is done');
  assert.equal((await smsList(phone)).filter((s) => s.body === NOTICE).length, 1, 'sent once');

  for (const d of [nodeA, nodeB]) {
    assert.ok(!d.stderr.includes(phone), `${d.name} never logs the number`);
    assert.ok(!d.stderr.includes(NOTICE), `${d.name} never logs the text`);
  }
  const r = await nodeB.stop();
  assert.equal(r.code, 0, 'the second node stops cleanly');
  noSanitizerReport(nodeB);
  noSanitizerReport(nodeA);
  nodeB = null;
});
