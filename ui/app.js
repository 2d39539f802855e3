// app.js: the console's shell. Reads the session (GET /console/api/me),
// builds the organisation switcher and the navigation, and renders the page
// of the path (/console/<page>, ui/pages.json) from its module
// pages/<page>.js, whose render(main, ctx) draws it. Links inside /console/
// change the page without reloading.

import {api, get, post, setCsrf, setOrg, ApiError} from './lib/api.js';
import {h, clear, button, errorBox} from './lib/dom.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const switcher = document.getElementById('org-switcher');
const userBox = document.getElementById('user');
const toastBox = document.getElementById('toast');

const ORG_KEY = 'portcullis.org';
let pages = [];
let me = null;
let orgs = []; // [{id, name, role, rights}]
let current = null; // the chosen organisation, or null (an operator: all)

function toast(text) {
  toastBox.textContent = text;
  clearTimeout(toast.t);
  toast.t = setTimeout(() => { toastBox.textContent = ''; }, 6000);
}

function pageName() {
  const rest = location.pathname.replace(/^\/console\/?/, '');
  return rest || (me ? 'keys' : 'signin');
}

export function navigate(path) {
  history.pushState(null, '', path);
  render();
}

function allowed(p) {
  if (!me) return p.path === 'signin';
  if (p.path === 'signin') return false;
  if (p.operator) return me.user.operator;
  if (p.right) return me.user.operator || (current && current.rights.includes(p.right));
  return true;
}

function can(right) {
  if (!me) return false;
  if (me.user.operator) return true;
  return !!(current && current.rights.includes(right));
}

function buildNav() {
  const name = pageName();
  clear(nav, h('ul', {}, pages.filter((p) => p.nav && allowed(p)).map((p) =>
    h('li', {}, h('a', {href: `/console/${p.path}`, 'aria-current': p.path === name ? 'page' : null}, p.title)))));
  nav.hidden = !me;
}

function buildSwitcher() {
  if (!me) {
    clear(switcher);
    return;
  }
  const sel = h('select', {id: 'org-select', onchange: () => {
    current = orgs.find((o) => o.id === sel.value) || null;
    localStorage.setItem(ORG_KEY, sel.value);
    setOrg(current ? current.id : null);
    buildNav();
    render();
  }});
  if (me.user.operator) sel.append(h('option', {value: ''}, 'All organisations'));
  for (const o of orgs) {
    sel.append(h('option', {value: o.id, selected: current && current.id === o.id}, o.role ? `${o.name} (${o.role})` : o.name));
  }
  clear(switcher, h('label', {for: 'org-select'}, 'Organisation'), sel);
}

function buildUser() {
  if (!me) {
    clear(userBox);
    return;
  }
  clear(userBox,
    h('span', {class: 'who'}, me.user.email, me.user.operator ? ' (operator)' : ''),
    button('Sign out', signOut, {id: 'sign-out'}));
}

async function signOut() {
  try {
    await post('/console/auth/logout');
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      toast(e.message);
      return;
    }
  }
  me = null;
  setCsrf(null);
  setOrg(null);
  history.pushState(null, '', '/console/signin');
  await boot();
}

async function loadOrgs() {
  orgs = me.memberships.map((m) => ({id: m.org_id, name: m.org_name, role: m.role, rights: m.rights}));
  if (me.user.operator) {
    try {
      const all = await get('/v1/orgs?limit=100');
      for (const o of all.data) if (!orgs.find((x) => x.id === o.id)) orgs.push({id: o.id, name: o.name, role: null, rights: []});
    } catch (e) {
      toast(e.message);
    }
  }
  const saved = localStorage.getItem(ORG_KEY);
  current = orgs.find((o) => o.id === saved) || (me.user.operator ? null : orgs[0]) || null;
  setOrg(current ? current.id : null);
}

async function render() {
  const name = pageName();
  const page = pages.find((p) => p.path === name);
  buildNav();
  if (!page || !allowed(page)) {
    if (!me && name !== 'signin') {
      history.replaceState(null, '', '/console/signin');
      return render();
    }
    if (me && name === 'signin') {
      history.replaceState(null, '', '/console/keys');
      return render();
    }
    clear(main, h('h1', {}, 'Not available'), h('p', {}, 'This page does not exist or your role cannot open it.'));
    return;
  }
  document.title = `${page.title} - Portcullis console`;
  clear(main, h('p', {}, 'Loading…'));
  const ctx = {
    me, org: current, orgs, operator: !!(me && me.user.operator), can, navigate, toast,
    // A developer changes only the keys and webhook endpoints bound to a project
    // (docs/console.md, "Roles and rights"); the server refuses the rest anyway.
    projectOnly: !!(me && !me.user.operator && current && current.role === 'developer'),
    params: new URLSearchParams(location.search), reload: render, boot,
  };
  try {
    const mod = await import(`./pages/${name}.js`);
    const view = h('div', {class: 'page', 'data-page': name});
    clear(main, view);
    await mod.render(view, ctx);
  } catch (e) {
    clear(main, h('h1', {}, page.title), errorBox(e));
  }
}

async function boot() {
  try {
    me = await api('GET', '/console/api/me');
    setCsrf(me.csrf_token);
    await loadOrgs();
  } catch (e) {
    me = null;
    if (!(e instanceof ApiError && e.status === 401)) toast(e.message);
  }
  buildSwitcher();
  buildUser();
  await render();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith('/console/') || a.target) return;
  if (url.pathname.startsWith('/console/auth/') || url.pathname.startsWith('/console/api/')) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
  main.focus();
});
window.addEventListener('popstate', () => render());

pages = await (await fetch('/console/pages.json')).json();
await boot();
