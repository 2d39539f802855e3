// members.js: inviting people to the organisation (owners and operators).
// An invitation is mailed as a link (POST /v1/orgs/{orgId}/invitations).

import {post} from '../lib/api.js';
import {h, field} from '../lib/dom.js';

const ROLES = ['viewer', 'developer', 'admin', 'owner'];

export async function render(view, ctx) {
  view.append(h('h1', {}, 'Members and invitations'));
  if (!ctx.org) {
    view.append(h('p', {}, 'Choose an organisation first.'));
    return;
  }
  view.append(h('p', {}, `Organisation ${ctx.org.name}. You are ${ctx.org.role ? `its ${ctx.org.role}` : 'an operator'}.`));
  const email = h('input', {id: 'invite-email', type: 'email', required: true, autocomplete: 'off'});
  const role = h('select', {id: 'invite-role'}, ROLES.map((r) => h('option', {value: r}, r)));
  const msg = h('p', {id: 'invite-msg', role: 'status'});
  const send = h('button', {type: 'submit', class: 'primary'}, 'Send the invitation');
  const form = h('form', {class: 'form card', id: 'invite-form'}, h('h2', {}, 'Invite someone'),
    field('Email address', email), field('Role', role), send, msg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    send.disabled = true;
    try {
      const inv = await post(`/v1/orgs/${ctx.org.id}/invitations`, {email: email.value.trim(), role: role.value});
      msg.className = 'ok';
      msg.textContent = `Invited ${inv.email} as ${inv.role}; the link works until ${inv.expires_at}.`;
      email.value = '';
    } catch (err) {
      msg.className = 'error';
      msg.textContent = err.message;
    } finally {
      send.disabled = false;
    }
  });
  view.append(form);
}
