// What the browser tests share: Chromium launched through playwright-core,
// steps that print "ok - STEP" and stop at the first failure with what was
// on the page, sign-in, screenshots and an axe-core check.
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';

export const env = (k) => { const v = process.env[k]; if (!v) { console.error(`${k} is not set`); process.exit(2); } return v; };
export const URL = env('PALVELLA_URL');
export const SHOTS = process.env.SHOTS || '';

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

export function harness(browser) {
  const problems = [];
  const t = {
    current: null,
    async newPage(opts = {}) {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...opts });
      const page = await ctx.newPage();
      page.setDefaultTimeout(30000);
      // Any script error or CSP violation fails the test.
      page.on('pageerror', (e) => problems.push('page error: ' + e.message));
      page.on('console', (m) => { if (m.type() === 'error' && !/status of 40[13]/.test(m.text())) problems.push('console error: ' + m.text()); });
      t.current = page;
      return page;
    },
    async step(name, fn) {
      try {
        await fn();
        if (problems.length) throw new Error(problems.join('\n'));
        console.log('ok - ' + name);
      } catch (e) {
        console.log('not ok - ' + name + '\n  ' + String(e.message || e).split('\n').join('\n  '));
        if (t.current) {
          try { console.log('  page: ' + t.current.url() + '\n  ' + (await t.current.locator('main').innerText()).slice(0, 2000).split('\n').join('\n  ')); } catch { /* closed */ }
        }
        await browser.close();
        process.exit(1);
      }
    },
  };
  return t;
}

export const expect = (cond, msg) => { if (!cond) throw new Error(msg); };

export async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: false });
}

export async function signIn(page, token) {
  await page.goto(URL + '/');
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#who .identity').waitFor();
}

// axe runs axe-core on the page as it is and returns its serious and
// critical violations. The page's context must bypass the CSP (the UI's
// CSP rightly forbids the injected script).
export async function axe(page) {
  const require = createRequire(import.meta.url);
  await page.addScriptTag({ content: readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8') });
  return page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.help} (${v.nodes.length}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')})`));
}
