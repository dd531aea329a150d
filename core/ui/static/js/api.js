// The API client: every call carries the signed-in token in the
// Authorization header. The token is kept in sessionStorage (this tab, until
// it is closed), never in a URL, a cookie or localStorage.

const TOKEN = 'palvella.token';

export const session = {
  get token() { return sessionStorage.getItem(TOKEN) || ''; },
  set token(v) { if (v) sessionStorage.setItem(TOKEN, v); else sessionStorage.removeItem(TOKEN); },
};

export class APIError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || '';
    this.problems = e.problems || (e.details && e.details.problems) || [];
    this.field = e.field || '';
  }
}

function headers(extra) {
  const h = { Accept: 'application/json', ...extra };
  if (session.token) h.Authorization = 'Bearer ' + session.token;
  return h;
}

async function check(resp) {
  if (resp.ok) return resp;
  let body = null;
  try { body = await resp.json(); } catch { /* not JSON */ }
  const err = new APIError(resp.status, body);
  if (resp.status === 401) window.dispatchEvent(new CustomEvent('palvella:unauthenticated', { detail: err }));
  throw err;
}

// api calls the route at /api/v1 + path with a JSON body (or none).
export async function api(method, path, body, opts = {}) {
  const init = { method, headers: headers(body !== undefined ? { 'Content-Type': opts.contentType || 'application/json' } : {}), signal: opts.signal };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const resp = await check(await fetch('/api/v1' + path, init));
  if (resp.status === 204) return null;
  const type = resp.headers.get('Content-Type') || '';
  return type.includes('json') ? resp.json() : resp.text();
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body, opts) => api('POST', path, body === undefined ? {} : body, opts);
export const del = (path, opts) => api('DELETE', path, undefined, opts);

// stream reads server-sent events from path and calls onEvent(name, data)
// for each. EventSource cannot send an Authorization header, so the stream
// is read with fetch. It resolves when the server ends the stream.
export async function stream(path, onEvent, signal) {
  const resp = await check(await fetch('/api/v1' + path, { headers: headers({ Accept: 'text/event-stream' }), signal }));
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    // Events are cut out by index and the rest kept once per chunk: slicing
    // the buffer per event copies it again and again on a long log.
    let start = 0, i;
    while ((i = buf.indexOf('\n\n', start)) >= 0) {
      const block = buf.slice(start, i);
      start = i + 2;
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (!data.length) continue;
      let parsed = data.join('\n');
      try { parsed = JSON.parse(parsed); } catch { /* plain text */ }
      onEvent(name, parsed);
    }
    buf = buf.slice(start);
  }
}

// can asks the API which of the checks ([resource, permission] pairs) the
// signed-in identity has, and returns one boolean per check. The API still
// decides every request; this only keeps from showing what would be refused.
export async function can(checks, opts) {
  if (!checks.length) return [];
  const r = await post('/whoami/access', { checks: checks.map(([resource, permission]) => ({ resource, permission })) }, opts);
  return r.results.map((x) => x.allowed);
}

export const enc = encodeURIComponent;
