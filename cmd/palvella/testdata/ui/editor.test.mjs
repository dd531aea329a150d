// Drives the pipeline editor of a running server in Debian's Chromium. Run
// by TestPipelineEditorInABrowser (cmd/palvella/ui_test.go), which starts
// the server and creates the token, and then checks with the CLI that the
// server has exactly the file the editor showed. Environment:
//   PALVELLA_URL, DEVELOPER_TOKEN, OUT (a folder: the editor's YAML is
//   written to OUT/editor.yaml), CHROMIUM, SHOTS (optional).
// Each step prints "ok - STEP"; the first failure exits 1.
import { chromium } from 'playwright-core';
import { writeFileSync, mkdirSync } from 'node:fs';

const env = (k) => { const v = process.env[k]; if (!v) { console.error(`${k} is not set`); process.exit(2); } return v; };
const URL = env('PALVELLA_URL'), DEV = env('DEVELOPER_TOKEN'), OUT = env('OUT');
const SHOTS = process.env.SHOTS || '';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const problems = [];
const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
const page = await ctx.newPage();
page.setDefaultTimeout(20000);
page.on('pageerror', (e) => problems.push('page error: ' + e.message));
page.on('console', (m) => { if (m.type() === 'error' && !/status of 4(01|03|22)/.test(m.text())) problems.push('console error: ' + m.text()); });

async function step(name, fn) {
  try {
    await fn();
    if (problems.length) throw new Error(problems.join('\n'));
    console.log('ok - ' + name);
  } catch (e) {
    console.log('not ok - ' + name + '\n  ' + String(e.message || e).split('\n').join('\n  '));
    try { console.log('  page: ' + page.url() + '\n  ' + (await page.locator('main').innerText()).slice(0, 3000).split('\n').join('\n  ')); } catch { /* closed */ }
    await browser.close();
    process.exit(1);
  }
}
const expect = (cond, msg) => { if (!cond) throw new Error(msg); };
const yaml = () => page.locator('#yaml').inputValue();

await step('a developer opens a new pipeline from the pipelines page', async () => {
  await page.goto(URL + '/');
  await page.getByLabel('API token').fill(DEV);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('link', { name: 'New pipeline' }).click();
  await page.getByRole('heading', { name: 'New pipeline' }).waitFor();
  await page.locator('#yaml').waitFor();
});

await step('metadata and a run parameter', async () => {
  await page.getByLabel('Name', { exact: true }).fill('ui-edited');
  await page.getByLabel('Description', { exact: true }).fill('Built in the web editor');
  await page.getByRole('button', { name: 'Add parameter' }).click();
  await page.getByLabel('Parameter 1 name').fill('number_text');
  await page.locator('[data-field="spec.params[0].default"]').fill('build 42 done');
  const y = await yaml();
  expect(y.includes('name: ui-edited') && y.includes('description: Built in the web editor') && y.includes('default: build 42 done'), 'YAML:\n' + y);
});

await step('the first job runs a script; a second job requires it and matches with a param from the type\'s schema', async () => {
  const first = page.locator('fieldset.ed-job[data-field="spec.jobs[0]"]');
  await first.getByLabel('run', { exact: true }).fill('echo "${{ params.number_text }}"');
  await page.getByRole('button', { name: 'Add job' }).click();
  const second = page.locator('fieldset.ed-job[data-field="spec.jobs[1]"]');
  await second.getByLabel('Job name').fill('check');
  await second.getByRole('checkbox', { name: 'build' }).check();
  await second.getByLabel('Action type').selectOption('match');
  // The match type's schema: pattern is required, input is described.
  const pattern = second.getByLabel('pattern');
  expect(await pattern.getAttribute('aria-required') === 'true', 'pattern is not marked required');
  expect((await second.locator('.help').allInnerTexts()).some((t) => t.includes('regular expression')), 'no description of pattern shown');
  expect(await second.getByLabel('run', { exact: true }).count() === 0, 'the run param stayed after the type changed to match');
  await second.getByLabel('Action name').fill('find-number');
  await second.getByLabel('input').fill('${{ params.number_text }}');
  await pattern.fill('([0-9]+');
  const y = await yaml();
  for (const want of ['requires:\n        - build', 'type: match', "pattern: ([0-9]+", 'name: find-number']) expect(y.includes(want), `YAML lacks ${JSON.stringify(want)}:\n${y}`);
  expect(!/\n\s+run: echo\n/.test(y.split('name: check')[1] || ''), 'the second job kept a run param:\n' + y);
});

await step('saving shows the server\'s validation error on the field it names', async () => {
  await page.getByRole('button', { name: 'Save' }).click();
  const err = page.locator('.problem[data-problem="spec.jobs[1].actions[0].pattern"]');
  await err.waitFor();
  expect((await err.innerText()).includes('invalid regular expression'), 'problem: ' + await err.innerText());
  const pattern = page.locator('[data-field="spec.jobs[1].actions[0].pattern"]');
  expect(await pattern.getAttribute('aria-invalid') === 'true', 'the pattern field is not marked invalid');
  const described = (await pattern.getAttribute('aria-describedby')) || '';
  expect(described.includes(await err.getAttribute('id')), 'the problem does not describe the field');
  // The problem sits in the pattern field's own box.
  expect(await page.locator('.field', { has: pattern }).locator('.problem').count() === 1, 'problem not next to its field');
  await shot('editor-error');
});

let saved = '';
await step('fixed, it saves and the server creates version 1', async () => {
  await page.locator('[data-field="spec.jobs[1].actions[0].pattern"]').fill('([0-9]+)');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('.save-status[data-outcome="created"]').waitFor();
  expect(await page.locator('.problem').count() === 0, 'problems left on the page');
  saved = await yaml();
  mkdirSync(OUT, { recursive: true });
  writeFileSync(`${OUT}/editor.yaml`, saved);
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot('editor');
});

await step('editing the YAML updates the form', async () => {
  await page.locator('#yaml').fill(saved.replace('description: Built in the web editor', 'description: Changed in YAML'));
  await page.waitForFunction(() => document.querySelector('[data-field="metadata.description"]').value === 'Changed in YAML');
  await page.locator('#yaml').fill(saved.replace('  jobs:', '  jobs: [').replace(/$/, ''));
  await page.locator('#yaml-error').filter({ hasText: 'YAML line' }).waitFor();
  await page.locator('#yaml').fill(saved);
  await page.waitForFunction(() => document.querySelector('[data-field="metadata.description"]').value === 'Built in the web editor');
  expect(await page.locator('#yaml-error').innerText() === '', 'YAML error left');
});

await step('the pipeline opened again in the editor reads back the same file', async () => {
  await page.goto(URL + '/#/ns/default/pipelines/ui-edited');
  await page.getByRole('link', { name: 'Edit' }).click();
  await page.getByRole('heading', { name: 'Edit ui-edited' }).waitFor();
  await page.waitForFunction(() => document.querySelector('#yaml').value.includes('ui-edited'));
  const again = await yaml();
  expect(again === saved, `the stored pipeline reads back differently:\n--- saved\n${saved}\n--- read back\n${again}`);
  expect(await page.locator('fieldset.ed-job[data-field="spec.jobs[1]"]').getByRole('checkbox', { name: 'build' }).isChecked(), 'requires not shown');
  expect(await page.locator('[data-field="spec.jobs[1].actions[0].pattern"]').inputValue() === '([0-9]+)', 'pattern not shown');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('.save-status[data-outcome="unchanged"]').waitFor();
});

async function shot(name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: false });
}

await browser.close();
console.log('all passed');
