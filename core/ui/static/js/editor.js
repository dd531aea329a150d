// The pipeline editor: a pipeline file edited in forms and as YAML, the
// two kept in step. The state is the file itself (doc, a plain object as
// `palvella pipeline apply` reads it): the forms change its fields in
// place, the YAML view is written from it, and YAML typed in replaces it.
// Fields the forms do not show (triggers, storage, env...) stay in doc, so
// nothing is lost. An action's or a job type's params, and an engine's
// options, are a form generated from the type's JSON Schema
// (GET /api/v1/types). Save posts the YAML to the apply route; each
// problem the server finds is shown next to the field it names.
import { h, append, clear, errorBox, toast } from './dom.js';
import { get, api, can, enc } from './api.js';
import { app } from './main.js';
import { toYAML, fromYAML, dump, load } from './yaml.js';

const WHEN = ['success', 'failure', 'always'];
const OUTCOMES = ['continue', 'succeed', 'fail'];
const PARAM_TYPES = ['string', 'number', 'boolean', 'list', 'object'];
const ACTION_FIXED = new Set(['name', 'type', 'if', 'on_success', 'on_failure', 'timeout']);
const ENGINE_FIXED = new Set(['type', 'image']);

export const editHref = (ns, name) => (name ? `#/ns/${enc(ns)}/pipelines/${enc(name)}/edit` : `#/ns/${enc(ns)}/new-pipeline`);

// tidy drops the defaults the server writes into a stored pipeline (the
// file as applied did not need them), so that the YAML reads as written.
function tidy(doc) {
  for (const j of (doc.spec && doc.spec.jobs) || []) {
    if (j.when === 'success') delete j.when;
    if (j.storage && !Object.keys(j.storage).length) delete j.storage;
    for (const a of j.actions || []) {
      if (a.on_success === 'continue') delete a.on_success;
      if (a.on_failure === 'fail') delete a.on_failure;
    }
  }
  return doc;
}

function blank(ns) {
  return {
    apiVersion: 'palvella.dev/v1', kind: 'Pipeline',
    metadata: { name: '', namespace: ns },
    spec: { jobs: [{ name: 'build', actions: [{ name: 'hello', type: 'run', run: 'echo hello' }] }] },
  };
}

// catalog indexes the types by category and by each name a pipeline may
// write them by (run, standard/run, action-standard/run).
function catalog(list) {
  const cat = { action: new Map(), job: new Map(), engine: new Map(), lists: { action: [], job: [], engine: [] } };
  for (const t of list.items || []) {
    const m = cat[t.category];
    if (!m) continue;
    cat.lists[t.category].push(t);
    m.set(t.name, t);
    const bare = t.name.includes('/') ? t.name.slice(t.name.indexOf('/') + 1) : t.name;
    const short = t.plugin.replace(new RegExp('^' + t.category + '-'), '');
    if (t.category !== 'engine') { m.set(short + '/' + bare, t); m.set(t.plugin + '/' + bare, t); }
  }
  return cat;
}

export async function editorPage([, ns, name]) {
  const signal = app.signal;
  const [types, stored, [mayWrite]] = await Promise.all([
    get('/types', { signal }),
    name ? get(`/namespaces/${enc(ns)}/pipelines/${enc(name)}`, { signal }) : null,
    can([[`pipeline:${ns}/${name || '*'}`, 'write']], { signal }),
  ]);
  return new Editor(ns, name, catalog(types), stored ? tidy(structuredClone(stored.spec)) : blank(ns), mayWrite, types.unavailable || []).el;
}

class Editor {
  constructor(ns, name, cat, doc, mayWrite, unavailable) {
    this.ns = ns; this.cat = cat; this.doc = doc; this.seq = 0;
    this.problems = h('div', { class: 'problems', 'aria-live': 'assertive' });
    this.status = h('p', { class: 'save-status muted', role: 'status' });
    this.form = h('form', { class: 'editor-form', 'aria-label': 'Pipeline', novalidate: true });
    this.yaml = h('textarea', { id: 'yaml', class: 'yaml', spellcheck: 'false', autocomplete: 'off', rows: 40, 'aria-describedby': 'yaml-error' });
    this.yamlError = h('div', { id: 'yaml-error', class: 'field-error', 'aria-live': 'polite' });
    this.yaml.addEventListener('input', () => this.fromYAMLView());
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this.save(); });
    this.el = h('section', { class: 'editor' },
      h('h1', {}, name ? `Edit ${name}` : 'New pipeline'),
      name ? h('p', {}, h('a', { href: `#/ns/${enc(ns)}/pipelines/${enc(name)}` }, `← ${name}`)) : null,
      unavailable.length ? h('p', { class: 'muted' }, 'Types of these plugins are not offered because they did not start: ',
        unavailable.map((u) => `${u.plugin} (${u.error})`).join('; ')) : null,
      this.problems,
      h('div', { class: 'editor-grid' },
        this.form,
        h('div', { class: 'yaml-pane' },
          h('label', { for: 'yaml' }, 'YAML (the file palvella pipeline apply takes)'), this.yaml, this.yamlError)));
    this.mayWrite = mayWrite;
    this.renderForm();
    this.writeYAML();
  }

  // --- the two views ---

  changed() { this.writeYAML(); }

  writeYAML() {
    this.yaml.value = toYAML(this.doc);
    this.yamlError.textContent = '';
    this.yaml.removeAttribute('aria-invalid');
  }

  fromYAMLView() {
    try {
      this.doc = fromYAML(this.yaml.value, { contentType: 'application/yaml' });
      this.yamlError.textContent = '';
      this.yaml.removeAttribute('aria-invalid');
      this.renderForm();
    } catch (e) {
      this.yamlError.textContent = `YAML line ${e.line || '?'}: ${String(e.reason || e.message).split('\n')[0]}`;
      this.yaml.setAttribute('aria-invalid', 'true');
    }
  }

  // --- form building helpers ---

  id() { return 'ed-' + (++this.seq); }

  // text is a labelled input bound to obj[key]; an empty value removes the
  // key unless keepEmpty.
  text(label, obj, key, field, opts = {}) {
    const id = this.id();
    const v = obj[key];
    const attrs = { id, 'data-field': field, value: v === undefined || v === null ? '' : String(v), required: opts.required, placeholder: opts.placeholder, spellcheck: 'false' };
    const input = opts.multiline ? h('textarea', { ...attrs, rows: opts.rows || 3 }) : h('input', { ...attrs, type: opts.number ? 'number' : 'text', step: opts.number ? 'any' : undefined });
    if (opts.multiline) input.value = attrs.value;
    input.addEventListener('input', () => {
      const raw = input.value;
      if (raw === '' && !opts.keepEmpty) delete obj[key];
      else obj[key] = opts.number && raw !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
      if (opts.onInput) opts.onInput(raw);
      this.changed();
    });
    return this.field(id, label, input, opts.help, opts.required);
  }

  select(label, obj, key, field, choices, opts = {}) {
    const id = this.id();
    const cur = obj[key] === undefined ? '' : String(obj[key]);
    const options = [];
    if (!opts.noBlank) options.push(h('option', { value: '' }, opts.blank || '(default)'));
    const seen = new Set();
    for (const c of choices) {
      if (c && c.group) {
        options.push(h('optgroup', { label: c.group }, c.items.map((x) => { seen.add(x.value); return h('option', { value: x.value, selected: x.value === cur }, x.label || x.value); })));
      } else {
        const value = typeof c === 'object' ? c.value : String(c);
        seen.add(value);
        options.push(h('option', { value, selected: value === cur }, typeof c === 'object' ? c.label : String(c)));
      }
    }
    if (cur && !seen.has(cur)) options.push(h('option', { value: cur, selected: true }, `${cur} (not installed)`));
    const sel = h('select', { id, 'data-field': field, required: opts.required }, options);
    sel.addEventListener('change', () => {
      if (sel.value === '' && !opts.noBlank) delete obj[key];
      else obj[key] = opts.convert ? opts.convert(sel.value) : sel.value;
      if (opts.onChange) opts.onChange(sel.value); else this.changed();
    });
    return this.field(id, label, sel, opts.help, opts.required);
  }

  field(id, label, input, help, required) {
    const helpId = help ? id + '-help' : null;
    if (helpId) input.setAttribute('aria-describedby', helpId);
    if (required) input.setAttribute('aria-required', 'true');
    return h('div', { class: 'field' },
      h('div', { class: 'label-line' }, h('label', { for: id }, label), required ? h('span', { class: 'req' }, 'required') : null),
      input, help ? h('small', { id: helpId, class: 'muted help' }, help) : null);
  }

  button(label, fn, cls) {
    return h('button', { type: 'button', class: cls, onClick: () => { fn(); this.renderForm(); this.changed(); } }, label);
  }

  // --- the form ---

  renderForm() {
    const d = this.doc;
    d.metadata = d.metadata && typeof d.metadata === 'object' ? d.metadata : {};
    d.spec = d.spec && typeof d.spec === 'object' ? d.spec : {};
    if (!Array.isArray(d.spec.jobs)) d.spec.jobs = [];
    const focus = document.activeElement && this.form.contains(document.activeElement) ? document.activeElement.dataset.field : null;
    this.seq = 0;
    const other = Object.keys(d.spec).filter((k) => !['params', 'engine', 'jobs'].includes(k));
    append(clear(this.form), [
      h('fieldset', { 'data-field': 'metadata' }, h('legend', {}, 'Pipeline'),
        this.text('Name', d.metadata, 'name', 'metadata.name', { required: true, help: 'Lower case letters, digits and dashes.' }),
        this.text('Namespace', d.metadata, 'namespace', 'metadata.namespace', { placeholder: 'default' }),
        this.text('Description', d.metadata, 'description', 'metadata.description')),
      this.paramsSection(d.spec),
      h('fieldset', { 'data-field': 'spec.engine' }, h('legend', {}, 'Engine of every job'),
        this.engineFields(d.spec, 'spec.engine')),
      d.spec.jobs.map((j, i) => this.jobSection(j, i)),
      h('div', { class: 'actions-row' },
        this.button('Add job', () => d.spec.jobs.push({ name: `job-${d.spec.jobs.length + 1}`, actions: [{ name: 'step', type: 'run', run: 'echo' }] }))),
      other.length ? h('p', { class: 'muted' }, `Also in the file, edited in the YAML view: ${other.join(', ')}.`) : null,
      h('div', { class: 'save-row' },
        this.mayWrite ? h('button', { type: 'submit' }, 'Save') : h('p', { class: 'muted' }, 'You may not write pipelines here: the editor shows the file but cannot save it.'),
        this.status)]);
    if (focus) {
      const again = this.form.querySelector(`[data-field="${CSS.escape(focus)}"]`);
      if (again) again.focus();
    }
  }

  paramsSection(spec) {
    const params = Array.isArray(spec.params) ? spec.params : [];
    return h('fieldset', { 'data-field': 'spec.params' }, h('legend', {}, 'Run parameters'),
      params.map((p, i) => {
        const f = `spec.params[${i}]`;
        return h('div', { class: 'param-row', 'data-field': f },
          this.text(`Parameter ${i + 1} name`, p, 'name', f + '.name', { required: true }),
          this.select('Type', p, 'type', f + '.type', PARAM_TYPES),
          this.text('Default', p, 'default', f + '.default', { number: p.type === 'number' }),
          this.text('Description', p, 'description', f + '.description'),
          this.checkbox('Required', p, 'required', f + '.required'),
          this.button(`Remove parameter ${i + 1}`, () => { params.splice(i, 1); if (!params.length) delete spec.params; }, 'link danger'));
      }),
      this.button('Add parameter', () => { spec.params = params; params.push({ name: `param${params.length + 1}`, type: 'string' }); }));
  }

  checkbox(label, obj, key, field, help) {
    const id = this.id();
    const input = h('input', { id, type: 'checkbox', 'data-field': field, checked: obj[key] === true });
    input.addEventListener('change', () => { if (input.checked) obj[key] = true; else delete obj[key]; this.changed(); });
    return h('div', { class: 'field check' }, input, h('label', { for: id }, label), help ? h('small', { class: 'muted help' }, help) : null);
  }

  // engineFields edits owner.engine: its type among the engine plugins'
  // types, an image, and the type's options from its schema.
  engineFields(owner, field) {
    const e = owner.engine && typeof owner.engine === 'object' ? owner.engine : {};
    const t = this.cat.engine.get(e.type);
    const kids = [this.select('Engine type', e, 'type', field + '.type', this.cat.lists.engine.map((x) => ({ value: x.name, label: `${x.name} (${x.plugin})` })), {
      blank: '(inherited)',
      help: t ? t.description : 'Where the commands run; empty: the pipeline\'s, else the server\'s default.',
      onChange: (v) => { if (v) owner.engine = e; else delete owner.engine; this.renderForm(); this.changed(); },
    })];
    if (e.type) {
      kids.push(this.text('Image', e, 'image', field + '.image', { help: 'The container image, for engines that run one.' }));
      if (t && t.paramsSchema) kids.push(this.schemaFields(t.paramsSchema, e, field, ENGINE_FIXED));
    }
    return kids;
  }

  jobSection(j, i) {
    const jobs = this.doc.spec.jobs;
    const f = `spec.jobs[${i}]`;
    const names = jobs.map((x) => x.name).filter((n, k) => n && k !== i);
    const usesType = j.uses !== undefined;
    const reqs = Array.isArray(j.requires) ? j.requires : [];
    const reqBox = h('fieldset', { class: 'requires', 'data-field': f + '.requires' }, h('legend', {}, 'Requires'),
      names.length ? names.map((n) => {
        const id = this.id();
        const box = h('input', { type: 'checkbox', id, value: n, checked: reqs.includes(n) });
        box.addEventListener('change', () => {
          const now = new Set(Array.isArray(j.requires) ? j.requires : []);
          if (box.checked) now.add(n); else now.delete(n);
          const list = jobs.map((x) => x.name).filter((x) => now.has(x));
          for (const x of now) if (!list.includes(x)) list.push(x); // a name not (yet) a job's stays
          if (list.length) j.requires = list; else delete j.requires;
          this.changed();
        });
        return h('span', { class: 'check' }, box, h('label', { for: id }, n));
      }) : h('span', { class: 'muted' }, 'No other job.'),
      reqs.filter((n) => !names.includes(n)).map((n) => h('span', { class: 'muted' }, ` ${n} (no such job)`)));
    const kindId = this.id();
    const kind = h('select', { id: kindId, 'data-field': f + '.uses-or-actions' },
      h('option', { value: 'actions', selected: !usesType }, 'Actions, in order'),
      h('option', { value: 'uses', selected: usesType }, 'A job type from a job plugin'));
    kind.addEventListener('change', () => {
      if (kind.value === 'uses') { delete j.actions; j.uses = (this.cat.lists.job[0] || { name: '' }).name; } else { delete j.uses; delete j.with; j.actions = [{ name: 'step', type: 'run', run: 'echo' }]; }
      this.renderForm(); this.changed();
    });
    const title = h('span', {}, `Job ${i + 1}`, j.name ? `: ${j.name}` : '');
    return h('fieldset', { class: 'ed-job', 'data-field': f, 'data-job': j.name || '' },
      h('legend', {}, title),
      h('div', { class: 'row' },
        this.text('Job name', j, 'name', f + '.name', { required: true, onInput: (v) => { title.textContent = `Job ${i + 1}${v ? ': ' + v : ''}`; } }),
        this.select('When', j, 'when', f + '.when', WHEN, { blank: '(success)', help: 'Which outcome of the required jobs lets it run.' })),
      reqBox,
      this.text('If', j, 'if', f + '.if', { help: 'An expression; false skips the job, e.g. params.environment == "prod".' }),
      h('details', { class: 'engine', open: !!j.engine }, h('summary', {}, 'Engine of this job'), this.engineFields(j, f + '.engine')),
      this.field(kindId, 'Steps', kind),
      usesType ? this.usesFields(j, f) : h('div', { class: 'action-list' }, (j.actions || []).map((a, k) => this.actionSection(j, a, k, f))),
      h('div', { class: 'actions-row' },
        usesType ? null : this.button(`Add action to job ${i + 1}`, () => { j.actions = j.actions || []; j.actions.push({ name: `step-${j.actions.length + 1}`, type: 'run', run: 'echo' }); }),
        this.button(`Remove job ${i + 1}`, () => jobs.splice(i, 1), 'danger')));
  }

  usesFields(j, f) {
    const t = this.cat.job.get(j.uses);
    const w = j.with && typeof j.with === 'object' ? j.with : {};
    const groups = groupBy(this.cat.lists.job);
    return h('div', { class: 'uses' },
      this.select('Job type', j, 'uses', f + '.uses', groups, { noBlank: true, required: true, help: t ? t.description : undefined, onChange: () => { this.renderForm(); this.changed(); } }),
      t && t.paramsSchema ? h('fieldset', { 'data-field': f + '.with' }, h('legend', {}, `${j.uses} parameters (with)`), this.schemaFields(t.paramsSchema, w, f + '.with', new Set(), () => {
        if (Object.keys(w).length) j.with = w; else delete j.with;
        this.changed();
      })) : null);
  }

  actionSection(j, a, k, jf) {
    const f = `${jf}.actions[${k}]`;
    const typeName = a.type || (a.run !== undefined ? 'run' : '');
    const t = this.cat.action.get(typeName);
    const title = h('span', {}, `Action ${k + 1}`, a.name ? `: ${a.name}` : '');
    return h('fieldset', { class: 'ed-action', 'data-field': f, 'data-action': a.name || '' },
      h('legend', {}, title),
      h('div', { class: 'row' },
        this.text('Action name', a, 'name', f + '.name', { required: true, onInput: (v) => { title.textContent = `Action ${k + 1}${v ? ': ' + v : ''}`; } }),
        this.select('Action type', a, 'type', f + '.type', groupBy(this.cat.lists.action), {
          noBlank: !!typeName, required: true, help: t ? t.description : undefined,
          onChange: (v) => {
            // Keep only the params the new type knows.
            const nt = this.cat.action.get(v);
            const props = (nt && nt.paramsSchema && nt.paramsSchema.properties) || {};
            for (const key of Object.keys(a)) if (!ACTION_FIXED.has(key) && !(key in props)) delete a[key];
            this.renderForm(); this.changed();
          },
        })),
      this.text('If', a, 'if', f + '.if', { help: 'An expression; false skips the action.' }),
      t && t.paramsSchema ? this.schemaFields(t.paramsSchema, a, f, ACTION_FIXED) : null,
      h('div', { class: 'row' },
        this.select('On success', a, 'on_success', f + '.on_success', OUTCOMES, { blank: '(continue)' }),
        this.select('On failure', a, 'on_failure', f + '.on_failure', OUTCOMES, { blank: '(fail)' })),
      h('div', { class: 'actions-row' },
        k > 0 ? this.button(`Move action ${k + 1} up`, () => { j.actions.splice(k - 1, 0, j.actions.splice(k, 1)[0]); }, 'link') : null,
        this.button(`Remove action ${k + 1}`, () => j.actions.splice(k, 1), 'link danger')));
  }

  // schemaFields renders the properties of an object schema as fields of
  // obj: a select for an enum, a checkbox for a boolean, a number input, a
  // text (a textarea for scripts), one line per item for an array of
  // strings, and YAML for anything else. Required properties are marked,
  // the default is the placeholder, the description is the help.
  schemaFields(schema, obj, base, skip, after) {
    const props = schema.properties || {};
    const required = new Set(schema.required || []);
    const keys = Object.keys(props).filter((k) => !skip.has(k))
      .sort((x, y) => (required.has(y) - required.has(x)) || 0);
    const done = () => { if (after) after(); };
    return h('div', { class: 'schema-fields' }, keys.map((key) => {
      const p = props[key] || {};
      const field = base ? `${base}.${key}` : key;
      const types = [].concat(p.type || []);
      const help = [p.description, p.default !== undefined ? `Default: ${JSON.stringify(p.default)}.` : ''].filter(Boolean).join(' ');
      const req = required.has(key);
      const wrap = (el) => { el.addEventListener('input', done); el.addEventListener('change', done); return el; };
      if (Array.isArray(p.enum) && p.enum.every((v) => typeof v !== 'object' || v === null)) {
        const uniq = [...new Set(p.enum.map(String))].filter((v) => v !== '');
        const bools = types.includes('boolean');
        return wrap(this.select(key, obj, key, field, uniq, { help, required: req, blank: p.default !== undefined ? `(${p.default})` : '(none)',
          convert: (v) => (bools && (v === 'true' || v === 'false') ? v === 'true' : (types.includes('number') || types.includes('integer')) && !Number.isNaN(Number(v)) ? Number(v) : v) }));
      }
      if (types.length === 1 && types[0] === 'boolean') return wrap(this.checkbox(key, obj, key, field, help));
      if (types.length === 1 && (types[0] === 'number' || types[0] === 'integer')) return wrap(this.text(key, obj, key, field, { number: true, help, required: req, placeholder: p.default }));
      const strArray = types.includes('array') && (!p.items || [].concat(p.items.type || 'string').includes('string'));
      if (types.includes('string') && !Array.isArray(obj[key]) && (typeof obj[key] !== 'object' || obj[key] === null)) {
        const script = p['x-palvella-script'] || key === 'run';
        return wrap(this.text(key, obj, key, field, { multiline: script, rows: script ? 4 : undefined, help, required: req, placeholder: p.default !== undefined ? String(p.default) : undefined, keepEmpty: req }));
      }
      if (strArray && (obj[key] === undefined || (Array.isArray(obj[key]) && obj[key].every((x) => typeof x === 'string')))) {
        const id = this.id();
        const ta = h('textarea', { id, 'data-field': field, rows: 3, spellcheck: 'false' });
        ta.value = (obj[key] || []).join('\n');
        ta.addEventListener('input', () => {
          const items = ta.value.split('\n').filter((x) => x !== '');
          if (items.length) obj[key] = items; else delete obj[key];
          this.changed();
        });
        return wrap(this.field(id, `${key} (one per line)`, ta, help, req));
      }
      // Anything else (objects, mixed types) as YAML.
      const id = this.id();
      const ta = h('textarea', { id, 'data-field': field, rows: 3, spellcheck: 'false', class: 'yaml-value' });
      ta.value = obj[key] === undefined ? '' : dump(obj[key], { lineWidth: -1 }).replace(/\n$/, '');
      const err = h('small', { class: 'field-error', 'aria-live': 'polite' });
      ta.addEventListener('input', () => {
        if (ta.value.trim() === '') { delete obj[key]; err.textContent = ''; this.changed(); return; }
        try { obj[key] = load(ta.value); err.textContent = ''; this.changed(); } catch (e) { err.textContent = 'Not YAML: ' + String(e.reason || e.message).split('\n')[0]; }
      });
      const el = this.field(id, `${key} (YAML)`, ta, help, req);
      el.append(err);
      return wrap(el);
    }));
  }

  // --- save and the server's problems ---

  clearProblems() {
    clear(this.problems);
    for (const e of this.el.querySelectorAll('.problem')) e.remove();
    for (const e of this.el.querySelectorAll('[aria-invalid]')) { e.removeAttribute('aria-invalid'); }
  }

  async save() {
    this.clearProblems();
    this.status.textContent = 'Saving…';
    const ns = (this.doc.metadata && this.doc.metadata.namespace) || this.ns;
    try {
      const res = await api('POST', `/pipelines/apply?filename=pipeline.yaml&namespace=${enc(ns)}`, this.yaml.value, { contentType: 'application/yaml' });
      const p = res.pipeline || {};
      clear(this.status).append(`Saved: ${p.namespace}/${p.name} ${res.outcome || ''} (v${p.version}). `,
        h('a', { href: `#/ns/${enc(p.namespace)}/pipelines/${enc(p.name)}` }, 'Open the pipeline'));
      this.status.dataset.outcome = res.outcome || '';
      toast(`Saved ${p.name} v${p.version}`);
    } catch (x) {
      this.status.textContent = 'Not saved.';
      this.status.dataset.outcome = 'error';
      this.showProblems(x);
    }
  }

  // showProblems puts each problem next to the field it names, or the
  // closest enclosing part of the form, and lists them all at the top.
  showProblems(err) {
    this.problems.append(errorBox(err));
    const probs = err.problems && err.problems.length ? err.problems : (err.field ? [{ field: err.field, message: err.message }] : []);
    for (const p of probs) {
      const target = this.fieldFor(p.field || '');
      const msg = h('p', { class: 'problem field-error', id: this.id() + '-problem', role: 'alert', 'data-problem': p.field || '' },
        p.line ? `Line ${p.line}: ` : '', p.message);
      if (!target) { this.yamlError.append(msg); continue; }
      if (target.matches('input, select, textarea')) {
        target.setAttribute('aria-invalid', 'true');
        target.setAttribute('aria-describedby', [target.getAttribute('aria-describedby'), msg.id].filter(Boolean).join(' '));
        target.closest('.field, .check, fieldset').append(msg);
      } else {
        const legend = target.querySelector(':scope > legend');
        if (legend) legend.after(msg); else target.prepend(msg);
      }
    }
  }

  fieldFor(field) {
    let f = field;
    while (f) {
      const el = this.form.querySelector(`[data-field="${CSS.escape(f)}"]`);
      if (el) return el;
      const cut = Math.max(f.lastIndexOf('.'), f.lastIndexOf('['));
      if (cut <= 0) break;
      f = f.slice(0, cut);
    }
    return null;
  }
}

function groupBy(list) {
  const by = new Map();
  for (const t of list) {
    if (!by.has(t.plugin)) by.set(t.plugin, []);
    by.get(t.plugin).push({ value: t.name, label: t.name });
  }
  return [...by].map(([group, items]) => ({ group, items }));
}
