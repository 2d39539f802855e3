// usage.js: requests and errors over time (GET /v1/usage), per project and
// per key, and the top routes, as SVG charts drawn by lib/chart.js.

import {get, query} from '../lib/api.js';
import {h, field, table, errorBox} from '../lib/dom.js';
import {lineChart, barChart} from '../lib/chart.js';
import {listAll, projectsById, orgScoped} from '../lib/format.js';

const WINDOWS = {
  '1h': {ms: 3600000, granularity: 'minute', step: 60000},
  '24h': {ms: 86400000, granularity: 'hour', step: 3600000},
  '7d': {ms: 7 * 86400000, granularity: 'hour', step: 3600000},
  '30d': {ms: 30 * 86400000, granularity: 'day', step: 86400000},
};

function buckets(since, until, step) {
  const out = [];
  for (let t = Math.floor(since / step) * step; t < until; t += step) out.push(t);
  return out;
}

function legend(names) {
  return h('ul', {class: 'legend'}, names.slice(0, 4).map((n, i) => h('li', {class: `k${i}`}, n)));
}

function group(data, key) {
  const m = new Map();
  for (const p of data) {
    const g = p[key] === null || p[key] === undefined ? 'none' : String(p[key]);
    if (!m.has(g)) m.set(g, {name: g, total: 0, points: []});
    const s = m.get(g);
    s.total += p.requests;
    s.points.push([Date.parse(p.bucket), p.requests]);
  }
  return [...m.values()].sort((a, b) => b.total - a.total);
}

export async function render(view, ctx) {
  view.append(h('h1', {}, 'Usage'));
  const win = h('select', {id: 'usage-window'}, Object.keys(WINDOWS).map((w) => h('option', {value: w, selected: w === '24h'}, w)));
  const project = h('select', {id: 'usage-project'}, h('option', {value: ''}, 'All projects'));
  const key = h('select', {id: 'usage-key'}, h('option', {value: ''}, 'All keys'));
  const out = h('div', {id: 'usage-charts'});
  view.append(h('div', {class: 'filters'}, field('Window', win), field('Project', project), field('Key', key)), out);

  const projects = await projectsById(ctx);
  for (const p of projects.values()) project.append(h('option', {value: p.id, selected: ctx.params.get('project_id') === p.id}, p.name));
  const keys = new Map();
  try {
    for (const k of orgScoped(ctx, await listAll('/v1/api-keys', {}))) {
      keys.set(k.id, k);
      key.append(h('option', {value: k.id, selected: ctx.params.get('key_id') === k.id}, `${k.name} (${k.start}…)`));
    }
  } catch (e) {
    // keys:read is held by every role; an operator sees every key
  }
  const keyName = (id) => (keys.get(id) ? keys.get(id).name : id);
  const projectName = (id) => (id === 'none' ? 'no project' : (projects.get(id) || {name: id}).name);

  async function draw() {
    out.replaceChildren(h('p', {}, 'Loading…'));
    const w = WINDOWS[win.value];
    const until = Date.now();
    const since = until - w.ms;
    const base = {granularity: w.granularity, since: new Date(since).toISOString(), until: new Date(until).toISOString(),
      project_id: project.value, key_id: key.value};
    try {
      const [totals, byProject, byKey, byRoute] = await Promise.all([
        get('/v1/usage' + query(base)),
        get('/v1/usage' + query({...base, group_by: 'project'})),
        get('/v1/usage' + query({...base, group_by: 'key'})),
        get('/v1/usage' + query({...base, group_by: 'route'})),
      ]);
      const bs = buckets(Date.parse(totals.since), until, w.step);
      const req = totals.data.map((p) => [Date.parse(p.bucket), p.requests]);
      const e4 = totals.data.map((p) => [Date.parse(p.bucket), p.errors_4xx]);
      const e5 = totals.data.map((p) => [Date.parse(p.bucket), p.errors_5xx]);
      const sum = (a) => a.reduce((s, p) => s + p[1], 0);
      const projSeries = group(byProject.data, 'project_id').map((s) => ({...s, name: projectName(s.name)}));
      const keySeries = group(byKey.data, 'key_id').map((s) => ({...s, name: keyName(s.name)}));
      const routes = group(byRoute.data, 'route').slice(0, 10).map((s) => ({label: s.name, value: s.total}));
      out.replaceChildren(
        h('div', {class: 'grid'},
          h('div', {class: 'card'}, h('div', {}, 'Requests'), h('div', {class: 'stat', id: 'usage-requests'}, String(sum(req)))),
          h('div', {class: 'card'}, h('div', {}, 'Client errors (4xx)'), h('div', {class: 'stat'}, String(sum(e4)))),
          h('div', {class: 'card'}, h('div', {}, 'Server errors (5xx)'), h('div', {class: 'stat'}, String(sum(e5))))),
        h('h2', {}, 'Requests and errors'),
        h('figure', {class: 'card', id: 'chart-totals'}, lineChart('Requests and errors over time', bs,
          [{name: 'requests', points: req}, {name: '4xx', points: e4}, {name: '5xx', points: e5}]),
        legend(['requests', '4xx', '5xx'])),
        h('h2', {}, 'Per project'),
        h('figure', {class: 'card', id: 'chart-projects'}, lineChart('Requests per project', bs, projSeries), legend(projSeries.map((s) => s.name))),
        h('h2', {}, 'Per key'),
        h('figure', {class: 'card', id: 'chart-keys'}, lineChart('Requests per key', bs, keySeries), legend(keySeries.map((s) => s.name))),
        h('h2', {}, 'Top routes'),
        routes.length ? h('figure', {class: 'card', id: 'chart-routes'}, barChart('Top routes by requests', routes)) : null,
        table([{label: 'Route', cell: (r) => r.label}, {label: 'Requests', cell: (r) => String(r.value)}], routes, 'No traffic in this window.'));
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  }
  for (const s of [win, project, key]) s.addEventListener('change', draw);
  await draw();
}
