// keys.js: the organisation's API keys: list, create (the key shown once),
// kill / lift, rotate (the new secret shown once) and delete (revoke), each
// change confirmed in a dialog that names the key.

import {get, post, del} from '../lib/api.js';
import {h, button, table, field, when, errorBox} from '../lib/dom.js';
import {confirmDialog, secretDialog, formDialog} from '../lib/dialog.js';
import {keyStatus, statusBadge, listAll, projectsById, orgScoped, code} from '../lib/format.js';

const SCOPES = ['gateway', 'keys:read', 'keys:write', 'logs:read', 'webhooks:write', 'events:ingest'];

function named(k) {
  return `"${k.name}" (${k.start}…)`;
}

export async function render(view, ctx) {
  view.append(h('h1', {}, 'API keys'));
  const bar = h('div', {class: 'toolbar'});
  const list = h('div', {id: 'keys-list'});
  view.append(bar, list);
  const writable = ctx.can('keys:write') && (!ctx.operator || ctx.org);
  if (writable) bar.append(button('Create a key', () => create(ctx, projects, refresh), {id: 'key-create', class: 'primary'}));
  else if (ctx.operator) bar.append(h('p', {class: 'hint'}, 'Choose an organisation to create a key in it.'));

  let projects = new Map();
  async function refresh() {
    try {
      projects = await projectsById(ctx);
      const keys = orgScoped(ctx, await listAll('/v1/api-keys', {}));
      list.replaceChildren(table([
        {label: 'Name', cell: (k) => k.name},
        {label: 'Start', cell: (k) => code(k.start)},
        {label: 'Env', cell: (k) => k.env},
        {label: 'Project', cell: (k) => (k.project_id ? (projects.get(k.project_id) || {name: k.project_id}).name : 'all')},
        {label: 'Scopes', cell: (k) => k.scopes.join(' ')},
        {label: 'Last used', cell: (k) => when(k.last_used_at)},
        {label: 'Status', cell: (k) => h('span', {'data-key-status': k.id}, statusBadge(k))},
        {label: 'Actions', cell: (k) => actions(ctx, k, refresh, writable)},
      ], keys, 'No keys yet.'));
    } catch (e) {
      list.replaceChildren(errorBox(e));
    }
  }
  await refresh();
}

function actions(ctx, k, refresh, writable) {
  const box = h('div', {class: 'actions'},
    h('a', {href: `/console/incident?key_id=${k.id}`, class: 'button'}, 'Incident'),
    h('a', {href: `/console/usage?key_id=${k.id}`, class: 'button'}, 'Usage'));
  if (!writable || keyStatus(k) === 'revoked' || (ctx.projectOnly && !k.project_id)) return box;
  const killed = k.kill_switch && k.kill_switch.engaged;
  box.append(
    killed
      ? button('Lift kill', () => lift(ctx, k, refresh), {'data-action': 'lift', 'data-key': k.id})
      : button('Kill', () => kill(ctx, k, refresh), {'data-action': 'kill', 'data-key': k.id, class: 'danger'}),
    button('Rotate', () => rotate(ctx, k, refresh), {'data-action': 'rotate', 'data-key': k.id}),
    button('Delete', () => revoke(ctx, k, refresh), {'data-action': 'delete', 'data-key': k.id}));
  return box;
}

async function act(ctx, fn, refresh) {
  try {
    await fn();
  } catch (e) {
    ctx.toast(e.message);
  }
  await refresh();
}

async function kill(ctx, k, refresh) {
  const ok = await confirmDialog({title: 'Kill this key?', confirm: 'Kill the key', danger: true, reason: 'optional',
    text: `Kill the key ${named(k)}: every request with it is refused with 503 from now on, on every node, until the kill is lifted.`});
  if (!ok) return;
  await act(ctx, async () => {
    await post(`/v1/api-keys/${k.id}/kill`, ok.reason ? {reason: ok.reason} : {});
    ctx.toast(`The key ${k.name} is killed.`);
  }, refresh);
}

async function lift(ctx, k, refresh) {
  const ok = await confirmDialog({title: 'Lift the kill?', confirm: 'Lift the kill',
    text: `Lift the kill of the key ${named(k)}: it works again at once.`});
  if (!ok) return;
  await act(ctx, async () => {
    await del(`/v1/api-keys/${k.id}/kill`);
    ctx.toast(`The kill of ${k.name} is lifted.`);
  }, refresh);
}

async function rotate(ctx, k, refresh) {
  const ok = await confirmDialog({title: 'Rotate this key?', confirm: 'Rotate',
    text: `Rotate the key ${named(k)}: it gets a new secret and the old one stops working at once.`});
  if (!ok) return;
  await act(ctx, async () => {
    const r = await post(`/v1/api-keys/${k.id}/rotate`, {});
    await secretDialog(`The new secret of ${k.name}`, 'key', r.key);
  }, refresh);
}

async function revoke(ctx, k, refresh) {
  const ok = await confirmDialog({title: 'Delete this key?', confirm: 'Delete the key', danger: true,
    text: `Delete (revoke) the key ${named(k)}: it is refused for good. This cannot be undone.`});
  if (!ok) return;
  await act(ctx, async () => {
    await del(`/v1/api-keys/${k.id}`);
    ctx.toast(`The key ${k.name} is revoked.`);
  }, refresh);
}

async function create(ctx, projects, refresh) {
  const name = h('input', {id: 'key-name', type: 'text', required: true, maxlength: '200'});
  const env = h('select', {id: 'key-env'}, h('option', {value: 'live'}, 'live'), h('option', {value: 'test'}, 'test'));
  // A developer's keys belong to a project: no organisation-wide choice.
  const project = h('select', {id: 'key-project', required: ctx.projectOnly},
    ctx.projectOnly ? null : h('option', {value: ''}, 'The whole organisation'),
    [...projects.values()].map((p) => h('option', {value: p.id}, p.name)));
  const boxes = SCOPES.map((s) => h('label', {class: 'check'},
    h('input', {type: 'checkbox', name: 'scope', value: s, checked: s === 'gateway'}), ` ${s}`));
  const expires = h('input', {id: 'key-expires', type: 'datetime-local'});
  const fields = [field('Name', name), field('Environment', env), field('Project', project),
    h('fieldset', {class: 'field'}, h('legend', {}, 'Scopes'), boxes),
    field('Expires (optional)', expires)];
  const created = await formDialog('Create an API key', fields, 'Create', async (form) => {
    if (ctx.projectOnly && !project.value) throw new Error('Your role creates keys of a project: create or choose one first.');
    const body = {name: name.value.trim(), env: env.value,
      scopes: [...form.querySelectorAll('input[name=scope]:checked')].map((c) => c.value)};
    if (project.value) body.project_id = project.value;
    if (expires.value) body.expires_at = new Date(expires.value).toISOString();
    const path = ctx.operator ? `/v1/orgs/${ctx.org.id}/api-keys` : '/v1/api-keys';
    return post(path, body);
  });
  if (created) {
    await secretDialog(`The key ${created.name}`, 'key', created.key);
    await refresh();
  }
}
