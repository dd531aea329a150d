// ANSI SGR colours in log lines become spans with classes (fg-N, bg-N, b,
// i, u); every other escape sequence is dropped.

const SEQ = /\x1b\[([0-9;]*)([A-Za-z])|\x1b[()][A-Za-z0-9]|\x1b[=>]/g;

export function ansi(text) {
  const frag = document.createDocumentFragment();
  let st = { fg: '', bg: '', b: false, i: false, u: false };
  let last = 0;
  const push = (s) => {
    if (!s) return;
    const cls = [];
    if (st.fg) cls.push('fg-' + st.fg);
    if (st.bg) cls.push('bg-' + st.bg);
    if (st.b) cls.push('b');
    if (st.i) cls.push('i');
    if (st.u) cls.push('u');
    if (!cls.length) { frag.append(s); return; }
    const span = document.createElement('span');
    span.className = cls.join(' ');
    span.textContent = s;
    frag.append(span);
  };
  for (const m of text.matchAll(SEQ)) {
    push(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[2] !== 'm') continue;
    const codes = (m[1] || '0').split(';').map((x) => parseInt(x || '0', 10));
    for (let k = 0; k < codes.length; k++) {
      const c = codes[k];
      if (c === 0) st = { fg: '', bg: '', b: false, i: false, u: false };
      else if (c === 1) st.b = true;
      else if (c === 3) st.i = true;
      else if (c === 4) st.u = true;
      else if (c === 22) st.b = false;
      else if (c === 23) st.i = false;
      else if (c === 24) st.u = false;
      else if (c >= 30 && c <= 37) st.fg = String(c - 30);
      else if (c >= 90 && c <= 97) st.fg = String(c - 90 + 8);
      else if (c === 39) st.fg = '';
      else if (c >= 40 && c <= 47) st.bg = String(c - 40);
      else if (c >= 100 && c <= 107) st.bg = String(c - 100 + 8);
      else if (c === 49) st.bg = '';
      else if ((c === 38 || c === 48) && codes[k + 1] === 5) {
        const n = codes[k + 2];
        if (n < 16) st[c === 38 ? 'fg' : 'bg'] = String(n);
        k += 2;
      } else if ((c === 38 || c === 48) && codes[k + 1] === 2) k += 4;
    }
  }
  push(text.slice(last));
  return frag;
}

// plain drops every escape sequence, for searching.
export function plain(text) { return text.replace(SEQ, ''); }
