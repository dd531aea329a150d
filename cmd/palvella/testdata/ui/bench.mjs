// Measures the web UI in Debian's Chromium for bench/webui_test.go (make
// bench), which starts a server, runs the pipelines and passes in the
// environment: PALVELLA_URL, TOKEN, BIG_RUN (300 jobs, one printing 10,000
// coloured lines), SMALL_RUN (the same with 100 lines), CHROMIUM.
// Prints one JSON object; the Go benchmark reports it. Every figure is
// taken in a fresh browser context (nothing cached): "cold".
import http from 'node:http';
import { chromium } from 'playwright-core';

const env = (k) => { const v = process.env[k]; if (!v) { console.error(`${k} is not set`); process.exit(2); } return v; };
const URL = env('PALVELLA_URL'), TOKEN = env('TOKEN'), BIG = env('BIG_RUN'), SMALL = env('SMALL_RUN');
const REPEAT = Number(process.env.REPEAT || 3);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});

// A bare static page (a heading and a paragraph) from a loopback server:
// the floor of a first paint on this machine, the baseline of the UI's.
const bare = http.createServer((_, res) => { res.writeHead(200, { 'Content-Type': 'text/html' }); res.end('<!doctype html><title>bare</title><h1>Bare</h1><p>A static page.</p>'); });
await new Promise((r) => bare.listen(0, '127.0.0.1', r));
const BARE = `http://127.0.0.1:${bare.address().port}/`;

async function fresh() {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await ctx.addInitScript((token) => {
    if (location.pathname === '/' && token) sessionStorage.setItem('palvella.token', token);
    window.__longest = 0;
    try {
      new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longest = Math.max(window.__longest, e.duration); }).observe({ type: 'longtask', buffered: true });
    } catch { /* no long task timing */ }
  }, '');
  return ctx;
}

// firstPaint opens url in a fresh context and returns its first
// contentful paint (ms from navigation start).
async function firstPaint(url) {
  const ctx = await fresh();
  const page = await ctx.newPage();
  await page.goto(url);
  const fcp = await page.waitForFunction(() => {
    const e = performance.getEntriesByName('first-contentful-paint')[0];
    return e && e.startTime;
  });
  const v = await fcp.jsonValue();
  await ctx.close();
  return v;
}

// runPage opens a run's page signed in, in a fresh context, and returns the
// time from navigation start until the log's last line is in the page and
// the page has its timeline, and the longest task meanwhile.
async function runPage(run, lines) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await ctx.addInitScript((token) => {
    sessionStorage.setItem('palvella.token', token);
    window.__longest = 0;
    new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longest = Math.max(window.__longest, e.duration); }).observe({ type: 'longtask', buffered: true });
  }, TOKEN);
  const page = await ctx.newPage();
  await page.goto(`${URL}/#/ns/default/runs/${run}`);
  const done = await page.waitForFunction((want) => {
    const c = document.querySelector('.log-count');
    if (!c || c.textContent !== `${want} lines` || !document.querySelector('.log-state[data-ended]')) return false;
    const rows = document.querySelectorAll('.log li');
    const last = rows[rows.length - 1];
    if (!last || !last.textContent.includes(`line ${want} `)) return false;
    return document.querySelectorAll('svg.gantt a.tl-job').length > 0 ? performance.now() : false;
  }, lines, { polling: 'raf', timeout: 120000 });
  const ms = await done.jsonValue();
  // Responsiveness afterwards: search over every line, then scroll to the top.
  const search = await page.evaluate(async () => {
    const input = document.querySelector('.log-search');
    const t0 = performance.now();
    input.value = 'line 99';
    input.dispatchEvent(new Event('input'));
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    return performance.now() - t0;
  });
  const longest = await page.evaluate(() => window.__longest);
  const rows = await page.evaluate(() => document.querySelectorAll('.log li').length);
  await ctx.close();
  return { ms, longest, search, rows };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const out = { repeat: REPEAT };
const take = async (name, fn) => { const xs = []; for (let i = 0; i < REPEAT; i++) xs.push(await fn()); out[name] = xs; };

await take('bareFirstPaintMs', () => firstPaint(BARE));
await take('uiFirstPaintMs', () => firstPaint(URL + '/'));
await take('small', () => runPage(SMALL, 100));
await take('big', () => runPage(BIG, 10000));

const m = (name, k) => median(out[name].map((x) => (k ? x[k] : x)));
out.summary = {
  bareFirstPaintMs: m('bareFirstPaintMs'), uiFirstPaintMs: m('uiFirstPaintMs'),
  smallRenderedMs: m('small', 'ms'), bigRenderedMs: m('big', 'ms'),
  smallLongestTaskMs: m('small', 'longest'), bigLongestTaskMs: m('big', 'longest'),
  bigSearchMs: m('big', 'search'), bigRowsInPage: m('big', 'rows'),
};
const s = out.summary;
s.firstPaintRatio = s.uiFirstPaintMs / s.bareFirstPaintMs;
s.renderedRatio = s.bigRenderedMs / s.smallRenderedMs;
s.longestTaskRatio = s.bigLongestTaskMs / Math.max(s.smallLongestTaskMs, 1);
console.log(JSON.stringify(out));
bare.close();
await browser.close();
