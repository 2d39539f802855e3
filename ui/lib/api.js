// api.js: every call the pages make to the server. State-changing requests
// carry X-CSRF-Token (the session's, from GET /console/api/me); /v1 calls
// carry X-Portcullis-Org-Id, the organisation chosen in the switcher.
// A failed answer throws an ApiError whose message is the problem's detail.

let csrf = null;
let org = null;

export function setCsrf(token) {
  csrf = token;
}

export function setOrg(id) {
  org = id || null;
}

export class ApiError extends Error {
  constructor(status, problem) {
    const detail = problem && (problem.detail || problem.message);
    super(detail || `The server answered ${status}.`);
    this.status = status;
    this.problem = problem || null;
  }
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export async function api(method, path, body) {
  const headers = {Accept: 'application/json'};
  if (org && path.startsWith('/v1/')) headers['X-Portcullis-Org-Id'] = org;
  if (WRITES.has(method)) headers['X-CSRF-Token'] = csrf || '';
  const init = {method, headers, credentials: 'same-origin', cache: 'no-store'};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, {detail: 'The console could not reach the server.'});
  }
  const type = r.headers.get('Content-Type') || '';
  const data = r.status !== 204 && type.includes('json') ? await r.json() : null;
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body === undefined ? {} : body);
export const del = (path) => api('DELETE', path);
export const patch = (path, body) => api('PATCH', path, body);

// A query string of the members of o that are set.
export function query(o) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
