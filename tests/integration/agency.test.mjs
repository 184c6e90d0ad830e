// Agency applications (申請介接) and their review, through issoctl:
// application list|show|approve (narrowing a field)|refuse, client
// delete (its tokens and consents go with it), admin grant|revoke (the
// city administrator role), org list|remove (refused while the
// organisation owns services)|member remove. Every decision is an audit
// event; an approval never prints the new secret (the agency takes it
// once from its own page).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { startStack, HttpAgent, limit } from './lib/harness.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted: the agent stops at it
const T = { timeout: limit(30_000) };
const UBN = '04595257'; // a valid 統一編號 (checksum)

let stack;
let citizen;

async function audit() {
  return stack.issoctl(['audit', 'export']);
}

async function events(name) {
  const all = await audit();
  return all.filter((e) => e.event === name).map((e) => (typeof e.data === 'string' ? JSON.parse(e.data) : e.data));
}

async function rp(clientId, secret) {
  return client.discovery(new URL(stack.issuer), clientId, { id_token_signed_response_alg: 'ES256' },
    client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests], timeout: 5 });
}

async function login(cfg, scope) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: RP, scope, code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256', state, nonce,
  });
  const agent = new HttpAgent();
  const cb = await agent.loginViaPages({ authorizeUrl: url, account: citizen.account, password: citizen.password });
  return client.authorizationCodeGrant(cfg, new URL(cb), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
}

before(async () => {
  stack = await startStack({ label: 'agency' });
  citizen = await stack.addUser({
    account: 'agency.citizen', password: 'Agency-citizen-42', phone: '0912000555', name: '申請測試',
    email: 'citizen@example.test', phoneVerified: true,
  });
});

after(async () => {
  await stack?.stop();
});

test('issoctl: an application is approved with a field narrowed; the secret is not printed', T, async () => {
  const added = await stack.issoctl(['client', 'add', '--name', '審核測試服務', '--redirect-uri', RP,
    '--scope', 'openid profile phone email']);
  const list = await stack.issoctl(['application', 'list']);
  const mine = list.find((c) => c.client_id === added.client_id);
  assert.ok(mine, 'the pending client is listed');
  assert.equal(mine.application_state, 'pending');

  const approved = await stack.issoctl(['application', 'approve', added.client_id, '--drop', 'email']);
  assert.equal(approved.status, 'approved');
  assert.equal(approved.application_state, 'approved');
  assert.equal(approved.scope, 'openid profile phone');
  assert.equal(approved.client_secret, undefined, 'the reviewer never sees the secret');
  assert.ok(!JSON.stringify(approved).includes(added.client_secret));
  const ev = (await events('client_approved')).find((d) => d.client_id === added.client_id);
  assert.deepEqual(ev.dropped, ['email']);
  assert.equal(ev.by, 'issoctl');

  // The secret of client add is void: the approval made a new one.
  const cfg = await rp(added.client_id, added.client_secret);
  await assert.rejects(login(cfg, 'openid profile'));

  // Approved once, not again; unknown ids and bad fields are refused.
  let r = await stack.issoctl(['application', 'approve', added.client_id], { allowFailure: true });
  assert.equal(r.code, 1);
  assert.match(r.json.error, /not waiting/);
  r = await stack.issoctl(['application', 'approve', 'no-such-client'], { allowFailure: true });
  assert.equal(r.code, 1);
  r = await stack.issoctl(['application', 'approve', added.client_id, '--drop', 'nonsense'], { allowFailure: true });
  assert.equal(r.code, 2);
  assert.ok(!(await stack.issoctl(['application', 'list'])).some((c) => c.client_id === added.client_id));
});

test('issoctl: a refusal needs a reason and leaves the client unusable', T, async () => {
  const added = await stack.issoctl(['client', 'add', '--name', '拒絕測試服務', '--redirect-uri', RP, '--scope', 'openid']);
  let r = await stack.issoctl(['application', 'refuse', added.client_id], { allowFailure: true });
  assert.equal(r.code, 2);
  const refused = await stack.issoctl(['application', 'refuse', added.client_id, '--reason', '目的不明確']);
  assert.equal(refused.status, 'pending');
  assert.equal(refused.application_state, 'refused');
  assert.equal(refused.settings.application.refusal, '目的不明確');
  assert.equal(refused.settings.application.history.at(-1).event, 'client_refused');
  assert.ok((await events('client_refused')).some((d) => d.client_id === added.client_id));
  const shown = await stack.issoctl(['application', 'show', added.client_id]);
  assert.equal(shown.application_state, 'refused');
  const cfg = await rp(added.client_id, added.client_secret);
  await assert.rejects(login(cfg, 'openid'));
});

test('issoctl client delete: tokens and consents go with the client', T, async () => {
  const c = await stack.registerClient({ name: '刪除測試服務', redirectUris: [RP], scope: 'openid profile' });
  const cfg = await rp(c.client_id, c.client_secret);
  const tokens = await login(cfg, 'openid profile');
  assert.ok(tokens.refresh_token);
  const before = await client.tokenIntrospection(cfg, tokens.access_token);
  assert.equal(before.active, true);

  const out = await stack.issoctl(['client', 'delete', c.client_id]);
  assert.equal(out.deleted, true);
  assert.ok((await events('client_deleted')).some((d) => d.client_id === c.client_id));
  // The client is gone, and a client that comes back with the same
  // credentials finds nothing (discovery works: the store is what matters).
  await assert.rejects(client.refreshTokenGrant(cfg, tokens.refresh_token));
  const r = await stack.issoctl(['client', 'show', c.client_id], { allowFailure: true });
  assert.equal(r.code, 1);
  const again = await stack.issoctl(['client', 'delete', c.client_id], { allowFailure: true });
  assert.equal(again.code, 1);
  assert.match(again.json.error, /no such client/);
});

test('issoctl admin grant|revoke and org list|remove|member remove', T, async () => {
  const staff = await stack.addUser({ account: 'agency.staff', password: 'Agency-staff-42', phone: '0912000556', name: '機關承辦' });
  let g = await stack.issoctl(['admin', 'grant', '--account', 'Agency.Staff']);
  assert.equal(g.held, true);
  assert.equal(g.uuid, staff.uuid);
  g = await stack.issoctl(['admin', 'grant', '--account', staff.account]); // idempotent
  assert.equal(g.held, true);
  assert.equal((await events('admin_granted')).filter((d) => d.uuid === staff.uuid).length, 1);
  g = await stack.issoctl(['admin', 'revoke', '--account', staff.account]);
  assert.equal(g.held, false);
  assert.equal((await events('admin_revoked')).filter((d) => d.uuid === staff.uuid).length, 1);
  let r = await stack.issoctl(['admin', 'grant', '--account', 'nobody.here'], { allowFailure: true });
  assert.equal(r.code, 1);
  r = await stack.issoctl(['admin', 'promote', '--account', staff.account], { allowFailure: true });
  assert.equal(r.code, 2);

  await stack.issoctl(['org', 'add', '--ubn', UBN, '--name', '測試機關']);
  await stack.issoctl(['org', 'member', 'add', '--ubn', UBN, '--account', staff.account, '--role', 'admin']);
  const orgs = await stack.issoctl(['org', 'list']);
  assert.ok(orgs.some((o) => o.ubn === UBN && o.name === '測試機關'));
  const rm = await stack.issoctl(['org', 'member', 'remove', UBN, '--account', staff.account]);
  assert.equal(rm.removed, true);
  r = await stack.issoctl(['org', 'member', 'remove', UBN, '--account', staff.account], { allowFailure: true });
  assert.equal(r.code, 1);
  assert.ok((await events('org_member_removed')).some((d) => d.ubn === UBN && d.uuid === staff.uuid));
  const gone = await stack.issoctl(['org', 'remove', UBN]);
  assert.equal(gone.removed, true);
  assert.ok(!(await stack.issoctl(['org', 'list'])).some((o) => o.ubn === UBN));
  r = await stack.issoctl(['org', 'remove', UBN], { allowFailure: true });
  assert.equal(r.code, 1);
});
