// operator.js: for operators: the organisations, an organisation's kill
// switch and the global one (a reason is required to engage either).

import {get, post, del} from '../lib/api.js';
import {h, button, table, field, when, errorBox, badge} from '../lib/dom.js';
import {confirmDialog, formDialog} from '../lib/dialog.js';
import {listAll} from '../lib/format.js';

export async function render(view, ctx) {
  view.append(h('h1', {}, 'Operator'));
  const global = h('section', {class: 'card', id: 'global-kill'});
  const bar = h('div', {class: 'toolbar'}, button('Create an organisation', () => create(refresh), {id: 'org-create'}));
  const list = h('div', {id: 'orgs-list'});
  view.append(h('h2', {}, 'Global kill switch'), global, h('h2', {}, 'Organisations'), bar, list);

  async function refresh() {
    try {
      const orgs = await listAll('/v1/orgs', {});
      list.replaceChildren(table([
        {label: 'Name', cell: (o) => o.name},
        {label: 'Contact', cell: (o) => o.contact_email || ''},
        {label: 'Kill switch', cell: (o) => (o.kill_switch.engaged ? h('span', {}, badge('engaged'), ` ${o.kill_switch.reason || ''}`) : 'off')},
        {label: 'Created', cell: (o) => when(o.created_at)},
        {label: '', cell: (o) => (o.kill_switch.engaged
          ? button('Lift the kill', () => lift(ctx, `/v1/orgs/${o.id}/kill`, `the organisation ${o.name}`, refresh), {'data-org': o.id})
          : button('Kill the organisation', () => kill(ctx, `/v1/orgs/${o.id}/kill`, `every key of the organisation ${o.name}`, refresh), {class: 'danger', 'data-org': o.id}))},
      ], orgs, 'No organisations yet.'));
    } catch (e) {
      list.replaceChildren(errorBox(e));
    }
    global.replaceChildren(
      h('p', {}, 'Stops every API key of every organisation at once (operator keys keep working).'),
      h('div', {class: 'actions'},
        button('Engage the global kill', () => kill(ctx, '/v1/kill-switch', 'every API key of every organisation', refresh), {class: 'danger', id: 'global-kill-engage'}),
        button('Lift the global kill', () => lift(ctx, '/v1/kill-switch', 'the global kill', refresh), {id: 'global-kill-lift'})));
  }
  await refresh();
}

async function kill(ctx, path, what, refresh) {
  const ok = await confirmDialog({title: 'Engage a kill switch?', confirm: 'Engage', danger: true, reason: 'required',
    text: `Stop ${what} now, on every node, until it is lifted.`});
  if (!ok) return;
  try {
    await post(path, {reason: ok.reason});
    ctx.toast('The kill switch is engaged.');
  } catch (e) {
    ctx.toast(e.message);
  }
  await refresh();
}

async function lift(ctx, path, what, refresh) {
  const ok = await confirmDialog({title: 'Lift the kill switch?', confirm: 'Lift', text: `Lift the kill of ${what}.`});
  if (!ok) return;
  try {
    await del(path);
    ctx.toast('The kill switch is lifted.');
  } catch (e) {
    ctx.toast(e.message);
  }
  await refresh();
}

async function create(refresh) {
  const name = h('input', {id: 'org-name', type: 'text', required: true, maxlength: '200'});
  const contact = h('input', {id: 'org-contact', type: 'email'});
  const made = await formDialog('Create an organisation', [field('Name', name), field('Contact email (optional)', contact)], 'Create',
    () => post('/v1/orgs', contact.value.trim() ? {name: name.value.trim(), contact_email: contact.value.trim()} : {name: name.value.trim()}));
  if (made) await refresh();
}
