// The DAG of a run's jobs drawn as SVG, left to right: each job in the
// column after the deepest job it requires, nodes coloured by status. Each
// node is a link to the job.
import { s } from './dom.js';

const W = 200, H = 40, GX = 60, GY = 16, PAD = 8;

// layout returns the column and row of each job.
export function layout(jobs, requires) {
  const depth = new Map();
  const byName = new Set(jobs.map((j) => j.name));
  const visit = (name, seen) => {
    if (depth.has(name)) return depth.get(name);
    if (seen.has(name)) return 0; // a cycle: the server refuses them, be safe anyway
    seen.add(name);
    let d = 0;
    for (const r of requires.get(name) || []) if (byName.has(r)) d = Math.max(d, visit(r, seen) + 1);
    depth.set(name, d);
    return d;
  };
  jobs.forEach((j) => visit(j.name, new Set()));
  const cols = [];
  for (const j of jobs) {
    const d = depth.get(j.name);
    (cols[d] ||= []).push(j.name);
  }
  const pos = new Map();
  cols.forEach((col, c) => col.forEach((name, r) => pos.set(name, { c, r })));
  return { pos, cols: cols.length, rows: Math.max(1, ...cols.map((x) => x.length)) };
}

export function dag(jobs, requires, href, selected) {
  const { pos, cols, rows } = layout(jobs, requires);
  const width = PAD * 2 + cols * W + (cols - 1) * GX;
  const height = PAD * 2 + rows * H + (rows - 1) * GY;
  const svg = s('svg', { class: 'dag', viewBox: `0 0 ${width} ${height}`, width, height, role: 'group', 'aria-label': `Job graph: ${jobs.length} jobs` });
  const xy = (name) => { const p = pos.get(name); return { x: PAD + p.c * (W + GX), y: PAD + p.r * (H + GY) }; };
  const edges = s('g', { class: 'edges' });
  for (const j of jobs) {
    for (const r of requires.get(j.name) || []) {
      if (!pos.has(r)) continue;
      const a = xy(r), b = xy(j.name);
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
      edges.append(s('path', { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` }));
    }
  }
  svg.append(edges);
  for (const j of jobs) {
    const { x, y } = xy(j.name);
    const st = j.status || 'pending';
    const label = j.name.length > 24 ? j.name.slice(0, 23) + '…' : j.name;
    const a = s('a', { href: href(j.name), class: 'node st-' + st + (selected === j.name ? ' selected' : ''), 'data-job': j.name, 'data-status': st, 'aria-label': `${j.name}: ${st}` },
      s('title', {}, `${j.name}: ${st}`),
      s('rect', { x, y, width: W, height: H, rx: 6 }),
      s('circle', { cx: x + 14, cy: y + H / 2, r: 5, class: 'dot' }),
      s('text', { x: x + 26, y: y + H / 2 + 4 }, label));
    svg.append(a);
  }
  return svg;
}
