// dom.js: building the page without HTML strings (no innerHTML: text is
// always text) and without inline style (the CSP forbids it: classes only).

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'style') throw new Error('inline style is not allowed');
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function button(label, onclick, attrs) {
  return h('button', {type: 'button', onclick, ...(attrs || {})}, label);
}

// A table: cols = [{label, cell(row) -> node|text}], rows = data.
export function table(cols, rows, empty) {
  if (!rows.length) return h('p', {class: 'empty'}, empty || 'Nothing yet.');
  return h('div', {class: 'table-wrap'},
    h('table', {class: 'stack'},
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', {scope: 'col'}, c.label)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, cols.map((c) => h('td', {'data-label': c.label}, c.cell(r))))))));
}

export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h('div', {class: 'field'}, h('label', {for: id}, label), input,
    hint ? h('small', {class: 'hint'}, hint) : null);
}

export function when(t) {
  if (!t) return 'never';
  const d = new Date(t);
  return d.toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
}

export function errorBox(err) {
  return h('p', {class: 'error', role: 'alert'}, err.message || String(err));
}

export function badge(text, kind) {
  return h('span', {class: `badge badge-${kind || text}`}, text);
}
