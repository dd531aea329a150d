// Drives the run timeline, trigger records and registries pages of a
// running server in Debian's Chromium. Run by cmd/palvella/ui_pages_test.go,
// which starts the server, applies the pipelines, calls a webhook, writes
// the registries and passes in the environment: PALVELLA_URL,
// OPERATOR_TOKEN, ADMIN_TOKEN, REGISTRY_KEY_ID, CHROMIUM, SHOTS.
// Each step prints "ok - STEP"; the first failure exits 1 with what was on
// the page.
import { env, URL, launch, harness, expect, shot, signIn, axe } from './lib.mjs';

const OPERATOR = env('OPERATOR_TOKEN'), ADMIN = env('ADMIN_TOKEN');
const browser = await launch();
const t = harness(browser);
const step = t.step;

await step('the first paint of / comes, cold (a smoke check; the figure is BenchmarkWebUI\'s)', async () => {
  const page = await t.newPage();
  await page.goto(URL + '/');
  const fcp = await (await page.waitForFunction(() => { const e = performance.getEntriesByName('first-contentful-paint')[0]; return e && e.startTime; })).jsonValue();
  expect(fcp > 0 && fcp < 10000, 'first contentful paint at ' + fcp + ' ms');
  await page.getByLabel('API token').waitFor();
  await page.context().close();
});

const op = await t.newPage({ bypassCSP: false });
let runURL = '';
await step('sign in as an operator and start ui-stages', async () => {
  await signIn(op, OPERATOR);
  await op.goto(URL + '/#/ns/default/pipelines/ui-stages');
  await op.getByRole('button', { name: 'Run', exact: true }).click();
  await op.waitForURL(/runs\/ui-stages-\d+$/);
  runURL = op.url();
});

const width = (sel) => op.locator(sel).evaluate((r) => Number(r.getAttribute('width')));
await step('the timeline has a row per job and grows while a job runs', async () => {
  await op.getByRole('heading', { name: 'Timeline' }).waitFor();
  const gantt = op.locator('svg.gantt');
  await gantt.waitFor();
  expect(await gantt.locator('a.tl-job').count() === 3, 'want 3 job rows, got ' + await gantt.locator('a.tl-job').count());
  expect(await gantt.locator('a.tl-action').count() === 5, 'want 5 action bars');
  const running = gantt.locator('a.tl-job[data-job="build"][data-status="running"]');
  await running.waitFor();
  expect(await op.locator('svg.gantt line.now').getAttribute('visibility') === 'visible', 'no "now" line while the run goes on');
  const bar = 'svg.gantt a.tl-job[data-job="build"] rect.bar';
  const w1 = await width(bar);
  await op.waitForTimeout(1300);
  const w2 = await width(bar);
  expect(w2 > w1, `the running job's bar did not grow: ${w1} then ${w2}`);
  // The job that ended is drawn from its start to its end, before build's.
  // (Both read at once: the scale changes as the run goes on.)
  const [prepEnd, build] = await op.evaluate(() => {
    const p = document.querySelector('svg.gantt a.tl-job[data-job="prepare"] rect.bar');
    const b = document.querySelector('svg.gantt a.tl-job[data-job="build"] rect.bar');
    return [+p.getAttribute('x') + +p.getAttribute('width'), +b.getAttribute('x')];
  });
  expect(prepEnd <= build + 1, `prepare ends at ${prepEnd}, after build starts at ${build}`);
});

await step('the timeline is one tab stop and arrows move through jobs and actions; Enter opens a log', async () => {
  const stops = await op.locator('svg.gantt a[tabindex="0"]').count();
  expect(stops === 1, `${stops} tab stops in the timeline`);
  await op.locator('svg.gantt a[tabindex="0"]').focus();
  const focused = () => op.evaluate(() => document.activeElement && document.activeElement.dataset.key);
  expect(await focused() === 'prepare', 'first stop is ' + await focused());
  await op.keyboard.press('ArrowDown');
  expect(await focused() === 'build', 'after down: ' + await focused());
  await op.keyboard.press('ArrowRight');
  expect(await focused() === 'build/compile', 'after right: ' + await focused());
  await op.keyboard.press('End');
  expect(await focused() === 'test', 'after End: ' + await focused());
  await op.keyboard.press('ArrowUp');
  await op.keyboard.press('ArrowUp');
  expect(await focused() === 'prepare', 'after up, up: ' + await focused());
  const label = await op.evaluate(() => document.activeElement.getAttribute('aria-label'));
  expect(/^prepare: success, queued .*, ran \d/.test(label), 'label ' + label);
  // A redraw while focused keeps the focus where it was.
  await op.waitForTimeout(1200);
  expect(await focused() === 'prepare', 'focus lost on update: ' + await focused());
  await op.keyboard.press('ArrowRight');
  await op.keyboard.press('Enter');
  await op.waitForURL(/\/jobs\/prepare\/actions\/fetch$/);
});

await step('when the run ends every bar is drawn in its status and the "now" line is gone', async () => {
  await op.goto(runURL);
  await op.locator('.run-head .status[data-status="success"]').waitFor();
  await op.locator('svg.gantt a.tl-job[data-job="test"][data-status="success"]').waitFor();
  expect(await op.locator('svg.gantt rect.bar.st-success').count() === 3, 'success bars: ' + await op.locator('svg.gantt rect.bar.st-success').count());
  expect(await op.locator('svg.gantt rect.act.st-success').count() === 5, 'success action bars');
  expect(await op.locator('svg.gantt line.now').getAttribute('visibility') === 'hidden', '"now" line after the end');
  await op.locator('.run-timeline').scrollIntoViewIfNeeded();
  await shot(op, 'run-timeline');
});

await step('trigger records: the webhook calls and the manual run, newest first, with runs and reasons', async () => {
  t.current = op;
  await op.getByRole('link', { name: 'Triggers' }).click();
  await op.getByRole('heading', { name: 'Trigger records' }).waitFor();
  const rows = op.locator('tr[data-record]');
  await rows.first().waitFor();
  const seen = await rows.evaluateAll((rs) => rs.map((r) => [...r.cells].map((c) => c.innerText.trim())));
  // Fired, Pipeline, Trigger, Type, Outcome, Runs, Reason
  const manual = seen.findIndex((c) => c[1] === 'ui-stages' && c[3] === 'manual');
  const rejected = seen.findIndex((c) => c[1] === 'ci' && c[4] === 'rejected');
  const started = seen.findIndex((c) => c[1] === 'ci' && c[3] === 'webhook' && c[4] === 'started');
  expect(manual >= 0 && rejected >= 0 && started >= 0, 'records: ' + JSON.stringify(seen));
  expect(manual < rejected && rejected < started, 'not newest first: ' + JSON.stringify(seen));
  expect(/unsigned/.test(seen[rejected][6]), 'reason of the unsigned call: ' + seen[rejected][6]);
  expect(/^ci-\d+$/.test(seen[started][5]), 'run of the signed call: ' + seen[started][5]);
  expect(/^ui-stages-1$/.test(seen[manual][5]), 'run of the manual firing: ' + seen[manual][5]);
  expect(await op.locator('#nav a[aria-current="page"]').innerText() === 'Triggers', 'the nav does not mark Triggers');
  await shot(op, 'triggers');
});
await step('a record in full, and the records of one pipeline', async () => {
  await op.locator('tr[data-record]').filter({ hasText: 'rejected' }).first().getByRole('link', { name: /^Record / }).click();
  await op.locator('dl.facts').getByText('ui-delivery-2').waitFor();
  await op.locator('dl.facts').getByText('on-push').waitFor();
  await op.goto(URL + '/#/ns/default/pipelines/ui-stages');
  await op.getByRole('heading', { name: 'Start a run' }).waitFor();
  await op.locator('main').getByRole('link', { name: 'Trigger records' }).click();
  await op.waitForURL(/triggers\?pipeline=ui-stages$/);
  await op.locator('tr[data-record]').first().waitFor();
  const pipes = await op.locator('tr[data-record] td:nth-child(2)').allInnerTexts();
  expect(pipes.length >= 1 && pipes.every((p) => p === 'ui-stages'), 'pipelines shown: ' + pipes.join(','));
});

let admin;
await step('registries: in order, with the names each owns and key ids', async () => {
  admin = await t.newPage();
  await signIn(admin, ADMIN);
  await admin.getByRole('link', { name: 'Registries' }).click();
  const acme = admin.locator('tr[data-registry="acme"]');
  await acme.waitFor();
  const rows = await admin.locator('tr[data-registry]').evaluateAll((rs) => rs.map((r) => r.dataset.registry));
  expect(rows.join(',') === 'palvella,acme', 'registries ' + rows.join(','));
  const text = await acme.innerText();
  expect(text.includes('acme-*') && text.includes('https://plugins.acme.example/registry') && text.includes(process.env.REGISTRY_KEY_ID), 'acme row: ' + text);
  expect((await admin.locator('tr[data-registry="palvella"]').innerText()).includes('open'), 'the public registry is not shown open');
  await shot(admin, 'registries');
});
await step('an operator sees the Registries page too (read-only)', async () => {
  t.current = op;
  await op.getByRole('link', { name: 'Registries' }).click();
  await op.locator('tr[data-registry="acme"]').waitFor();
  expect(await op.locator('main button, main input').count() === 0, 'the registries page has controls');
});

await step('axe-core finds no serious or critical violations on the run, trigger records and registries pages', async () => {
  const page = await t.newPage({ bypassCSP: true });
  await signIn(page, ADMIN);
  const bad = [];
  for (const [p, ready] of [[runURL.slice(runURL.indexOf('#')), 'svg.gantt a.tl-job'], ['#/ns/default/triggers', 'tr[data-record]'], ['#/registries', 'tr[data-registry]']]) {
    await page.goto(URL + '/' + p);
    await page.locator(ready).first().waitFor();
    for (const v of await axe(page)) bad.push(p + ' ' + v);
  }
  expect(bad.length === 0, bad.join('\n'));
});

await browser.close();
console.log('all passed');
