// dialog.js: modal dialogs (<dialog> opened with showModal: the page behind
// is inert). Focus stays inside (Tab and Shift+Tab cycle), Escape closes
// (as Cancel), and focus returns to what opened the dialog.

import {h, button} from './dom.js';

const FOCUSABLE = 'button, [href], input, select, textarea, [tabindex]:not([tabindex="-1"])';

function open(title, body, actions) {
  const opener = document.activeElement;
  const heading = h('h2', {id: `dlg-${Date.now()}`}, title);
  const dlg = h('dialog', {class: 'dialog', 'aria-labelledby': heading.id},
    heading, body, h('div', {class: 'actions'}, actions));
  dlg.addEventListener('keydown', (e) => {
    if (e.key !== 'Tab') return;
    const f = [...dlg.querySelectorAll(FOCUSABLE)].filter((el) => !el.disabled && !el.hidden);
    if (!f.length) return;
    const first = f[0], last = f[f.length - 1];
    if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  });
  dlg.addEventListener('close', () => {
    dlg.remove();
    if (opener && opener.isConnected) opener.focus();
  });
  document.body.append(dlg);
  dlg.showModal();
  return dlg;
}

// Ask to confirm an action. opts: {title, text, confirm (label), danger,
// reason: 'required'|'optional'|undefined}. Resolves to {reason} or null.
export function confirmDialog(opts) {
  return new Promise((resolve) => {
    let result = null;
    const reason = opts.reason
      ? h('input', {id: 'dlg-reason', type: 'text', maxlength: '500', required: opts.reason === 'required'})
      : null;
    const msg = h('p', {class: 'error', role: 'alert', hidden: true});
    const ok = button(opts.confirm || 'Confirm', () => {
      if (reason && opts.reason === 'required' && !reason.value.trim()) {
        msg.hidden = false;
        msg.textContent = 'A reason is required.';
        reason.focus();
        return;
      }
      result = {reason: reason ? reason.value.trim() : undefined};
      dlg.close();
    }, {class: opts.danger ? 'danger' : 'primary'});
    const cancel = button('Cancel', () => dlg.close());
    const body = h('div', {},
      h('p', {}, opts.text),
      reason ? h('div', {class: 'field'},
        h('label', {for: 'dlg-reason'}, opts.reason === 'required' ? 'Reason (required)' : 'Reason (optional)'),
        reason) : null,
      msg);
    const dlg = open(opts.title, body, [cancel, ok]);
    dlg.addEventListener('close', () => resolve(result));
    (reason || cancel).focus();
  });
}

// Show a secret once, with a copy button and the warning that it cannot be
// shown again. Resolves when the dialog is closed.
export function secretDialog(title, label, secret) {
  return new Promise((resolve) => {
    const out = h('input', {id: 'secret-value', class: 'secret', type: 'text', readonly: true,
      value: secret, 'aria-label': label, spellcheck: 'false'});
    const status = h('span', {class: 'copy-status', role: 'status'});
    const copy = button('Copy', async () => {
      try {
        await navigator.clipboard.writeText(secret);
        status.textContent = 'Copied.';
      } catch (e) {
        out.select();
        status.textContent = document.execCommand && document.execCommand('copy')
          ? 'Copied.' : 'Select the text and copy it.';
      }
    }, {id: 'copy-secret', class: 'primary'});
    const done = button('I have stored it', () => dlg.close(), {id: 'secret-done'});
    const body = h('div', {},
      h('p', {class: 'warning'}, `This ${label} is shown once and cannot be shown again. Copy it now and keep it somewhere safe.`),
      h('div', {class: 'secret-row'}, out, copy), status);
    const dlg = open(title, body, [done]);
    dlg.addEventListener('close', () => resolve());
    copy.focus();
  });
}

// A form in a dialog. fields: nodes; submit(form) -> Promise (throws to stay open).
export function formDialog(title, fields, submitLabel, submit) {
  return new Promise((resolve) => {
    let result = null;
    const msg = h('p', {class: 'error', role: 'alert', hidden: true});
    const form = h('form', {class: 'form', novalidate: true}, fields, msg);
    const ok = h('button', {type: 'submit', class: 'primary'}, submitLabel);
    form.append(h('div', {class: 'actions'}, button('Cancel', () => dlg.close()), ok));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      ok.disabled = true;
      try {
        result = await submit(form);
        dlg.close();
      } catch (err) {
        msg.hidden = false;
        msg.textContent = err.message;
      } finally {
        ok.disabled = false;
      }
    });
    const dlg = open(title, form, []);
    dlg.addEventListener('close', () => resolve(result));
    const first = form.querySelector('input, select, textarea');
    if (first) first.focus();
  });
}
