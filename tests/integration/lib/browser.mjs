// Shared helpers of the browser tests: headless Chromium through
// playwright-core, axe-core (WCAG 2.0/2.1 A and AA) and screenshots.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { NODE_MODULES, limit } from './harness.mjs';

export const CHROMIUM = process.env.ISSO_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
export const AXE_PATH = path.join(NODE_MODULES, 'axe-core', 'axe.min.js');
export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

/** false when Chromium is there, else the reason to skip (for test options).
 * Under `make check` (ISSO_REQUIRE_BROWSER=1) a missing Chromium fails every
 * browser test file instead: a check that skipped them would pass without
 * having looked at a single page. */
export const NO_BROWSER = fs.existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (set ISSO_CHROMIUM)`;
if (NO_BROWSER && process.env.ISSO_REQUIRE_BROWSER === '1') {
  throw new Error(`${NO_BROWSER}; the browser tests are required (ISSO_REQUIRE_BROWSER=1)`);
}

/** Starts headless Chromium with the tests' options. */
export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: limit(30_000) });
}

/** A fresh context (own cookies) and page with the tests' time limits. */
export async function newPage(browser, opts = {}) {
  const context = await browser.newContext({ ...opts });
  const page = await context.newPage();
  page.setDefaultTimeout(limit(15_000));
  page.setDefaultNavigationTimeout(limit(15_000));
  return { context, page };
}

let axeSrc = null;

/** Runs axe-core (WCAG 2.1 A/AA) on the page; fails with a readable list. */
export async function axeCheck(page, label) {
  // addScriptTag injects an inline script, which a strict CSP (as issod
  // should send) blocks; evaluating the source through DevTools is not.
  try {
    await page.addScriptTag({ path: AXE_PATH });
  } catch { /* CSP */ }
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    axeSrc ??= fs.readFileSync(AXE_PATH, 'utf8');
    await page.evaluate(axeSrc);
  }
  const result = await page.evaluate((tags) => window.axe.run(document, {
    runOnly: { type: 'tag', values: tags },
    resultTypes: ['violations'],
  }), AXE_TAGS);
  const v = result.violations;
  const readable = v.map((x) => [
    `- ${x.id} [${x.impact}] ${x.help} (${x.helpUrl})`,
    ...x.nodes.slice(0, 5).map((n) => `    at ${n.target.join(' ')}\n      ${(n.failureSummary || '').replace(/\n/g, '\n      ')}\n      ${n.html.slice(0, 200)}`),
  ].join('\n')).join('\n');
  assert.equal(v.length, 0, `axe found ${v.length} WCAG 2.1 AA violation(s) on ${label} (${page.url()}):\n${readable}`);
}

/** Full-page screenshots numbered in a fresh $TMPDIR/isso-screenshots-*
 * directory (made on the first shot); each path is a test diagnostic. */
export class Screenshots {
  constructor() {
    this.dir = null;
    this.files = [];
  }

  async take(t, page, name) {
    this.dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'isso-screenshots-'));
    const file = path.join(this.dir, `${String(this.files.length + 1).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    this.files.push(file);
    t.diagnostic(`screenshot: ${file}`);
  }

  /** Prints where the screenshots are (call from after()). */
  report() {
    if (this.files.length) process.stdout.write(`# screenshots in ${this.dir}\n`);
  }
}

/** Presses Tab until matches(activeElement) is true; fails listing the
 * focus order it saw. Returns a description of the focused element. */
/** Waits (bounded) until test, run in the page, holds for
 * document.activeElement: pages move focus from their script after load,
 * so an assertion on focus made the moment an element appears can race
 * it. Returns whether it came; assert on what is focused afterwards. */
export async function waitForFocus(page, test, arg) {
  return page.waitForFunction(test, arg, { timeout: limit(5000) }).then(() => true, () => false);
}

export async function tabTo(page, matches, what, max = 40) {
  const seen = [];
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const el = await page.evaluate(() => {
      const a = document.activeElement;
      if (!a) return null;
      return {
        tag: a.tagName.toLowerCase(), href: a.getAttribute('href'), name: a.getAttribute('name'),
        value: a.getAttribute('value'), type: a.getAttribute('type'), text: (a.innerText || a.value || '').trim().slice(0, 40),
      };
    });
    if (el && matches(el)) return el;
    seen.push(el ? `${el.tag}${el.name ? `[name=${el.name}]` : ''}${el.href ? `[href=${el.href}]` : ''} "${el.text}"` : '(none)');
  }
  throw new Error(`could not reach ${what} with Tab; focus went through:\n  ${seen.join('\n  ')}`);
}

/** Waits until the element with id has focus; fails saying where focus is. */
export async function focusIs(page, id, what, ms = limit(5000)) {
  try {
    await page.waitForFunction((x) => document.activeElement?.id === x, id, { timeout: ms });
  } catch {
    const at = await page.evaluate(() => {
      const a = document.activeElement;
      return a ? `${a.tagName.toLowerCase()}#${a.id}` : '(none)';
    });
    assert.fail(`${what}: focus is on ${at}, not #${id}`);
  }
}

/** A page just loaded without an error: nothing took focus, so the first
 * Tab reaches the skip link, as at the top of any page. */
export async function assertFocusAtTop(page, what) {
  await page.waitForLoadState('load');
  const at = await page.evaluate(() => (document.activeElement === document.body || document.activeElement === null ? 'body' : `${document.activeElement.tagName.toLowerCase()}#${document.activeElement.id}`));
  assert.equal(at, 'body', `${what}: nothing takes focus on load`);
  await page.keyboard.press('Tab');
  const first = await page.evaluate(() => document.activeElement?.className ?? '');
  assert.match(first, /\bskip-link\b/, `${what}: the first Tab reaches the skip link`);
}

/** After a form error: focus on the error summary (an alert), the title
 * starts with prefix (錯誤： / "Error: "). */
export async function assertErrorFocus(page, what, prefix, ms = limit(5000)) {
  await focusIs(page, 'error-summary', what, ms);
  assert.equal(await page.locator('#error-summary').getAttribute('role'), 'alert', `${what}: the summary is an alert`);
  const title = await page.title();
  assert.ok(title.startsWith(prefix), `${what}: the title starts with ${prefix} (${title})`);
}

export async function assertNoHorizontalScroll(page, label) {
  const { sw, w } = await page.evaluate(() => ({ sw: document.documentElement.scrollWidth, w: window.innerWidth }));
  assert.ok(sw <= w + 1, `${label}: content is ${sw}px wide in a ${w}px viewport (WCAG 1.4.10 reflow)`);
}
