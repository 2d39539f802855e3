// incident.js: the incident view of one key (GET /v1/incidents/report,
// INCIDENT.md): its state, kill switches, traffic, refused attempts and
// history, and the recommended next steps as buttons (kill, replace,
// verify, revoke), each confirmed in a dialog that names the key.

import {get, post, del, query} from '../lib/api.js';
import {h, button, field, table, when, errorBox, badge} from '../lib/dom.js';
import {confirmDialog, secretDialog} from '../lib/dialog.js';
import {listAll, orgScoped, code} from '../lib/format.js';

export async function render(view, ctx) {
  view.append(h('h1', {}, 'Incident view'));
  const pick = h('select', {id: 'incident-key'}, h('option', {value: ''}, 'Choose a key'));
  const out = h('div', {id: 'incident-report'});
  view.append(h('div', {class: 'filters'}, field('Key', pick)), out);
  try {
    for (const k of orgScoped(ctx, await listAll('/v1/api-keys', {}))) {
      pick.append(h('option', {value: k.id, selected: ctx.params.get('key_id') === k.id}, `${k.name} (${k.start}…)`));
    }
  } catch (e) {
    out.append(errorBox(e));
  }
  pick.addEventListener('change', () => {
    history.replaceState(null, '', `/console/incident${query({key_id: pick.value})}`);
    show(ctx, out, pick.value);
  });
  const id = ctx.params.get('key_id');
  if (id) await show(ctx, out, id);
}

async function show(ctx, out, keyId) {
  if (!keyId) {
    out.replaceChildren();
    return;
  }
  out.replaceChildren(h('p', {}, 'Loading the report…'));
  let r;
  try {
    r = await get(`/v1/incidents/report${query({key_id: keyId})}`);
  } catch (e) {
    out.replaceChildren(errorBox(e));
    return;
  }
  const k = r.key;
  const again = () => show(ctx, out, keyId);
  const switches = Object.entries(r.kill_switches || {}).map(([scope, s]) => ({scope, s}));
  const t = r.traffic || {};
  out.replaceChildren(
    h('section', {class: 'card'},
      h('h2', {}, `${k.name} `, h('span', {id: 'incident-status'}, badge(k.status))),
      h('p', {}, code(k.start), ` ${k.env}, scopes ${k.scopes.join(' ')}; `,
        r.organization ? `organisation ${r.organization.name}` : 'an operator key',
        r.project ? `, project ${r.project.name}` : '', `. Last used ${when(k.last_used_at)}.`),
      h('p', {}, `Window: ${when(r.window.since)} to ${when(r.window.until)}.`)),
    h('h2', {}, 'Recommended steps'),
    h('ol', {class: 'steps', id: 'incident-steps'}, r.next_steps.map((s) => stepItem(ctx, k, r, s, again))),
    h('h2', {}, 'Kill switches'),
    table([{label: 'Scope', cell: (x) => x.scope},
      {label: 'State', cell: (x) => (x.s ? badge('engaged') : 'off')},
      {label: 'Set by', cell: (x) => (x.s ? `${x.s.set_by}` : '')},
      {label: 'Reason', cell: (x) => (x.s && x.s.reason) || ''},
      {label: 'At', cell: (x) => (x.s ? when(x.s.at) : '')}], switches),
    h('h2', {}, 'Traffic'),
    h('p', {}, `${t.requests || 0} request(s), ${t.errors_4xx || 0} 4xx, ${t.errors_5xx || 0} 5xx; refused attempts naming the key: ${(r.refused || {}).attempts || 0}.`),
    table([{label: 'Region', cell: (x) => x.region || 'unknown'}, {label: 'Requests', cell: (x) => String(x.requests)},
      {label: 'New in the window', cell: (x) => (x.new ? badge('new', 'pending') : '')},
      {label: 'First seen', cell: (x) => when(x.first_seen)}, {label: 'Last seen', cell: (x) => when(x.last_seen)}],
    t.by_region || [], 'No traffic in the window.'),
    table([{label: 'User agent', cell: (x) => x.user_agent || ''}, {label: 'Requests', cell: (x) => String(x.requests)},
      {label: 'New in the window', cell: (x) => (x.new ? badge('new', 'pending') : '')}], t.by_user_agent || [], ''),
    h('h2', {}, 'History'),
    table([{label: 'At', cell: (e) => when(e.at)}, {label: 'Action', cell: (e) => e.action},
      {label: 'Actor', cell: (e) => `${e.actor.type} ${e.actor.id || ''}`}], r.history || [], 'No events.'));
}

function stepItem(ctx, k, r, s, again) {
  const li = h('li', {'data-step': s.action},
    h('strong', {}, `${s.step}. ${s.title}`), s.done ? h('span', {class: 'done'}, ' (done)') : null,
    h('p', {}, s.note || ''), s.cli ? h('p', {}, code(s.cli)) : null);
  const writable = ctx.can('keys:write');
  let b = null;
  if (s.action === 'kill' && !s.done && writable) {
    b = button('Kill the key now', async () => {
      const ok = await confirmDialog({title: 'Kill this key?', confirm: 'Kill the key', danger: true, reason: 'optional',
        text: `Kill the key "${k.name}" (${k.start}…): every request with it is refused from now on.`});
      if (!ok) return;
      await run(ctx, () => post(`/v1/api-keys/${k.id}/kill`, {reason: ok.reason || (s.body && s.body.reason) || 'suspected leak'}));
      await again();
    }, {class: 'danger', id: 'step-kill'});
  } else if (s.action === 'replace' && writable && r.organization) {
    b = button('Create the replacement key', async () => {
      const ok = await confirmDialog({title: 'Create a replacement?', confirm: 'Create',
        text: `Create "${s.body.name}" with the same environment, project and scopes as "${k.name}".`});
      if (!ok) return;
      await run(ctx, async () => {
        const made = await post(ctx.operator ? `/v1/orgs/${r.organization.id}/api-keys` : '/v1/api-keys', s.body);
        await secretDialog(`The key ${made.name}`, 'key', made.key);
      });
      await again();
    }, {id: 'step-replace'});
  } else if (s.action === 'verify') {
    b = h('a', {class: 'button', href: `/console/usage${query({key_id: k.id})}`, id: 'step-verify'}, 'Open the key\'s usage');
  } else if (s.action === 'revoke' && !s.done && writable) {
    b = button('Revoke the key', async () => {
      const ok = await confirmDialog({title: 'Revoke this key?', confirm: 'Revoke for good', danger: true,
        text: `Revoke the key "${k.name}" (${k.start}…): it is refused for good. This cannot be undone.`});
      if (!ok) return;
      await run(ctx, () => del(`/v1/api-keys/${k.id}`));
      await again();
    }, {class: 'danger', id: 'step-revoke'});
  }
  if (b) li.append(h('div', {class: 'actions'}, b));
  return li;
}

async function run(ctx, fn) {
  try {
    await fn();
  } catch (e) {
    ctx.toast(e.message);
  }
}
