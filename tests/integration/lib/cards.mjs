// The test PKI's MOICA cards for tests that log in with one without the
// card agent: the card's record in the stack's cards.json, and a
// signature over a login challenge made with the card's key file.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** The stack's card sn (cards.json). */
export function cardOf(stack, sn) {
  const c = stack.cards.moica.find((x) => x.card_sn === sn);
  assert.ok(c, `card ${sn} in cards.json`);
  return c;
}

/** PKCS#1 v1.5 SHA-256 over tbs with card sn's key file under pkiDir,
 * and its certificate: the fields the card form posts. */
export function fileSign(pkiDir, sn, tbs) {
  const key = fs.readFileSync(path.join(pkiDir, 'moica', `${sn}.key`));
  const pem = fs.readFileSync(path.join(pkiDir, 'moica', `${sn}.crt`), 'utf8');
  return {
    sig_type: 'PKCS1',
    signature: crypto.sign('sha256', Buffer.from(tbs, 'utf8'), key).toString('base64'),
    certb64: pem.replace(/-----[^-]+-----|\s/g, ''),
    card_sn: sn,
  };
}
