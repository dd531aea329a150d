// The list pages: pipelines, a pipeline (its runs, versions and a form to
// start a run), plugins, credentials and tokens.
import { h, clear, status, time, duration, table, errorBox, toast } from './dom.js';
import { get, post, del, can, enc } from './api.js';
import { app } from './main.js';
import { editHref } from './editor.js';

const nsPath = (ns) => '/namespaces/' + enc(ns);
export const runHref = (ns, run) => `#/ns/${enc(ns)}/runs/${enc(run)}`;
const pipelineHref = (ns, name) => `#/ns/${enc(ns)}/pipelines/${enc(name)}`;

function nsPicker(ns, to) {
  const input = h('input', { id: 'ns', value: ns, size: 16, 'aria-label': 'Namespace' });
  const form = h('form', { class: 'inline' }, h('label', { for: 'ns' }, 'Namespace '), input, h('button', { type: 'submit' }, 'Show'));
  form.addEventListener('submit', (e) => { e.preventDefault(); location.hash = to(input.value.trim() || 'default'); });
  return form;
}

export async function pipelinesPage(ns) {
  const [page, [mayWrite]] = await Promise.all([
    get(`${nsPath(ns)}/pipelines?pageSize=200`, { signal: app.signal }),
    can([[`pipeline:${ns}/*`, 'write']], { signal: app.signal }),
  ]);
  const rows = page.items.map((p) => h('tr', {},
    h('td', {}, h('a', { href: pipelineHref(ns, p.name) }, p.name)),
    h('td', {}, p.description || ''),
    h('td', {}, 'v' + p.version),
    h('td', {}, time(p.updatedAt))));
  return h('section', {},
    h('h1', {}, 'Pipelines'),
    nsPicker(ns, (n) => `#/ns/${enc(n)}/pipelines`),
    mayWrite ? h('p', {}, h('a', { href: editHref(ns), class: 'button' }, 'New pipeline')) : null,
    rows.length ? table(['Pipeline', 'Description', 'Version', 'Updated'], rows, `Pipelines of ${ns}`)
      : h('p', { class: 'muted' }, `No pipelines in ${ns} yet: palvella pipeline apply -f pipeline.yaml`));
}

function trigger(t) {
  if (!t) return '';
  return [t.type || '', t.by ? ` by ${t.by}` : ''].join('');
}

export function runsTable(ns, runs) {
  return table(['Run', 'Status', 'Trigger', 'Started', 'Duration'], runs.map((r) => h('tr', { 'data-run': r.name },
    h('td', {}, h('a', { href: runHref(ns, r.name) }, '#' + r.number)),
    h('td', {}, status(r.status)),
    h('td', {}, trigger(r.trigger)),
    h('td', {}, time(r.startedAt || r.createdAt)),
    h('td', {}, duration(r.startedAt, r.finishedAt)))), 'Runs, newest first');
}

const PAGE = 20;

export async function pipelinePage([, ns, name], q) {
  const signal = app.signal;
  const [p, [mayRun, mayWrite]] = await Promise.all([
    get(`${nsPath(ns)}/pipelines/${enc(name)}`, { signal }),
    can([[`pipeline:${ns}/${name}`, 'run'], [`pipeline:${ns}/${name}`, 'write']], { signal }),
  ]);
  const el = h('section', {}, h('h1', {}, name), p.description ? h('p', {}, p.description) : null,
    h('p', { class: 'muted' }, `Version ${p.version} · ${p.hash || ''}`),
    h('p', { class: 'inline' }, h('a', { href: editHref(ns, name), class: 'button' }, mayWrite ? 'Edit' : 'View the file'),
      h('a', { href: triggersHref(ns, name) }, 'Trigger records')));
  if (mayRun) el.append(runForm(ns, name, (p.spec && p.spec.spec && p.spec.spec.params) || []));

  // Runs, newest first, a page at a time, as the API pages them (the
  // tokens of the pages seen are kept for "Newer").
  const runsBox = h('div', { class: 'runs' });
  el.append(h('h2', {}, 'Runs'), runsBox);
  const tokens = [''];
  const show = async (i) => {
    const page = await get(`${nsPath(ns)}/runs?pipeline=${enc(name)}&pageSize=${PAGE}${tokens[i] ? '&pageToken=' + enc(tokens[i]) : ''}`, { signal });
    tokens[i + 1] = page.nextPageToken || '';
    clear(runsBox).append(
      page.items.length ? runsTable(ns, page.items) : h('p', { class: 'muted' }, 'No runs yet.'),
      h('div', { class: 'pager' },
        h('button', { type: 'button', disabled: i === 0, onClick: () => show(i - 1) }, '← Newer'),
        h('span', { class: 'muted' }, ` page ${i + 1} `),
        h('button', { type: 'button', disabled: !page.nextPageToken, onClick: () => show(i + 1) }, 'Older →')));
  };
  await show(0);

  el.append(h('h2', {}, 'Versions'), await versions(ns, name, signal));
  return el;
}

function runForm(ns, name, params) {
  const inputs = params.map((p) => {
    const id = 'param-' + p.name;
    const input = h('input', { id, name: p.name, value: p.default === undefined ? '' : String(p.default) });
    return h('div', { class: 'field' }, h('label', { for: id }, p.name), input, p.description ? h('small', { class: 'muted' }, p.description) : null);
  });
  const err = h('div', { 'aria-live': 'assertive' });
  const form = h('form', { class: 'card', 'aria-label': 'Start a run' }, h('h2', {}, 'Start a run'), inputs, h('button', { type: 'submit' }, 'Run'), err);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const params = {};
    for (const i of form.querySelectorAll('input[name]')) params[i.name] = i.value;
    try {
      const r = await post(`${nsPath(ns)}/pipelines/${enc(name)}/runs`, { params });
      location.hash = runHref(ns, r.name);
    } catch (x) { clear(err).append(errorBox(x)); }
  });
  return form;
}

// versions lists the applied versions and shows the line diff of two.
async function versions(ns, name, signal) {
  const page = await get(`${nsPath(ns)}/pipelines/${enc(name)}/versions?pageSize=200`, { signal });
  const vs = page.items.slice().sort((a, b) => b.version - a.version);
  const text = (v) => JSON.stringify(v.spec, null, 2).split('\n');
  const pick = (id, sel) => h('select', { id }, vs.map((v) => h('option', { value: v.version, selected: v.version === sel }, 'v' + v.version)));
  const a = pick('diff-a', vs.length > 1 ? vs[1].version : vs[0] && vs[0].version);
  const b = pick('diff-b', vs[0] && vs[0].version);
  const out = h('pre', { class: 'diff', 'aria-label': 'Difference', tabindex: '0' });
  const render = () => {
    const va = vs.find((v) => String(v.version) === a.value), vb = vs.find((v) => String(v.version) === b.value);
    clear(out);
    if (!va || !vb) return;
    for (const [op, line] of diff(text(va), text(vb))) out.append(h('span', { class: op === '+' ? 'add' : op === '-' ? 'del' : '' }, `${op} ${line}\n`));
  };
  a.addEventListener('change', render); b.addEventListener('change', render);
  render();
  return h('div', {},
    table(['Version', 'Hash', 'Applied'], vs.map((v) => h('tr', {}, h('td', {}, 'v' + v.version), h('td', {}, h('code', {}, (v.hash || '').slice(0, 19))), h('td', {}, time(v.createdAt))))),
    h('div', { class: 'inline' }, h('label', { for: 'diff-a' }, 'Compare '), a, h('label', { for: 'diff-b' }, ' with '), b),
    out);
}

// diff is a longest-common-subsequence line diff.
export function diff(x, y) {
  const n = x.length, m = y.length;
  const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push([' ', x[i]]); i++; j++; } else if (L[i + 1][j] >= L[i][j + 1]) out.push(['-', x[i++]]); else out.push(['+', y[j++]]);
  }
  while (i < n) out.push(['-', x[i++]]);
  while (j < m) out.push(['+', y[j++]]);
  return out;
}

export async function pluginsPage() {
  const page = await get('/plugins', { signal: app.signal });
  return h('section', {}, h('h1', {}, 'Plugins'),
    table(['Plugin', 'Version', 'Source', 'Categories', 'State', 'Restarts'], page.items.map((p) => h('tr', {},
      h('td', {}, p.name), h('td', {}, p.version || ''), h('td', {}, p.source || ''),
      h('td', {}, (p.categories || []).join(', ')), h('td', {}, p.state || ''), h('td', {}, String(p.restarts || 0))))));
}

export async function credentialsPage() {
  const page = await get('/credentials', { signal: app.signal });
  return h('section', {}, h('h1', {}, 'Credentials'),
    h('p', { class: 'muted' }, 'Names, types and owners only: values are never shown.'),
    page.items.length ? table(['Name', 'Type', 'Namespace', 'Pipelines', 'Updated'], page.items.map((c) => h('tr', {},
      h('td', {}, c.name), h('td', {}, c.type || ''), h('td', {}, c.namespace || '(global)'),
      h('td', {}, (c.pipelines || []).join(', ') || 'any'), h('td', {}, time(c.updatedAt || c.createdAt)))))
      : h('p', { class: 'muted' }, 'No credentials.'));
}

export async function tokensPage() {
  const signal = app.signal;
  const [page, [mayWrite]] = await Promise.all([get('/tokens', { signal }), can([['token:*', 'write']], { signal })]);
  const el = h('section', {}, h('h1', {}, 'Tokens'));
  if (mayWrite) el.append(tokenForm());
  el.append(table(['Id', 'Owner', 'Description', 'Roles', 'Namespaces', 'Expires', ''], page.items.map((t) => h('tr', { 'data-token': t.id },
    h('td', {}, h('code', {}, t.id)), h('td', {}, t.owner || ''), h('td', {}, t.description || ''),
    h('td', {}, (t.roles || []).join(', ')), h('td', {}, (t.namespaces || []).join(', ') || 'all'),
    h('td', {}, t.expiresAt ? time(t.expiresAt) : 'never'),
    h('td', {}, mayWrite && !t.revokedAt ? h('button', { type: 'button', class: 'danger', onClick: async () => {
      try { await del('/tokens/' + enc(t.id)); toast(`Revoked ${t.id}`); window.dispatchEvent(new HashChangeEvent('hashchange')); } catch (x) { toast(x.message, 'error'); }
    } }, 'Revoke') : (t.revokedAt ? 'revoked' : ''))))));
  return el;
}

function tokenForm() {
  const f = (id, label, attrs = {}) => h('div', { class: 'field' }, h('label', { for: id }, label), h('input', { id, ...attrs }));
  const out = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'card', 'aria-label': 'Create a token' }, h('h2', {}, 'Create a token'),
    f('tok-name', 'For (owner)', { required: true }), f('tok-desc', 'Description'),
    f('tok-roles', 'Roles (comma-separated)', { placeholder: 'viewer' }), f('tok-ns', 'Namespaces (comma-separated, empty: all)'),
    f('tok-exp', 'Expires in (e.g. 720h, empty: never)'), h('button', { type: 'submit' }, 'Create'), out);
  const list = (v) => v.split(',').map((x) => x.trim()).filter(Boolean);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const v = (id) => form.querySelector('#' + id).value.trim();
    try {
      const t = await post('/tokens', { name: v('tok-name'), description: v('tok-desc'), roles: list(v('tok-roles')), namespaces: list(v('tok-ns')), expiresIn: v('tok-exp') });
      clear(out).append(h('div', { class: 'secret', role: 'alert' },
        h('p', {}, `Token ${t.id} for ${t.owner}. Copy it now: it is shown only once.`),
        h('input', { readonly: true, value: t.token, class: 'token-value', 'aria-label': 'New token', size: 60 })));
    } catch (x) { clear(out).append(errorBox(x)); }
  });
  return form;
}

// readAll reads every page of a list route (pageSize 1000).
async function readAll(path, signal) {
  const out = [];
  let token = '';
  const sep = path.includes('?') ? '&' : '?';
  do {
    const page = await get(`${path}${sep}pageSize=1000${token ? '&pageToken=' + enc(token) : ''}`, { signal });
    out.push(...page.items);
    token = page.nextPageToken || '';
  } while (token);
  return out;
}

// pager shows items PAGE at a time in box, drawn by draw(items).
function pager(box, items, draw, empty) {
  const show = (i) => {
    const last = (i + 1) * PAGE >= items.length;
    clear(box).append(
      items.length ? draw(items.slice(i * PAGE, (i + 1) * PAGE)) : h('p', { class: 'muted' }, empty),
      h('div', { class: 'pager' },
        h('button', { type: 'button', disabled: i === 0, onClick: () => show(i - 1) }, '← Newer'),
        h('span', { class: 'muted' }, ` page ${i + 1} of ${Math.max(1, Math.ceil(items.length / PAGE))} `),
        h('button', { type: 'button', disabled: last, onClick: () => show(i + 1) }, 'Older →')));
  };
  show(0);
}

const triggersHref = (ns, pipeline) => `#/ns/${enc(ns)}/triggers${pipeline ? '?pipeline=' + enc(pipeline) : ''}`;

function outcome(o) {
  return h('span', { class: 'status o-' + (o || 'none'), 'data-outcome': o || '' }, o || '');
}

// triggersPage lists the trigger records of a namespace (of one pipeline
// with ?pipeline=): each firing of a webhook, interval, cron or manual
// trigger and what came of it, newest first. The API lists records
// oldest first (their names are their times), so all are read and
// reversed, as `palvella trigger records` does.
export async function triggersPage(ns, q) {
  const signal = app.signal;
  const pipeline = q.get('pipeline') || '';
  const records = await readAll(`${nsPath(ns)}/triggers/records${pipeline ? '?pipeline=' + enc(pipeline) : ''}`, signal);
  records.sort((a, b) => (b.firedAt || '').localeCompare(a.firedAt || '') || (b.name || '').localeCompare(a.name || ''));
  const input = h('input', { id: 'trigger-pipeline', value: pipeline, size: 20 });
  const filter = h('form', { class: 'inline', 'aria-label': 'Filter the records' },
    h('label', { for: 'trigger-pipeline' }, 'Pipeline '), input, h('button', { type: 'submit' }, 'Filter'),
    pipeline ? h('a', { href: triggersHref(ns) }, 'all pipelines') : null);
  filter.addEventListener('submit', (e) => { e.preventDefault(); location.hash = triggersHref(ns, input.value.trim()); });
  const box = h('div', { class: 'records' });
  pager(box, records, (items) => table(['Fired', 'Pipeline', 'Trigger', 'Type', 'Outcome', 'Runs', 'Reason'], items.map((r) => h('tr', { 'data-record': r.name },
    h('td', {}, h('a', { href: `#/ns/${enc(ns)}/triggers/${enc(r.name)}`, 'aria-label': `Record ${r.name}` }, time(r.firedAt))),
    h('td', {}, h('a', { href: pipelineHref(ns, r.pipeline) }, r.pipeline)),
    h('td', {}, r.trigger || '—'),
    h('td', {}, r.type || ''),
    h('td', {}, outcome(r.outcome)),
    h('td', {}, (r.runs || []).map((n) => h('a', { href: runHref(ns, n), class: 'run-link' }, n))),
    h('td', {}, r.reason || ''))), `Trigger records of ${pipeline || ns}, newest first`), 'No trigger records.');
  return h('section', {}, h('h1', {}, 'Trigger records'),
    h('p', { class: 'muted' }, 'Every firing of a webhook, interval, cron or manual trigger, and what came of it.'),
    nsPicker(ns, (n) => triggersHref(n, pipeline)), filter, box);
}

// triggerRecordPage shows one record in full: params, headers, delivery.
export async function triggerRecordPage([, ns, name]) {
  const r = await get(`${nsPath(ns)}/triggers/records/${enc(name)}`, { signal: app.signal });
  const kv = (o) => Object.entries(o || {}).map(([k, v]) => h('code', { class: 'param' }, `${k}=${v}`));
  return h('section', {},
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: triggersHref(ns) }, 'Trigger records'), ' / ', r.name),
    h('h1', {}, `${r.pipeline} ${r.trigger || r.type} `, outcome(r.outcome)),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Record'), h('dd', {}, h('code', {}, r.name)),
      h('dt', {}, 'Type'), h('dd', {}, r.type || ''),
      h('dt', {}, 'Pipeline'), h('dd', {}, h('a', { href: pipelineHref(ns, r.pipeline) }, r.pipeline)),
      h('dt', {}, 'Trigger'), h('dd', {}, r.trigger || '—'),
      h('dt', {}, 'Fired'), h('dd', {}, time(r.firedAt)),
      r.due ? [h('dt', {}, 'Due'), h('dd', {}, time(r.due))] : null,
      r.deliveryId ? [h('dt', {}, 'Delivery'), h('dd', {}, h('code', {}, r.deliveryId))] : null,
      h('dt', {}, 'Outcome'), h('dd', {}, r.outcome || ''),
      r.reason ? [h('dt', {}, 'Reason'), h('dd', {}, r.reason)] : null,
      Object.keys(r.params || {}).length ? [h('dt', {}, 'Parameters'), h('dd', {}, kv(r.params))] : null,
      Object.keys(r.headers || {}).length ? [h('dt', {}, 'Headers'), h('dd', {}, kv(r.headers))] : null,
      (r.runs || []).length ? [h('dt', {}, 'Runs'), h('dd', {}, r.runs.map((n) => h('a', { href: runHref(ns, n), class: 'run-link' }, n)))] : null));
}

// registriesPage lists the plugin registries of the server's home, in
// order: a registry that lists name patterns owns those names.
export async function registriesPage() {
  const page = await get('/registries', { signal: app.signal });
  return h('section', {}, h('h1', {}, 'Registries'),
    h('p', { class: 'muted' }, 'Where plugins are added from (palvella registry add on the server). A registry with name patterns owns those plugin names; an open one serves any other.'),
    table(['#', 'Registry', 'Location', 'Owns', 'Root keys'], page.items.map((r) => h('tr', { 'data-registry': r.name },
      h('td', {}, String(r.position)), h('td', {}, r.name), h('td', {}, h('code', {}, r.location)),
      h('td', {}, (r.names || []).length ? r.names.map((n) => h('code', { class: 'param' }, n)) : h('span', { class: 'muted' }, 'open (any other name)')),
      h('td', {}, r.builtInRootKey ? 'built in' : `${(r.rootKeyIds || []).join(', ')}${r.threshold > 1 ? ` (${r.threshold} must sign)` : ''}`))), 'Registries, in the order they are read'));
}
