// webhooks.js: webhook endpoints (create: the signing secret shown once;
// test, recover, delete), their messages with deliveries and attempts, and
// resending a message.

import {get, post, del, query} from '../lib/api.js';
import {h, clear, button, field, table, when, errorBox, badge} from '../lib/dom.js';
import {confirmDialog, secretDialog, formDialog} from '../lib/dialog.js';
import {code, listAll, orgScoped, isoInput, projectsById} from '../lib/format.js';

export async function render(view, ctx) {
  view.append(h('h1', {}, 'Webhooks'));
  const writable = ctx.can('webhooks:write') && (!ctx.operator || ctx.org);
  const bar = h('div', {class: 'toolbar'});
  const eps = h('div', {id: 'wh-endpoints'});
  const msgs = h('div', {id: 'wh-messages'});
  view.append(bar, h('h2', {}, 'Endpoints'), eps, h('h2', {}, 'Messages'), msgs);
  if (writable) bar.append(button('Add an endpoint', () => create(ctx, projects, refresh), {id: 'wh-create', class: 'primary'}));
  // A developer changes only the endpoints bound to a project.
  const mayChange = (e) => writable && !(ctx.projectOnly && !e.project_id);

  let projects = new Map();
  async function refresh() {
    try {
      projects = await projectsById(ctx);
      const list = orgScoped(ctx, await listAll('/v1/webhook-endpoints', {}));
      byId = new Map(list.map((e) => [e.id, e]));
      eps.replaceChildren(table([
        {label: 'URL', cell: (e) => code(e.url)},
        {label: 'Description', cell: (e) => e.description || ''},
        {label: 'Project', cell: (e) => (e.project_id ? (projects.get(e.project_id) || {name: e.project_id}).name : 'all')},
        {label: 'Events', cell: (e) => (e.event_types ? e.event_types.join(' ') : 'all')},
        {label: 'State', cell: (e) => (e.disabled ? badge('disabled') : e.failing_since ? badge('failing', 'failed') : badge('active'))},
        {label: 'Actions', cell: (e) => h('div', {class: 'actions'},
          button('Messages', () => messages(ctx, msgs, e.id)),
          mayChange(e) ? button('Send a test', () => act(ctx, () => post(`/v1/webhook-endpoints/${e.id}/test`), 'A test message is on its way.', refresh),
            {'data-action': 'test', 'data-endpoint': e.id}) : null,
          mayChange(e) ? button('Recover', () => recover(ctx, e, refresh), {'data-action': 'recover', 'data-endpoint': e.id}) : null,
          mayChange(e) ? button('Delete', () => remove(ctx, e, refresh), {class: 'danger', 'data-action': 'delete', 'data-endpoint': e.id}) : null)},
      ], list, 'No endpoints yet.'));
    } catch (e) {
      eps.replaceChildren(errorBox(e));
    }
  }
  let byId = new Map();
  ctx.mayResend = (endpointId) => ctx.can('webhooks:write') &&
    (!ctx.projectOnly || (endpointId && byId.has(endpointId) && !!byId.get(endpointId).project_id));
  await refresh();
  await messages(ctx, msgs, null);
}

async function act(ctx, fn, done, refresh) {
  try {
    await fn();
    ctx.toast(done);
  } catch (e) {
    ctx.toast(e.message);
  }
  if (refresh) await refresh();
}

async function create(ctx, projects, refresh) {
  const url = h('input', {id: 'wh-url', type: 'url', required: true, placeholder: 'an https URL'});
  // A developer's endpoints belong to a project; others may choose every project's messages.
  const project = h('select', {id: 'wh-project', required: ctx.projectOnly},
    ctx.projectOnly ? null : h('option', {value: ''}, 'Every project'),
    [...projects.values()].map((p) => h('option', {value: p.id}, p.name)));
  const desc = h('input', {id: 'wh-desc', type: 'text', maxlength: '500'});
  const types = h('input', {id: 'wh-types', type: 'text', placeholder: 'api_key.killed org.killed'});
  const made = await formDialog('Add a webhook endpoint',
    [field('URL', url), field('Description', desc), field('Project', project, 'Its messages and the organisation-wide ones.'),
      field('Event types', types, 'Space-separated; empty for every type.')],
    'Add', () => {
      if (ctx.projectOnly && !project.value) throw new Error('Your role adds endpoints of a project: choose one.');
      const body = {url: url.value.trim()};
      if (project.value) body.project_id = project.value;
      if (desc.value.trim()) body.description = desc.value.trim();
      const t = types.value.split(/[\s,]+/).filter(Boolean);
      if (t.length) body.event_types = t;
      return post(ctx.operator ? `/v1/orgs/${ctx.org.id}/webhook-endpoints` : '/v1/webhook-endpoints', body);
    });
  if (made) {
    await secretDialog(`The signing secret of ${made.url}`, 'signing secret', made.secret);
    await refresh();
  }
}

async function recover(ctx, e, refresh) {
  const since = h('input', {id: 'wh-since', type: 'datetime-local', required: true});
  const r = await formDialog(`Recover failed deliveries to ${e.url}`, [field('Messages created since', since)], 'Recover', () => {
    const t = isoInput(since.value);
    if (!t) throw new Error('Choose a time.');
    return post(`/v1/webhook-endpoints/${e.id}/recover`, {since: t});
  });
  if (r) ctx.toast(`${r.requeued} deliveries are pending again.`);
  await refresh();
}

async function remove(ctx, e, refresh) {
  const ok = await confirmDialog({title: 'Delete this endpoint?', confirm: 'Delete', danger: true,
    text: `Delete the endpoint ${e.url}: it gets no more deliveries; pending ones end failed.`});
  if (ok) await act(ctx, () => del(`/v1/webhook-endpoints/${e.id}`), 'The endpoint is deleted.', refresh);
}

async function messages(ctx, box, endpointId) {
  try {
    const page = await get('/v1/webhook-messages' + query({endpoint_id: endpointId, limit: 50}));
    // clear() skips the null (replaceChildren would show it as the text "null").
    clear(box,
      endpointId ? h('p', {}, 'Messages of one endpoint. ', button('Show all', () => messages(ctx, box, null))) : null,
      table([
        {label: 'Created', cell: (m) => when(m.created_at)},
        {label: 'Type', cell: (m) => m.type},
        {label: 'Deliveries', cell: (m) => (m.deliveries || []).map((d) =>
          h('div', {}, badge(d.status), ` ${d.channel} ${d.attempts} attempt(s)`))},
        {label: 'Actions', cell: (m) => h('div', {class: 'actions'},
          button('Attempts', () => attempts(m)),
          ctx.mayResend(endpointId) ? button('Resend', () => resend(ctx, m, endpointId)) : null)},
      ], page.data, 'No messages.'));
  } catch (e) {
    box.replaceChildren(errorBox(e));
  }
}

async function attempts(m) {
  let rows = [];
  let err = null;
  try {
    rows = (await get(`/v1/webhook-messages/${m.id}/attempts`)).data;
  } catch (e) {
    err = e;
  }
  await formDialog(`Attempts of ${m.type} (${m.id})`, [err ? errorBox(err) : table([
    {label: 'At', cell: (a) => when(a.at)},
    {label: 'Status', cell: (a) => badge(a.status)},
    {label: 'HTTP', cell: (a) => (a.http_status ? String(a.http_status) : '')},
    {label: 'Error', cell: (a) => a.error || ''},
    {label: 'Duration', cell: (a) => `${a.duration_ms} ms`},
  ], rows, 'No attempts yet.')], 'Close', async () => true);
}

async function resend(ctx, m, endpointId) {
  const ok = await confirmDialog({title: 'Resend this message?', confirm: 'Resend',
    text: `Send the message ${m.type} (${m.id}) again${endpointId ? ' to this endpoint' : ' to every endpoint it went to'}.`});
  if (!ok) return;
  try {
    const r = await post(`/v1/webhook-messages/${m.id}/resend`, endpointId ? {endpoint_id: endpointId} : {});
    ctx.toast(`${r.requeued} deliveries requeued.`);
  } catch (e) {
    ctx.toast(e.message);
  }
}
