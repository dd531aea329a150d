// A run: its status, the DAG of its jobs with live statuses, each job's
// actions, approvals (approve / reject with a comment), cancel, re-run,
// and its log followed live. Statuses are read again every second while
// the run has not ended (as `palvella run watch` does); the log is a
// server-sent event stream.
import { h, clear, status, time, duration, errorBox, toast, TERMINAL } from './dom.js';
import { get, post, can, enc } from './api.js';
import { dag } from './dag.js';
import { timeline } from './timeline.js';
import { logView } from './log.js';
import { app } from './main.js';
import { runHref } from './pages.js';

const POLL_MS = 1000;

export async function runPage([, ns, runName, jobName, actionName], q) {
  const signal = app.signal;
  const base = `/namespaces/${enc(ns)}/runs/${enc(runName)}`;
  let run = await get(base, { signal });
  const res = `run:${ns}/${run.pipeline}/${run.number}`;
  const [mayApprove, mayCancel, mayRun] = await can([[res, 'approve'], [res, 'write'], [`pipeline:${ns}/${run.pipeline}`, 'run']], { signal });

  // The edges come from the pipeline version the run was started from.
  const requires = new Map();
  try {
    const vs = await get(`/namespaces/${enc(ns)}/pipelines/${enc(run.pipeline)}/versions?pageSize=1000`, { signal });
    const v = vs.items.find((x) => x.version === run.pipelineVersion);
    for (const j of (v && v.spec && v.spec.spec && v.spec.spec.jobs) || []) requires.set(j.name, j.requires || []);
  } catch (err) { if (err.name === 'AbortError') throw err; /* drawn without edges */ }

  const href = (job, action, line) => `#/ns/${enc(ns)}/runs/${enc(runName)}` + (job ? `/jobs/${enc(job)}` : '') +
    (action ? `/actions/${enc(action)}` : '') + (line ? `?line=${line}` : '');

  const head = h('div', { class: 'run-head' });
  const buttons = h('div', { class: 'buttons' });
  const approvals = h('div', { class: 'approvals' });
  const graph = h('div', { class: 'graph', 'aria-label': 'Job graph' });
  const jobsBox = h('div', { class: 'jobs' });
  const tl = timeline((job, action) => href(job, action));
  const el = h('section', { class: 'run', 'data-run': runName },
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: `#/ns/${enc(ns)}/pipelines` }, ns), ' / ',
      h('a', { href: `#/ns/${enc(ns)}/pipelines/${enc(run.pipeline)}` }, run.pipeline), ' / #' + run.number),
    head, buttons, approvals, h('h2', {}, 'Jobs'), graph, jobsBox,
    h('section', { class: 'run-timeline', 'aria-labelledby': 'timeline-title' }, h('h2', { id: 'timeline-title' }, 'Timeline'), tl.el));

  const renderHead = () => {
    clear(head).append(h('h1', {}, `${run.pipeline} #${run.number} `, status(run.status)),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Trigger'), h('dd', {}, `${(run.trigger && run.trigger.type) || ''}${run.trigger && run.trigger.by ? ' by ' + run.trigger.by : ''}`),
        h('dt', {}, 'Started'), h('dd', {}, time(run.startedAt || run.createdAt)),
        h('dt', {}, 'Duration'), h('dd', { class: 'run-duration' }, duration(run.startedAt, run.finishedAt)),
        h('dt', {}, 'Version'), h('dd', {}, 'v' + run.pipelineVersion),
        run.reason ? [h('dt', {}, 'Reason'), h('dd', {}, run.reason)] : null,
        Object.keys(run.params || {}).length ? [h('dt', {}, 'Parameters'), h('dd', {}, Object.entries(run.params).map(([k, v]) => h('code', { class: 'param' }, `${k}=${v}`)))] : null));
  };

  const renderButtons = () => {
    clear(buttons);
    if (mayCancel && !TERMINAL.has(run.status)) {
      buttons.append(h('button', { type: 'button', class: 'danger', onClick: async () => {
        try { await post(base + '/cancel', { reason: `cancelled from the web UI by ${app.identity.name}` }); toast('Cancelling'); refresh(); } catch (x) { toast(x.message, 'error'); }
      } }, 'Cancel run'));
    }
    if (mayRun) {
      buttons.append(h('button', { type: 'button', onClick: async () => {
        const params = {};
        for (const [k, v] of Object.entries(run.params || {})) params[k] = typeof v === 'string' ? v : JSON.stringify(v);
        try { const r = await post(`/namespaces/${enc(ns)}/pipelines/${enc(run.pipeline)}/runs`, { params }); location.hash = runHref(ns, r.name); } catch (x) { toast(x.message, 'error'); }
      } }, 'Re-run'));
    }
  };

  let waitingKey = null;
  const renderApprovals = () => {
    const waiting = (run.jobs || []).filter((j) => j.status === 'waiting');
    const key = waiting.map((j) => j.name).join(',');
    if (key === waitingKey) return; // keep a comment being typed
    waitingKey = key;
    clear(approvals);
    for (const j of waiting) {
      const id = 'comment-' + j.name;
      const comment = h('textarea', { id, rows: 2 });
      const err = h('div', { 'aria-live': 'assertive' });
      const decide = (verb) => async () => {
        try {
          await post(`${base}/${verb}`, { job: j.name, comment: comment.value });
          toast(`${verb === 'approve' ? 'Approved' : 'Rejected'} ${j.name}`);
          refresh();
        } catch (x) { clear(err).append(errorBox(x)); }
      };
      approvals.append(h('section', { class: 'approval card', 'data-job': j.name, 'aria-label': `Approval of ${j.name}` },
        h('h2', {}, `${j.name} waits for approval`),
        h('p', {}, j.reason || ''),
        mayApprove ? [h('label', { for: id }, 'Comment'), comment,
          h('div', { class: 'buttons' },
            h('button', { type: 'button', class: 'approve', onClick: decide('approve') }, 'Approve'),
            h('button', { type: 'button', class: 'danger', onClick: decide('reject') }, 'Reject')), err]
          : h('p', { class: 'muted no-approve' }, `${app.identity.name} may not approve this run.`)));
    }
  };

  const renderJobs = () => {
    clear(graph).append(dag(run.jobs || [], requires, (job) => href(job), jobName));
    clear(jobsBox).append(h('ol', { class: 'job-list' }, (run.jobs || []).map((j) => h('li', { class: 'job' + (j.name === jobName ? ' selected' : ''), 'data-job': j.name, 'data-status': j.status },
      h('div', { class: 'job-line' }, h('a', { href: href(j.name) }, j.name), ' ', status(j.status), ' ',
        h('span', { class: 'muted' }, duration(j.startedAt, j.finishedAt)),
        j.maxAttempts > 1 ? h('span', { class: 'muted' }, ` (attempt ${j.attempt} of ${j.maxAttempts})`) : null),
      j.reason && j.status !== 'success' ? h('div', { class: 'muted reason' }, j.reason) : null,
      h('ul', { class: 'actions' }, (j.actions || []).map((a) => h('li', { 'data-action': a.name, 'data-status': a.status, class: a.name === actionName && j.name === jobName ? 'selected' : '' },
        h('a', { href: href(j.name, a.name) }, a.name), ' ', h('span', { class: 'muted' }, a.type || ''), ' ', status(a.status), ' ',
        h('span', { class: 'muted' }, duration(a.startedAt, a.finishedAt)),
        a.message ? h('span', { class: 'msg' }, ' ' + a.message) : null)))))));
  };

  let revision = -1;
  const render = () => {
    tl.update(run); // durations grow while the run goes on, whatever its revision
    if (run.revision === revision) { head.querySelector('.run-duration').textContent = duration(run.startedAt, run.finishedAt); return; }
    revision = run.revision;
    renderHead(); renderButtons(); renderApprovals(); renderJobs();
  };

  const refresh = async () => {
    try { run = await get(base, { signal }); render(); } catch (x) { if (x.name !== 'AbortError') toast(x.message, 'error'); }
  };
  render();
  (async () => {
    while (!signal.aborted && !TERMINAL.has(run.status)) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      if (!signal.aborted) await refresh();
    }
  })();

  // The log: one action's (numbered lines, each a link), one job's, or the
  // whole run's, followed until it ends.
  let path = base + '/logs/stream', title = 'Log of the run';
  if (jobName && actionName) { path = `${base}/jobs/${enc(jobName)}/actions/${enc(actionName)}/log/stream`; title = `Log of ${jobName}/${actionName}`; }
  else if (jobName) { path = `${base}/logs/stream?job=${enc(jobName)}`; title = `Log of ${jobName}`; }
  const log = logView({
    path, signal, withSource: !actionName, highlight: parseInt(q.get('line') || '0', 10),
    lineHref: (job, action, n) => href(job, action, n),
    onEnd: () => refresh(),
  });
  el.append(h('h2', {}, title, jobName ? [' ', h('a', { href: href(), class: 'small' }, '(whole run)')] : null), log.el);
  return el;
}
