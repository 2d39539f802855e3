// chart.js: small SVG charts drawn here (no charting library): a line chart
// of series over time and a horizontal bar chart. Colours come from the
// style sheet (classes s0..s3, bar), never from inline style.

const NS = 'http://www.w3.org/2000/svg';

function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function label(t, span) {
  const d = new Date(t);
  const iso = d.toISOString();
  return span > 2 * 86400000 ? iso.slice(5, 10) : iso.slice(11, 16);
}

// series: [{name, points: [[timeMs, value], ...]}] (at most 4 drawn).
// buckets: every bucket time (ms), so missing points count as 0.
export function lineChart(title, buckets, series) {
  const W = 640, H = 220, L = 44, R = 10, T = 10, B = 28;
  const svg = el('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title});
  svg.append(el('title', {}, title));
  const shown = series.slice(0, 4);
  const max = niceMax(Math.max(0, ...shown.flatMap((s) => s.points.map((p) => p[1]))));
  const t0 = buckets.length ? buckets[0] : 0;
  const t1 = buckets.length > 1 ? buckets[buckets.length - 1] : t0 + 1;
  const x = (t) => L + ((t - t0) / (t1 - t0 || 1)) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  for (const f of [0, 0.5, 1]) {
    svg.append(el('line', {class: 'axis', x1: L, x2: W - R, y1: y(max * f), y2: y(max * f)}));
    svg.append(el('text', {class: 'lbl', x: L - 4, y: y(max * f) + 3, 'text-anchor': 'end'}, String(Math.round(max * f))));
  }
  const ticks = Math.min(6, buckets.length);
  for (let i = 0; i < ticks; i++) {
    const t = buckets[Math.round((i * (buckets.length - 1)) / Math.max(1, ticks - 1))];
    const anchor = i === 0 ? 'start' : i === ticks - 1 ? 'end' : 'middle';
    svg.append(el('text', {class: 'lbl', x: x(t), y: H - 8, 'text-anchor': anchor}, label(t, t1 - t0)));
  }
  shown.forEach((s, i) => {
    const by = new Map(s.points.map((p) => [p[0], p[1]]));
    const pts = buckets.map((t) => `${x(t).toFixed(1)},${y(by.get(t) || 0).toFixed(1)}`);
    if (pts.length === 1) pts.push(pts[0]);
    svg.append(el('polyline', {class: `s${i}`, points: pts.join(' ')}));
  });
  return svg;
}

// rows: [{label, value}] drawn as horizontal bars, largest first.
export function barChart(title, rows) {
  const W = 640, row = 22, L = 4;
  const H = Math.max(1, rows.length) * row + 4;
  const svg = el('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title});
  svg.append(el('title', {}, title));
  const max = Math.max(1, ...rows.map((r) => r.value));
  rows.forEach((r, i) => {
    const w = Math.max(1, (r.value / max) * (W * 0.45));
    svg.append(el('rect', {class: 'bar', x: W * 0.5, y: i * row + 4, width: w.toFixed(1), height: row - 6}));
    svg.append(el('text', {class: 'lbl', x: L, y: i * row + 18}, r.label.length > 60 ? `${r.label.slice(0, 57)}...` : r.label));
    svg.append(el('text', {class: 'lbl', x: W * 0.5 + w + 4, y: i * row + 18}, String(r.value)));
  });
  return svg;
}
