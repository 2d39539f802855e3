// requests.js: the request log explorer (GET /v1/requests): filters by key,
// project, status and time, newest first, page by page.

import {get, query} from '../lib/api.js';
import {h, button, field, table, when, errorBox} from '../lib/dom.js';
import {code, isoInput} from '../lib/format.js';

export async function render(view, ctx) {
  view.append(h('h1', {}, 'Request log'));
  const p = ctx.params;
  const key = h('input', {id: 'rq-key', type: 'text', value: p.get('key_id') || '', placeholder: 'key id', spellcheck: 'false'});
  const project = h('input', {id: 'rq-project', type: 'text', value: p.get('project_id') || '', placeholder: 'project id', spellcheck: 'false'});
  const status = h('input', {id: 'rq-status', type: 'number', min: '100', max: '599', value: p.get('status') || ''});
  const since = h('input', {id: 'rq-since', type: 'datetime-local'});
  const until = h('input', {id: 'rq-until', type: 'datetime-local'});
  const form = h('form', {class: 'filters', id: 'rq-filters'},
    field('Key', key), field('Project', project), field('Status', status), field('Since', since), field('Until', until),
    h('button', {type: 'submit', class: 'primary'}, 'Show'));
  const out = h('div', {id: 'rq-list'});
  const more = button('Load more', () => load(false), {hidden: true, id: 'rq-more'});
  view.append(form, out, more);
  let cursor = null;
  let rows = [];

  async function load(fresh) {
    if (fresh) {
      cursor = null;
      rows = [];
    }
    try {
      const page = await get('/v1/requests' + query({key_id: key.value.trim(), project_id: project.value.trim(),
        status: status.value, since: isoInput(since.value), until: isoInput(until.value), limit: 50, cursor}));
      rows = rows.concat(page.data);
      cursor = page.next_cursor;
      more.hidden = !cursor;
      out.replaceChildren(table([
        {label: 'Received', cell: (r) => when(r.received_at)},
        {label: 'Request', cell: (r) => `${r.method} ${r.path}`},
        {label: 'Status', cell: (r) => String(r.status)},
        {label: 'Refusal', cell: (r) => r.refusal || ''},
        {label: 'Key', cell: (r) => (r.key_id ? h('a', {href: `/console/incident?key_id=${r.key_id}`}, code(r.key_id)) : '')},
        {label: 'Duration', cell: (r) => `${r.duration_ms} ms`},
        {label: 'Region', cell: (r) => r.region || ''},
        {label: 'Request id', cell: (r) => code(r.request_id)},
      ], rows, 'No requests match.'));
    } catch (e) {
      out.replaceChildren(errorBox(e));
      more.hidden = true;
    }
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    load(true);
  });
  await load(true);
}
