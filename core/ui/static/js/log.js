// A log that follows a server-sent event stream of log lines: ANSI colours,
// a link to each line, search, and following the end while at the bottom.
// Lines are added in batches once per frame, so a 10,000-line log does not
// freeze the page.
import { h } from './dom.js';
import { stream } from './api.js';
import { ansi, plain } from './ansi.js';

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

  let pending = [];
  let scheduled = false;
  const perAction = new Map();
  let total = 0;
  let query = '';

  const matches = (li) => !query || li.dataset.text.toLowerCase().includes(query);

  const flush = () => {
    scheduled = false;
    const frag = document.createDocumentFragment();
    let target = null;
    for (const ev of pending) {
      const key = ev.job + '/' + ev.action;
      const n = (perAction.get(key) || 0) + 1;
      perAction.set(key, n);
      total++;
      const p = parseLine(ev.line);
      const id = withSource ? `L-${ev.job}-${ev.action}-${n}` : `L${n}`;
      const li = h('li', { id, class: 's-' + p.stream.replace('+', '') },
        h('a', { class: 'ln', href: lineHref(ev.job, ev.action, n), 'aria-label': `line ${n}` }, String(n)),
        withSource ? h('span', { class: 'src' }, key) : null,
        h('span', { class: 'txt' }, ansi(p.text)));
      li.dataset.text = plain(p.text);
      li.dataset.at = p.at;
      if (!matches(li)) li.hidden = true;
      if (!withSource && highlight && n === highlight) { li.classList.add('hl'); target = li; }
      frag.append(li);
    }
    pending = [];
    list.append(frag);
    count.textContent = query ? `${list.querySelectorAll('li:not([hidden])').length} of ${total} lines` : `${total} lines`;
    if (target) { target.scrollIntoView({ block: 'center' }); follow.checked = false; }
    else if (follow.checked && atBottom) box.scrollTop = box.scrollHeight;
  };

  // Whether the reader is at the end is noted as they scroll, not measured
  // at each batch: measuring lays the whole log out again every frame.
  let atBottom = true;
  box.addEventListener('scroll', () => { atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 24; }, { passive: true });

  search.addEventListener('input', () => {
    query = search.value.toLowerCase();
    let shown = 0;
    for (const li of list.children) { li.hidden = !matches(li); if (!li.hidden) shown++; }
    count.textContent = query ? `${shown} of ${total} lines` : `${total} lines`;
  });
  follow.addEventListener('change', () => { if (follow.checked) box.scrollTop = box.scrollHeight; });

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
        if (!scheduled) { scheduled = true; requestAnimationFrame(flush); }
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
