// The timeline (Gantt chart) of a run: one row per job, its time in the
// queue and its run as bars, its actions as bars below, on one time axis
// from the run's queueing to its end (to now while it goes on). Drawn as
// SVG from the run's own start and end times, so the run page's polling
// keeps it live. The drawing is built once per set of jobs and actions and
// then only moved, so focus and a screen reader's place survive the
// updates.
//
// Keyboard: the chart is one tab stop (a roving tabindex). Up and down move
// between jobs, right and left through a job's actions and on, Home and End
// to the first and last job; Enter opens the job's or the action's log.
import { s, h, duration } from './dom.js';

const ROW = 26, LABEL = 210, TRACK = 820, AXIS = 22, PAD = 6, RIGHT = 40;

const ms = (iso) => (iso ? Date.parse(iso) : NaN);
const secs = (a, b) => duration(a, b) || '—';

// niceStep is a tick interval giving about 8 ticks over span ms.
export function niceStep(span) {
  const steps = [100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 144e5, 432e5, 864e5];
  for (const st of steps) if (span / st <= 8) return st;
  return steps[steps.length - 1];
}

function tickLabel(t) {
  if (t < 1000) return `${t}ms`;
  if (t < 60e3) return `${t / 1000}s`;
  if (t < 36e5) return `${Math.floor(t / 60e3)}m${t % 60e3 ? ` ${(t % 60e3) / 1000}s` : ''}`;
  return `${Math.floor(t / 36e5)}h${t % 36e5 ? ` ${Math.round((t % 36e5) / 60e3)}m` : ''}`;
}

// timeline returns { el, update(run) }. href(job, action) is the link of a
// job's or an action's log.
export function timeline(href) {
  const help = h('p', { class: 'muted small', id: 'timeline-help' },
    'Up and down move between jobs, left and right through their actions, Enter opens a log.');
  const box = h('div', { class: 'timeline-box' });
  const el = h('div', { class: 'timeline' }, help, box);
  let shape = '';
  let svg = null, axis = null, nowLine = null;
  let rows = []; // { job, a, label, queue, bar, acts: [{ name, a, bar }] }
  let items = []; // focus order: job links and action links
  let focusKey = '';

  const keyOf = (node) => node.dataset.key;
  const setRoving = (key) => {
    focusKey = key;
    for (const n of items) n.setAttribute('tabindex', keyOf(n) === key ? '0' : '-1');
  };
  const move = (node) => { if (!node) return; setRoving(keyOf(node)); node.focus(); };

  const onKey = (e) => {
    const i = items.findIndex((n) => n === e.target.closest('a'));
    if (i < 0) return;
    const rowOf = (n) => rows.findIndex((r) => r.a === n || r.acts.some((x) => x.a === n));
    const r = rowOf(items[i]);
    let to = null;
    switch (e.key) {
      case 'ArrowDown': to = rows[r + 1] && rows[r + 1].a; break;
      case 'ArrowUp': to = rows[r - 1] && rows[r - 1].a; break;
      case 'ArrowRight': to = items[i + 1]; break;
      case 'ArrowLeft': to = items[i - 1]; break;
      case 'Home': to = rows[0] && rows[0].a; break;
      case 'End': to = rows.length && rows[rows.length - 1].a; break;
      default: return;
    }
    e.preventDefault();
    move(to);
  };

  const build = (jobs) => {
    const height = AXIS + jobs.length * ROW + PAD;
    svg = s('svg', { class: 'gantt', width: LABEL + TRACK + RIGHT, height, viewBox: `0 0 ${LABEL + TRACK + RIGHT} ${height}`,
      role: 'group', 'aria-label': `Timeline: ${jobs.length} jobs`, 'aria-describedby': 'timeline-help' });
    axis = s('g', { class: 'axis' });
    nowLine = s('line', { class: 'now', y1: AXIS - 4, y2: height, x1: 0, x2: 0, visibility: 'hidden' });
    svg.append(axis);
    rows = jobs.map((j, n) => {
      const y = AXIS + n * ROW;
      const label = j.name.length > 26 ? j.name.slice(0, 25) + '…' : j.name;
      const title = s('title', {});
      const queue = s('rect', { class: 'queue', y: y + 3, height: 9, x: LABEL, width: 0 });
      const bar = s('rect', { y: y + 3, height: 9, x: LABEL, width: 0, rx: 2 });
      const a = s('a', { href: href(j.name), class: 'tl-job', 'data-job': j.name, 'data-key': j.name, tabindex: '-1' },
        title, s('rect', { class: 'hit', x: 0, y, width: LABEL + TRACK, height: ROW }),
        s('text', { x: PAD, y: y + 16 }, label), queue, bar);
      const acts = (j.actions || []).map((ac) => {
        const at = s('title', {});
        const ab = s('rect', { y: y + 14, height: 8, x: LABEL, width: 0, rx: 1 });
        const aa = s('a', { href: href(j.name, ac.name), class: 'tl-action', 'data-job': j.name, 'data-action': ac.name, 'data-key': j.name + '/' + ac.name, tabindex: '-1' }, at, ab);
        return { name: ac.name, a: aa, bar: ab, title: at };
      });
      svg.append(a, ...acts.map((x) => x.a));
      return { job: j.name, a, title, queue, bar, acts };
    });
    svg.append(nowLine);
    items = rows.flatMap((r) => [r.a, ...r.acts.map((x) => x.a)]);
    svg.addEventListener('keydown', onKey);
    svg.addEventListener('focusin', (e) => { const a = e.target.closest('a'); if (a) setRoving(keyOf(a)); });
    box.replaceChildren(svg);
    setRoving(items.some((n) => keyOf(n) === focusKey) ? focusKey : (items[0] ? keyOf(items[0]) : ''));
  };

  const update = (run, now = Date.now()) => {
    const jobs = run.jobs || [];
    const key = jobs.map((j) => j.name + ':' + (j.actions || []).map((a) => a.name).join(',')).join(';');
    if (key !== shape) {
      const had = svg && svg.contains(document.activeElement) ? focusKey : '';
      shape = key;
      build(jobs);
      if (had) { const n = items.find((x) => keyOf(x) === had); if (n) n.focus(); }
    }
    const starts = [run.queuedAt, run.startedAt, run.createdAt, ...jobs.map((j) => j.queuedAt || j.startedAt)].map(ms).filter((x) => !isNaN(x));
    const t0 = starts.length ? Math.min(...starts) : now;
    const ended = !isNaN(ms(run.finishedAt));
    const t1 = Math.max(ended ? ms(run.finishedAt) : now, t0 + 1000,
      ...jobs.flatMap((j) => [ms(j.finishedAt), ...(j.actions || []).map((a) => ms(a.finishedAt))]).filter((x) => !isNaN(x)));
    const X = (t) => LABEL + ((t - t0) / (t1 - t0)) * TRACK;
    const place = (rect, from, to) => {
      const a = ms(from);
      if (isNaN(a)) { rect.setAttribute('width', 0); rect.setAttribute('visibility', 'hidden'); return; }
      const b = isNaN(ms(to)) ? (ended ? t1 : now) : ms(to);
      rect.setAttribute('x', X(a).toFixed(1));
      rect.setAttribute('width', Math.max(2, X(b) - X(a)).toFixed(1));
      rect.setAttribute('visibility', 'visible');
    };

    // The axis: a tick and a label every nice step from the run's start.
    const step = niceStep(t1 - t0);
    axis.replaceChildren();
    const height = Number(svg.getAttribute('height'));
    for (let t = 0; t <= t1 - t0; t += step) {
      const x = X(t0 + t).toFixed(1);
      axis.append(s('line', { x1: x, x2: x, y1: AXIS - 4, y2: height }), s('text', { x, y: AXIS - 8 }, tickLabel(t)));
    }
    if (!ended) { const x = X(now).toFixed(1); nowLine.setAttribute('x1', x); nowLine.setAttribute('x2', x); nowLine.setAttribute('visibility', 'visible'); }
    else nowLine.setAttribute('visibility', 'hidden');

    jobs.forEach((j, n) => {
      const r = rows[n];
      const st = j.status || 'pending';
      r.a.dataset.status = st;
      r.bar.setAttribute('class', 'bar st-' + st);
      place(r.queue, j.queuedAt, j.startedAt || j.finishedAt);
      place(r.bar, j.startedAt, j.finishedAt);
      const queued = j.queuedAt ? `, queued ${secs(j.queuedAt, j.startedAt || j.finishedAt)}` : '';
      const ran = j.startedAt ? `, ran ${secs(j.startedAt, j.finishedAt)}` : '';
      const text = `${j.name}: ${st}${queued}${ran}`;
      r.a.setAttribute('aria-label', text);
      r.title.textContent = text;
      (j.actions || []).forEach((ac, k) => {
        const x = r.acts[k];
        const ast = ac.status || 'pending';
        x.a.dataset.status = ast;
        x.bar.setAttribute('class', 'act st-' + ast);
        place(x.bar, ac.startedAt, ac.finishedAt);
        const t = `${j.name}/${ac.name}: ${ast}${ac.startedAt ? ', ran ' + secs(ac.startedAt, ac.finishedAt) : ''}`;
        x.a.setAttribute('aria-label', t);
        x.title.textContent = t;
      });
    });
  };

  return { el, update };
}
