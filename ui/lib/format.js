// format.js: what several pages show the same way.

import {h, badge} from './dom.js';
import {get, query} from './api.js';

export function keyStatus(k) {
  if (k.status) return k.status;
  if (k.revoked_at) return 'revoked';
  if (k.kill_switch && k.kill_switch.engaged) return 'killed';
  if (k.expires_at && new Date(k.expires_at) < new Date()) return 'expired';
  return 'active';
}

export function statusBadge(k) {
  return badge(keyStatus(k));
}

// Every page of a list (at most max items): [items].
export async function listAll(path, params, max) {
  const out = [];
  let cursor = null;
  do {
    const page = await get(path + query({...params, limit: 100, cursor}));
    out.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor && out.length < (max || 500));
  return out;
}

// The organisation's projects by id (empty for an operator without one chosen).
export async function projectsById(ctx) {
  const m = new Map();
  if (ctx.operator) return m; // /v1/projects is for organisations' own credentials
  try {
    for (const p of await listAll('/v1/projects', {})) m.set(p.id, p);
  } catch (e) {
    // A role without keys:read sees ids only.
  }
  return m;
}

export function orgScoped(ctx, rows) {
  return ctx.operator && ctx.org ? rows.filter((r) => !r.org_id || r.org_id === ctx.org.id) : rows;
}

export function code(text) {
  return h('code', {}, text);
}

export function isoInput(value) {
  // <input type="datetime-local"> gives local time without a zone: as RFC 3339 UTC.
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}
