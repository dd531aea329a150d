// The UI's entry: sign-in, the navigation (shown as the API allows) and a
// hash router (#/ns/default/pipelines/...), so a page is a link that can be
// shared and the server serves one file.
import { h, clear, errorBox } from './dom.js';
import { session, get, can } from './api.js';
import { pipelinesPage, pipelinePage, pluginsPage, credentialsPage, tokensPage, triggersPage, triggerRecordPage, registriesPage } from './pages.js';
import { runPage } from './run.js';
import { editorPage } from './editor.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

export const app = { identity: null, allowed: {} };

const routes = [
  [/^\/?$/, () => { location.replace('#/ns/default/pipelines'); return null; }],
  [/^\/ns\/([^/]+)\/pipelines$/, (m) => pipelinesPage(m[1])],
  [/^\/ns\/([^/]+)\/pipelines\/([^/]+)$/, (m, q) => pipelinePage(m, q)],
  [/^\/ns\/([^/]+)\/pipelines\/([^/]+)\/edit$/, (m) => editorPage(m)],
  [/^\/ns\/([^/]+)\/new-pipeline$/, (m) => editorPage([m[0], m[1], null])],
  [/^\/ns\/([^/]+)\/runs\/([^/]+)(?:\/jobs\/([^/]+)(?:\/actions\/([^/]+))?)?$/, (m, q) => runPage(m, q)],
  [/^\/ns\/([^/]+)\/triggers$/, (m, q) => triggersPage(m[1], q)],
  [/^\/ns\/([^/]+)\/triggers\/([^/]+)$/, (m) => triggerRecordPage(m)],
  [/^\/plugins$/, () => pluginsPage()],
  [/^\/registries$/, () => registriesPage()],
  [/^\/credentials$/, () => credentialsPage()],
  [/^\/tokens$/, () => tokensPage()],
];

let current = null; // { abort }

function signIn(message) {
  app.identity = null;
  clear(nav); clear(who);
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const err = h('div', { 'aria-live': 'assertive' }, message ? errorBox({ message }) : null);
  const form = h('form', { class: 'signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in to Palvella'),
    h('p', { class: 'muted' }, 'Paste an API token (palvella token create). It is kept in this tab only and sent in the Authorization header.'),
    h('label', { for: 'token' }, 'API token'), input,
    h('button', { type: 'submit' }, 'Sign in'), err);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    session.token = input.value.trim();
    try {
      await start();
    } catch (x) {
      session.token = '';
      clear(err).append(errorBox(x));
    }
  });
  clear(main).append(form);
  input.focus();
}

async function start() {
  app.identity = await get('/whoami');
  const [plugins, creds, tokens, registries] = await can([['plugin:*', 'read'], ['credential:*', 'read'], ['token:*', 'read'], ['registry:*', 'read']]);
  app.allowed = { plugins, creds, tokens, registries };
  clear(nav).append(h('ul', {},
    h('li', {}, h('a', { href: '#/ns/default/pipelines' }, 'Pipelines')),
    h('li', {}, h('a', { href: '#/ns/default/triggers' }, 'Triggers')),
    plugins ? h('li', {}, h('a', { href: '#/plugins' }, 'Plugins')) : null,
    registries ? h('li', {}, h('a', { href: '#/registries' }, 'Registries')) : null,
    creds ? h('li', {}, h('a', { href: '#/credentials' }, 'Credentials')) : null,
    tokens ? h('li', {}, h('a', { href: '#/tokens' }, 'Tokens')) : null));
  const roles = (app.identity.roles || []).join(', ');
  clear(who).append(
    h('span', { class: 'identity', 'data-identity': app.identity.name }, app.identity.name, roles ? ` (${roles})` : ''),
    h('button', { type: 'button', class: 'link', onClick: () => { session.token = ''; signIn(); } }, 'Sign out'));
  await route();
}

async function route() {
  if (!app.identity) return;
  if (current) current.abort();
  const ctl = new AbortController();
  current = ctl;
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = raw.split('?');
  const q = new URLSearchParams(qs || '');
  for (const a of nav.querySelectorAll('a')) {
    const target = a.getAttribute('href');
    const here = target.includes('/triggers') ? /^\/ns\/[^/]+\/triggers/.test(path)
      : target.includes('/pipelines') ? /^\/ns\/[^/]+\/(pipelines|runs|new-pipeline)/.test(path) : raw.startsWith(target.slice(1));
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  for (const [re, page] of routes) {
    const m = path.match(re);
    if (!m) continue;
    try {
      const el = await page(m.map((x) => (x === undefined ? x : decodeURIComponent(x))), q, ctl.signal);
      if (el && current === ctl) clear(main).append(el);
    } catch (err) {
      if (current === ctl && err.name !== 'AbortError') clear(main).append(errorBox(err));
    }
    return;
  }
  clear(main).append(h('h1', {}, 'Not found'), h('p', {}, 'No page at ', h('code', {}, path)));
}

// Pages get the signal through app.signal (the page's own AbortController).
Object.defineProperty(app, 'signal', { get: () => current && current.signal });

window.addEventListener('hashchange', route);
window.addEventListener('palvella:unauthenticated', (e) => { session.token = ''; signIn(e.detail.message); });

if (session.token) start().catch((e) => { session.token = ''; signIn(e.message); });
else signIn();
