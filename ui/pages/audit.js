// audit.js: the audit log (GET /v1/audit-events) and the result of the hash
// chain's check (GET /v1/audit-events/verify).

import {get, query} from '../lib/api.js';
import {h, button, field, table, when, errorBox, badge} from '../lib/dom.js';
import {code, isoInput} from '../lib/format.js';

export async function render(view, ctx) {
  view.append(h('h1', {}, 'Audit log'));
  const chain = h('div', {class: 'card', id: 'audit-chain'}, 'Checking the hash chain…');
  const key = h('input', {id: 'au-key', type: 'text', value: ctx.params.get('key_id') || '', placeholder: 'key id', spellcheck: 'false'});
  const since = h('input', {id: 'au-since', type: 'datetime-local'});
  const until = h('input', {id: 'au-until', type: 'datetime-local'});
  const form = h('form', {class: 'filters'}, field('Key', key), field('Since', since), field('Until', until),
    h('button', {type: 'submit', class: 'primary'}, 'Show'));
  const out = h('div', {id: 'au-list'});
  const more = button('Load more', () => load(false), {hidden: true});
  view.append(chain, form, out, more);
  let cursor = null;
  let rows = [];

  get('/v1/audit-events/verify').then((v) => {
    chain.replaceChildren(v.ok
      ? h('p', {}, badge('ok'), ` The hash chain holds: ${v.checked} event(s) verified.`)
      : h('p', {}, badge('broken'), ` The hash chain is broken at event ${v.bad_id || '(the head)'}: an event was edited, inserted or deleted.`));
  }).catch((e) => chain.replaceChildren(errorBox(e)));

  async function load(fresh) {
    if (fresh) {
      cursor = null;
      rows = [];
    }
    try {
      const page = await get('/v1/audit-events' + query({key_id: key.value.trim(), since: isoInput(since.value),
        until: isoInput(until.value), limit: 100, cursor}));
      rows = rows.concat(page.data);
      cursor = page.next_cursor;
      more.hidden = !cursor;
      out.replaceChildren(table([
        {label: 'Seq', cell: (e) => String(e.seq)},
        {label: 'At', cell: (e) => when(e.at)},
        {label: 'Action', cell: (e) => e.action},
        {label: 'Actor', cell: (e) => `${e.actor.type} ${e.actor.id || ''}`},
        {label: 'Target', cell: (e) => (e.target ? `${e.target.type} ${e.target.id || ''}` : '')},
        {label: 'Details', cell: (e) => (e.details ? code(JSON.stringify(e.details)) : '')},
      ], rows, 'No events match.'));
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    load(true);
  });
  await load(true);
}
