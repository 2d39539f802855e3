// projects.js: the organisation's projects with their usage (requests and
// errors of the last 30 days, this month's count against the budget).

import {get, post} from '../lib/api.js';
import {h, button, table, field, when, errorBox} from '../lib/dom.js';
import {formDialog} from '../lib/dialog.js';
import {listAll, code} from '../lib/format.js';

export async function render(view, ctx) {
  view.append(h('h1', {}, 'Projects'));
  if (ctx.operator) {
    view.append(h('p', {}, 'Projects belong to organisations and are managed with their members\' sessions or keys; operators see their traffic on the Usage page.'));
    return;
  }
  const bar = h('div', {class: 'toolbar'});
  const list = h('div', {id: 'projects-list'});
  view.append(bar, list);
  if (ctx.can('projects:write')) bar.append(button('Create a project', () => create(refresh), {id: 'project-create', class: 'primary'}));

  async function refresh() {
    try {
      const projects = await listAll('/v1/projects', {});
      const since = new Date(Date.now() - 30 * 86400000).toISOString();
      const usage = await get(`/v1/usage?granularity=day&group_by=project&since=${encodeURIComponent(since)}`);
      const sum = new Map();
      for (const p of usage.data) {
        const s = sum.get(p.project_id) || {requests: 0, errors: 0};
        s.requests += p.requests;
        s.errors += p.errors_4xx + p.errors_5xx;
        sum.set(p.project_id, s);
      }
      const full = await Promise.all(projects.map((p) => get(`/v1/projects/${p.id}`).catch(() => p)));
      list.replaceChildren(table([
        {label: 'Name', cell: (p) => p.name},
        {label: 'Id', cell: (p) => code(p.id)},
        {label: 'Requests (30 days)', cell: (p) => String((sum.get(p.id) || {requests: 0}).requests)},
        {label: 'Errors (30 days)', cell: (p) => String((sum.get(p.id) || {errors: 0}).errors)},
        {label: 'This month', cell: (p) => (p.budget
          ? `${p.budget.requests_this_month} of ${p.budget.requests_per_month}`
          : 'no budget')},
        {label: 'Created', cell: (p) => when(p.created_at)},
        {label: '', cell: (p) => h('div', {class: 'actions'},
          h('a', {class: 'button', href: `/console/usage?project_id=${p.id}`}, 'Usage'),
          h('a', {class: 'button', href: `/console/keys?project_id=${p.id}`}, 'Keys'))},
      ], full, 'No projects yet.'));
    } catch (e) {
      list.replaceChildren(errorBox(e));
    }
  }
  await refresh();
}

async function create(refresh) {
  const name = h('input', {id: 'project-name', type: 'text', required: true, maxlength: '200'});
  const made = await formDialog('Create a project', [field('Name', name)], 'Create',
    () => post('/v1/projects', {name: name.value.trim()}));
  if (made) await refresh();
}
