// The pipeline file as YAML: js-yaml (vendor/js-yaml.mjs, the npm package
// pinned by cmd/palvella/testdata/ui/package-lock.json, copied unchanged)
// reads and writes it; this module only orders the keys the way the
// pipeline reference writes them, so that the YAML view reads like a file
// written by hand.
import { load, dump } from '../vendor/js-yaml.mjs';

const ORDER = {
  top: ['apiVersion', 'kind', 'metadata', 'spec'],
  metadata: ['name', 'namespace', 'description', 'labels'],
  spec: ['params', 'engine', 'env', 'triggers', 'jobs', 'timeout', 'concurrency'],
  param: ['name', 'type', 'default', 'required', 'description'],
  engine: ['type', 'image'],
  job: ['name', 'requires', 'when', 'if', 'engine', 'uses', 'with', 'params', 'actions', 'storage', 'timeout', 'retries'],
  action: ['name', 'type', 'if'],
  actionLast: ['on_success', 'on_failure', 'timeout'],
};

function pick(obj, first, last = []) {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return obj;
  const out = {};
  for (const k of first) if (k in obj) out[k] = obj[k];
  for (const k of Object.keys(obj)) if (!(k in out) && !last.includes(k)) out[k] = obj[k];
  for (const k of last) if (k in obj) out[k] = obj[k];
  return out;
}

// ordered returns a copy of a pipeline document with its keys in the
// reference's order; keys it does not know keep theirs, after the known.
export function ordered(doc) {
  const d = pick(doc, ORDER.top);
  if (d.metadata) d.metadata = pick(d.metadata, ORDER.metadata);
  if (d.spec && typeof d.spec === 'object') {
    const s = d.spec = pick(d.spec, ORDER.spec);
    if (Array.isArray(s.params)) s.params = s.params.map((p) => pick(p, ORDER.param));
    if (s.engine) s.engine = pick(s.engine, ORDER.engine);
    if (Array.isArray(s.jobs)) {
      s.jobs = s.jobs.map((j) => {
        const job = pick(j, ORDER.job);
        if (job && job.engine) job.engine = pick(job.engine, ORDER.engine);
        if (job && Array.isArray(job.actions)) job.actions = job.actions.map((a) => pick(a, ORDER.action, ORDER.actionLast));
        return job;
      });
    }
  }
  return d;
}

export function toYAML(doc) {
  return dump(ordered(doc), { lineWidth: -1 });
}

// fromYAML parses a pipeline file; a syntax error carries its line (1-based).
export function fromYAML(text) {
  try {
    const v = load(text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw Object.assign(new Error('a pipeline file is a mapping (apiVersion, kind, metadata, spec)'), { line: 1 });
    return v;
  } catch (e) {
    if (e.mark) e.line = e.mark.line + 1;
    throw e;
  }
}

export { dump, load };
