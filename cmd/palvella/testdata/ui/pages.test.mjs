// Drives the run timeline, trigger records and registries pages of a
// running server in Debian's Chromium. Run by cmd/palvella/ui_pages_test.go,
// which starts the server, applies the pipelines and passes in the
// environment: PALVELLA_URL, OPERATOR_TOKEN, ADMIN_TOKEN, CHROMIUM, SHOTS.
// Each step prints "ok - STEP"; the first failure exits 1 with what was on
// the page.
import { env, URL, launch, harness, expect, shot, signIn, axe } from './lib.mjs';

const OPERATOR = env('OPERATOR_TOKEN'), ADMIN = env('ADMIN_TOKEN');
const browser = await launch();
const t = harness(browser);
const step = t.step;

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
  const bar = 'svg.gantt a.tl-job[data-job="build"] rect.bar';
  const w1 = await width(bar);
  await op.waitForTimeout(1300);
  const w2 = await width(bar);
  expect(w2 > w1, `the running job's bar did not grow: ${w1} then ${w2}`);
  // The job that ended is drawn from its start to its end, before build's.
  const prep = await op.locator('svg.gantt a.tl-job[data-job="prepare"] rect.bar').evaluate((r) => ({ x: +r.getAttribute('x'), w: +r.getAttribute('width') }));
  const build = await op.locator(bar).evaluate((r) => +r.getAttribute('x'));
  expect(prep.x + prep.w <= build + 1, `prepare ends at ${prep.x + prep.w}, after build starts at ${build}`);
  expect(await op.locator('svg.gantt line.now').getAttribute('visibility') === 'visible', 'no "now" line while the run goes on');
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

await step('axe-core finds no serious or critical violations on the run page with its timeline', async () => {
  const page = await t.newPage({ bypassCSP: true });
  await signIn(page, ADMIN);
  await page.goto(runURL);
  await page.locator('svg.gantt a.tl-job').first().waitFor();
  const bad = await axe(page);
  expect(bad.length === 0, bad.join('\n'));
});

await browser.close();
console.log('all passed');
