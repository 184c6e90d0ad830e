// issod alone (the peer has no such method): the telecom method
// (手機電信驗證), an SMS one-time code, through isso-sim playing the
// carriers and the citizen's phone: authorize -> method choice -> the form
// (ID, number, birthdate, carrier) -> the SMS code read from isso-sim's
// phone -> the QR page -> the phone opens the carrier link over mobile
// data -> the page's status poll (every 250 ms here; the page polls every 2 s) -> done -> consent ->
// code -> token.
//
// Each test citizen of sim/identities.json with a post-paid number logs in
// once, one after the other: issod limits SMS and carrier checks per
// number and per ID (a 35 s SMS cool-down, five checks an hour), so this
// is the latency and CPU cost of one flow, not a throughput.
import fs from 'node:fs';
import path from 'node:path';
import { REPO, sameEndpoint, sleep } from '../../tests/integration/lib/harness.mjs';
import { authRequest, newAgent, redeem } from '../lib/oauth.mjs';

const SCOPE = 'openid phone';
const POLL_MS = 250;

function citizens() {
  const d = JSON.parse(fs.readFileSync(path.join(REPO, 'sim', 'identities.json'), 'utf8'));
  return d.citizens
    .filter((c) => c.carrier && !c.prepaid && /^[A-Z][12]\d{8}$/.test(c.national_id))
    .map((c) => ({ id: c.national_id, phone: c.phone, birthdate: c.birthdate, carrier: c.carrier.id }));
}

async function telecomLogin(t, p) {
  const agent = newAgent();
  const a = authRequest(t, SCOPE);
  const isClient = (next) => sameEndpoint(next, t.client.redirect_uri);
  const first = await agent.followUntil(a.url, isClient);
  const pick = first.res.links().find((l) => l.href && new URL(l.href).pathname === '/login/telecom');
  if (!pick) throw new Error(`no telecom method on the choice page (${first.res.status})`);
  const tx = new URL(pick.href).searchParams.get('t');
  const page = await agent.get(pick.href);
  const form = page.forms().find((f) => f.has('id_number') && f.has('carrier'));
  if (!form) throw new Error(`no telecom form (${page.status})`);
  const step2 = (await agent.submit(form, {
    id_number: p.id, phone: p.phone, birthdate: p.birthdate, carrier: p.carrier, agree: '1',
  }, null, isClient)).res;
  const codeForm = step2.forms().find((f) => f.has('code'));
  if (!codeForm) throw new Error(`no SMS code page for ${p.phone}: ${step2.alerts().join(' | ')}`);
  const sms = await t.stack.readLastSms(p.phone);
  if (!sms?.code) throw new Error(`no SMS code reached ${p.phone}`);
  const verify = codeForm.buttons.find((b) => b.value === 'verify');
  const qr = (await agent.submit(codeForm, { code: sms.code }, verify, isClient)).res;
  const link = qr.links().find((l) => l.attrs.id === 'open-here');
  if (!link) throw new Error(`no carrier link on the QR page (${qr.status}): ${qr.alerts().join(' | ')}`);
  const u = new URL(link.href);
  u.searchParams.set('network', 'mobile');
  const opened = await fetch(u);
  await opened.arrayBuffer();
  if (opened.status !== 200) throw new Error(`the phone opening the carrier link got ${opened.status}`);
  for (;;) {
    const st = (await agent.get(`${t.issuer}/login/telecom/status?t=${tx}&shown=pending`)).json();
    if (st.state === 'done') break;
    if (st.state !== 'pending') throw new Error(`telecom status ${st.state}`);
    await sleep(POLL_MS);
  }
  let r = await agent.followUntil(`${t.issuer}/login/telecom/done?t=${tx}`, isClient);
  if (!r.stopped) {
    const cf = r.res.forms().find((f) => f.buttons.some((b) => b.name === 'decision'));
    if (!cf) throw new Error(`no consent page after telecom (${r.res.status})`);
    r = await agent.submit(cf, {}, cf.buttons.find((b) => b.value === 'allow'), isClient);
    if (!r.stopped) throw new Error(`consent did not go back to the client (${r.res.status})`);
  }
  return redeem(t, a, r.url);
}

export default {
  name: 'otp_code_flow',
  title: 'telecom SMS-OTP code flow via isso-sim (issod alone: no peer equivalent)',
  tool: 'node, one at a time',
  targets: ['issod'],
  alone: true,
  async run(t, ctx) {
    const lat = [];
    let errors = 0;
    const firstErrors = [];
    const start = process.hrtime.bigint();
    for (const p of citizens()) {
      const t0 = process.hrtime.bigint();
      try {
        await telecomLogin(t, p);
        lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch (err) {
        errors++;
        if (firstErrors.length < 3) firstErrors.push(String(err.message).slice(0, 400));
      }
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    ctx.countSessions(t, lat.length);
    lat.sort((x, y) => x - y);
    return {
      ops: lat.length, seconds, rps: lat.length / seconds,
      p50: lat[Math.floor((lat.length - 1) / 2)] ?? null, p99: lat[lat.length - 1] ?? null,
      errors, firstErrors,
    };
  },
};
