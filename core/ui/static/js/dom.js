// Small DOM helpers. Text always goes in as text nodes, never as HTML, so
// nothing the API returns (names, logs, messages) can inject markup.

export function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, kids);
  return el;
}

export function append(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === undefined || k === null || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
export function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  append(el, kids);
  return el;
}

export function clear(el) { el.replaceChildren(); return el; }

export function status(st) {
  return h('span', { class: 'status st-' + (st || 'pending'), 'data-status': st || 'pending' }, st || 'pending');
}

export function time(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const p = (n) => String(n).padStart(2, '0');
  return h('time', { datetime: iso, title: iso },
    `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`);
}

export function duration(from, to) {
  if (!from) return '';
  const ms = (to ? new Date(to) : new Date()) - new Date(from);
  if (ms < 1000) return `${Math.max(0, ms)}ms`;
  const sec = Math.round(ms / 1000);
  if (sec < 60) return `${sec}s`;
  const m = Math.floor(sec / 60);
  if (m < 60) return `${m}m ${sec % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export const TERMINAL = new Set(['success', 'failure', 'skipped', 'cancelled']);

export function toast(msg, kind = 'info') {
  const t = document.getElementById('toast');
  t.className = 'show ' + kind;
  t.textContent = msg;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = ''; }, 5000);
}

export function errorBox(err) {
  const box = h('div', { class: 'error', role: 'alert' }, err.message || String(err));
  if (err.problems && err.problems.length) {
    box.append(h('ul', {}, err.problems.map((p) => h('li', {}, [p.field ? h('code', {}, p.field) : '', p.field ? ': ' : '', p.message]))));
  }
  return box;
}

export function table(headers, rows, caption) {
  return h('table', {},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows));
}
