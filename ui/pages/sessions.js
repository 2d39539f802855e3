// sessions.js: the user's own sessions (GET /console/api/sessions); ending one.

import {get, del} from '../lib/api.js';
import {h, button, table, when, errorBox} from '../lib/dom.js';
import {confirmDialog} from '../lib/dialog.js';

export async function render(view, ctx) {
  view.append(h('h1', {}, 'Your sessions'));
  const out = h('div', {id: 'sessions-list'});
  view.append(out);
  async function refresh() {
    try {
      const s = await get('/console/api/sessions');
      out.replaceChildren(table([
        {label: 'Started', cell: (x) => when(x.created_at)},
        {label: 'Last seen', cell: (x) => when(x.last_seen_at)},
        {label: 'Browser', cell: (x) => x.user_agent},
        {label: '', cell: (x) => (x.current ? 'this browser' : button('End', async () => {
          const ok = await confirmDialog({title: 'End this session?', confirm: 'End it',
            text: `End the session started ${when(x.created_at)} in ${x.user_agent || 'an unknown browser'}.`});
          if (!ok) return;
          try {
            await del(`/console/api/sessions/${x.id}`);
          } catch (e) {
            ctx.toast(e.message);
          }
          await refresh();
        }))},
      ], s.data));
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  }
  await refresh();
}
