// A log that follows a server-sent event stream of log lines: ANSI colours,
// a link to each line, search, and following the end while at the bottom.
// Lines are added in batches once per frame and only the rows in view are
// in the page, so a 10,000-line log does not freeze it.
import { h } from './dom.js';
import { stream } from './api.js';
import { ansi, plain } from './ansi.js';

// Rows have one height (lines do not wrap; a long line scrolls sideways),
// so the list's height and the rows in view are arithmetic.
const ROW_PX = 18, BLOCK = 100;

// parseLine splits a stored line "<RFC3339 time> <stream> <text>".
export function parseLine(line) {
  const a = line.indexOf(' ');
  const b = a < 0 ? -1 : line.indexOf(' ', a + 1);
  if (a < 0 || b < 0) return { at: '', stream: '', text: line };
  return { at: line.slice(0, a), stream: line.slice(a + 1, b), text: line.slice(b + 1) };
}

// logView follows path. lineHref(job, action, n) is the link of the n-th
// line of an action; highlight is the line to scroll to once it arrives;
// withSource prefixes each line with its job/action (a whole run's log).
export function logView({ path, lineHref, highlight, withSource, signal, onEnd }) {
  const list = h('ol', { class: 'log', 'aria-label': 'Log lines' });
  const state = h('p', { class: 'log-state muted', role: 'status' }, 'Connecting…');
  const search = h('input', { type: 'search', placeholder: 'Search the log', 'aria-label': 'Search the log', class: 'log-search' });
  const count = h('span', { class: 'muted log-count' });
  const follow = h('input', { type: 'checkbox', checked: true, id: 'log-follow' });
  const box = h('div', { class: 'log-box', tabindex: '0', 'aria-label': 'Log' }, list);
  const el = h('section', { class: 'log-view', 'aria-label': 'Log' },
    h('div', { class: 'log-tools' }, search, count, h('label', { for: 'log-follow' }, follow, ' Follow')),
    box, state);

  // The lines are kept as data; only the rows in view (and a block on
  // either side) are in the page, at a fixed height, so a 10,000-line log
  // costs the rows on screen, not 10,000 list items: each arriving batch
  // is a push to an array and at most one redraw per frame.
  const entries = []; // { job, action, n, stream, at, text, plain }
  let shown = entries; // the entries matching the search
  let pending = [];
  let scheduled = false;
  const perAction = new Map();
  let query = '';
  let target = null; // the entry to bring into view (a link to a line)
  let drawn = ''; // the window drawn: "first:last:shown length:query"

  const matches = (e) => !query || e.plain.includes(query);
  const counted = () => { count.textContent = query ? `${shown.length} of ${entries.length} lines` : `${entries.length} lines`; };

  const row = (e) => {
    const li = h('li', { class: 's-' + e.stream.replace('+', '') + (e === target ? ' hl' : '') },
      h('a', { class: 'ln', href: lineHref(e.job, e.action, e.n), 'aria-label': `line ${e.n}` }, String(e.n)),
      withSource ? h('span', { class: 'src' }, e.job + '/' + e.action) : null,
      h('span', { class: 'txt' }, ansi(e.text)));
    li.dataset.at = e.at;
    return li;
  };

  // draw puts the rows of the window in the list: the blocks of BLOCK rows
  // that the box shows, and one more on either side.
  const draw = () => {
    const rowH = ROW_PX;
    list.style.height = `${shown.length * rowH}px`;
    const top = box.scrollTop, height = box.clientHeight || 512;
    const first = Math.max(0, Math.floor(top / rowH / BLOCK) * BLOCK - BLOCK);
    const last = Math.min(shown.length, (Math.floor((top + height) / rowH / BLOCK) + 2) * BLOCK);
    const key = `${first}:${last}:${shown.length}:${query}:${target ? 1 : 0}`;
    if (key === drawn) return;
    drawn = key;
    const frag = document.createDocumentFragment();
    for (let k = first; k < last; k++) frag.append(row(shown[k]));
    list.style.paddingTop = `${first * rowH}px`;
    list.replaceChildren(frag);
  };

  const flush = () => {
    scheduled = false;
    let jump = null;
    for (const ev of pending) {
      const key = ev.job + '/' + ev.action;
      const n = (perAction.get(key) || 0) + 1;
      perAction.set(key, n);
      const p = parseLine(ev.line);
      const e = { job: ev.job, action: ev.action, n, stream: p.stream, at: p.at, text: p.text, plain: plain(p.text).toLowerCase() };
      entries.push(e);
      if (query && matches(e)) shown.push(e);
      if (!withSource && highlight && n === highlight) { target = e; jump = e; }
    }
    pending = [];
    counted();
    if (jump) {
      follow.checked = false;
      list.style.height = `${shown.length * ROW_PX}px`;
      box.scrollTop = Math.max(0, shown.indexOf(jump) * ROW_PX - box.clientHeight / 2);
    } else if (follow.checked && atBottom) {
      list.style.height = `${shown.length * ROW_PX}px`;
      box.scrollTop = box.scrollHeight;
    }
    draw();
  };
  const schedule = () => { if (!scheduled) { scheduled = true; requestAnimationFrame(flush); } };

  // Whether the reader is at the end is noted as they scroll, not measured
  // at each batch: measuring lays the log out again every frame.
  let atBottom = true;
  let drawing = false;
  box.addEventListener('scroll', () => {
    atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 24;
    if (!drawing) { drawing = true; requestAnimationFrame(() => { drawing = false; draw(); }); }
  }, { passive: true });

  search.addEventListener('input', () => {
    query = search.value.toLowerCase();
    shown = query ? entries.filter(matches) : entries;
    counted();
    box.scrollTop = 0;
    draw();
  });
  follow.addEventListener('change', () => { if (follow.checked) { box.scrollTop = box.scrollHeight; draw(); } });

  // The server's stream follows the actions the run gains and goes on
  // while the run waits for approval, until what is followed ends. When
  // the connection drops before the end, the view connects again: the new
  // stream starts from each action's first line, and the lines already
  // shown are skipped (each action's lines come once and in order).
  const delivered = new Map();
  let ctl = null;
  let ended = null;
  const connect = () => {
    if (ctl) ctl.abort();
    const mine = new AbortController();
    ctl = mine;
    signal.addEventListener('abort', () => mine.abort(), { once: true });
    ended = null;
    const seen = new Map();
    state.textContent = 'Following…';
    delete state.dataset.ended;
    return stream(path, (name, data) => {
      if (mine !== ctl) return;
      if (name === 'line') {
        const key = data.job + '/' + data.action;
        const n = (seen.get(key) || 0) + 1;
        seen.set(key, n);
        if (n <= (delivered.get(key) || 0)) return;
        delivered.set(key, n);
        pending.push(data);
        schedule();
      } else if (name === 'end') {
        ended = data;
        const st = data.status || '';
        state.textContent = st === 'waiting' ? 'Waiting for approval…' : `Ended: ${st}${data.reason ? ' (' + data.reason + ')' : ''}`;
        if (st !== 'waiting') state.dataset.ended = st || 'ended';
        if (onEnd) onEnd(data);
      } else if (name === 'error') {
        ended = { status: '', reason: data.message || '' };
        state.textContent = 'Stream error: ' + (data.message || JSON.stringify(data));
      }
    }, mine.signal).then(() => {
      if (mine === ctl && !ended && !signal.aborted) { state.textContent = 'Reconnecting…'; setTimeout(() => { if (mine === ctl && !signal.aborted) connect(); }, 1000); }
    }, (err) => {
      if (err.name === 'AbortError' || mine !== ctl) return;
      if (err.status) { state.textContent = 'Log unavailable: ' + err.message; return; }
      state.textContent = 'Reconnecting… (' + err.message + ')';
      setTimeout(() => { if (mine === ctl && !signal.aborted) connect(); }, 2000);
    });
  };
  connect();
  return { el, restart: connect, get ended() { return ended; } };
}
