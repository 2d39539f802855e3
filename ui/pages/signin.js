// signin.js: a magic link by mail, or one button per configured OpenID
// Connect provider (GET /console/api/providers).

import {api, ApiError} from '../lib/api.js';
import {h, field} from '../lib/dom.js';

export async function render(view) {
  const email = h('input', {id: 'signin-email', type: 'email', autocomplete: 'email', required: true});
  const msg = h('p', {id: 'signin-msg', role: 'status'});
  const send = h('button', {type: 'submit', class: 'primary', id: 'signin-send'}, 'Send me a sign-in link');
  const form = h('form', {id: 'signin-form', class: 'form'}, field('Email address', email), send, msg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    send.disabled = true;
    try {
      await api('POST', '/console/auth/magic-link', {email: email.value.trim()});
      msg.className = 'ok';
      msg.textContent = 'Check your mail: the link works once, in this browser, for 10 minutes.';
    } catch (err) {
      msg.className = 'error';
      msg.textContent = err.message;
    } finally {
      send.disabled = false;
    }
  });
  const providers = h('div', {class: 'providers'});
  view.append(h('section', {class: 'signin card'}, h('h1', {}, 'Sign in to the console'), form, providers));
  email.focus();
  try {
    const p = await api('GET', '/console/api/providers');
    if (p.data.length) {
      providers.append(h('p', {}, 'Or sign in with'),
        h('ul', {class: 'provider-list'}, p.data.map((x) =>
          h('li', {}, h('a', {class: 'button', href: x.start}, x.display_name || x.name)))));
    }
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) providers.append(h('p', {class: 'error'}, err.message));
  }
}
