// Bifrost web UI: boot, session, hash routing and the page frame (header, navigation,
// organization switcher). Pages are modules with mount(container, context) that return an
// optional unmount function, called when the page is left.

import {api, onUnauthenticated, setCsrfToken} from '/assets/api.js';
import {h, clear, banner, loadingState} from '/assets/dom.js';
import {mountSignIn} from '/assets/signin.js';
import {mountConfigs} from '/assets/configs.js';
import {mountAudit} from '/assets/audit.js';
import {mountTokens} from '/assets/tokens.js';

const ROUTES = {
  '#/settings/configuration': {title: 'Configuration', mount: mountConfigs, admin: false},
  '#/settings/audit': {title: 'Audit Log', mount: mountAudit, admin: true},
  '#/settings/tokens': {title: 'API Tokens', mount: mountTokens, admin: true},
};
const DEFAULT_ROUTE = '#/settings/configuration';
const SIGN_IN = '#/signin';
// The only thing kept across reloads: which scope a platform admin looked at (an id).
const SCOPE_STORAGE = 'bifrost.scope';

const state = {
  user: null,          // the session's User
  orgs: [],            // [{id, name}] this user may see
  scope: null,         // an org id, or 'global' (platform admins only)
  afterSignIn: null,   // the route asked for before signing in
  signInNotice: null,  // why the sign-in page is shown (session ended)
};

const root = () => document.getElementById('app');
let unmountPage = null;
let renderGeneration = 0;
let frame = null;  // {main, nav links, switcher} while signed in

function isPlatformAdmin() {
  return state.user && state.user.role === 'platform-admin';
}

function isAdmin() {
  return state.user && (state.user.role === 'platform-admin' || state.user.role === 'admin');
}

function orgName(id) {
  const org = state.orgs.find((o) => o.id === id);
  return org ? org.name : id;
}

function scopeLabel() {
  return state.scope === 'global' ? 'Global' : orgName(state.scope);
}

// --- session -------------------------------------------------------------------------

async function startSession(session) {
  state.user = session.user;
  setCsrfToken(session.csrf_token);
  state.orgs = (await api('GET', '/api/v1/orgs')) || [];
  state.orgs.sort((a, b) => a.name.localeCompare(b.name));
  if (isPlatformAdmin()) {
    let saved = null;
    try {
      saved = sessionStorage.getItem(SCOPE_STORAGE);
    } catch {
      saved = null;
    }
    const known = saved === 'global' || state.orgs.some((o) => o.id === saved);
    state.scope = known ? saved : (state.orgs[0] ? state.orgs[0].id : 'global');
  } else {
    state.scope = state.user.org_id || (state.orgs[0] && state.orgs[0].id) || null;
  }
}

function endSession(notice) {
  state.user = null;
  state.orgs = [];
  state.scope = null;
  setCsrfToken(null);
  frame = null;
  state.signInNotice = notice || null;
}

onUnauthenticated(() => {
  if (!state.user) return;
  const here = location.hash;
  endSession('Your session has ended. Sign in again to continue.');
  if (ROUTES[here]) state.afterSignIn = here;
  if (location.hash === SIGN_IN) render();
  else location.hash = SIGN_IN;
});

async function signOut() {
  try {
    await api('POST', '/api/v1/auth/logout', {quiet401: true});
  } catch {
    // The session may already be over; the cookie is cleared by the server either way.
  }
  endSession('You have signed out.');
  state.afterSignIn = null;
  if (location.hash === SIGN_IN) render();
  else location.hash = SIGN_IN;
}

function setScope(scope) {
  state.scope = scope;
  try {
    sessionStorage.setItem(SCOPE_STORAGE, scope);
  } catch {
    // Storage may be disabled; the choice then lasts until a reload.
  }
  render();
}

// --- frame -----------------------------------------------------------------------------

function buildOrgSwitcher() {
  if (isPlatformAdmin()) {
    const select = h('select', {id: 'org-select', class: 'select select-compact',
      onchange: (event) => setScope(event.target.value)},
    state.orgs.map((org) => h('option', {value: org.id}, org.name)),
    h('option', {value: 'global'}, 'Global'));
    select.value = state.scope;
    return h('div', {class: 'org-switch'},
      h('label', {for: 'org-select', class: 'org-switch-label'}, 'Organization'), select);
  }
  if (!state.scope) return h('div', {class: 'org-name'}, h('span', {class: 'muted'}, 'No organization'));
  return h('div', {class: 'org-name'},
    h('span', {class: 'org-switch-label'}, 'Organization'),
    h('strong', {class: 'org-name-value'}, orgName(state.scope)));
}

function buildFrame() {
  const main = h('main', {id: 'main', class: 'content', tabindex: '-1'});
  const links = {};
  const navItem = (route) => {
    const link = h('a', {href: route, class: 'nav-link'}, ROUTES[route].title);
    links[route] = link;
    return h('li', {}, link);
  };
  const nav = h('nav', {class: 'sidenav', 'aria-label': 'Main'},
    h('a', {href: DEFAULT_ROUTE, class: 'nav-section', id: 'nav-settings'},
      h('span', {class: 'nav-icon', 'aria-hidden': 'true'}), 'Settings'),
    h('ul', {class: 'nav-list', 'aria-labelledby': 'nav-settings'},
      navItem('#/settings/configuration'),
      isAdmin() ? navItem('#/settings/audit') : null,
      isAdmin() ? navItem('#/settings/tokens') : null));
  const header = h('header', {class: 'topbar'},
    h('a', {href: DEFAULT_ROUTE, class: 'brand', 'aria-label': 'Bifrost home'},
      h('img', {src: '/assets/logo.svg', alt: '', width: '28', height: '28'}),
      h('span', {class: 'brand-name'}, 'Bifrost')),
    h('div', {class: 'topbar-scope'}, buildOrgSwitcher()),
    h('div', {class: 'topbar-user'},
      h('span', {class: 'user-email', title: state.user.email}, state.user.email),
      h('span', {class: `role-badge role-${state.user.role}`}, state.user.role),
      h('button', {type: 'button', class: 'btn btn-ghost btn-small', onclick: signOut},
        'Sign out')));
  const skip = h('a', {href: '#main', class: 'skip-link', onclick: (event) => {
    event.preventDefault();
    main.focus();
  }}, 'Skip to content');
  const shell = h('div', {class: 'shell'}, skip, header,
    h('div', {class: 'shell-body'}, nav, main));
  return {shell, main, links};
}

// --- routing ---------------------------------------------------------------------------

async function render() {
  const generation = ++renderGeneration;
  // A dialog belongs to the page it was opened on (and a secret typed into it goes with it).
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
  if (unmountPage) {
    try {
      unmountPage();
    } catch (error) {
      console.error(error);
    }
    unmountPage = null;
  }
  const hash = location.hash || DEFAULT_ROUTE;

  if (!state.user) {
    if (hash !== SIGN_IN) {
      if (ROUTES[hash]) state.afterSignIn = hash;
      location.replace(SIGN_IN);  // the hashchange renders the sign-in page
      return;
    }
    frame = null;
    document.title = 'Sign in · Bifrost';
    const container = clear(root());
    unmountPage = mountSignIn(container, {
      notice: state.signInNotice,
      onSignedIn: async (session) => {
        state.signInNotice = null;
        await startSession(session);
        const target = state.afterSignIn || DEFAULT_ROUTE;
        state.afterSignIn = null;
        location.hash = target;
      },
    });
    return;
  }

  const route = ROUTES[hash];
  if (!route) {
    location.replace(DEFAULT_ROUTE);
    return;
  }
  // A fresh frame each time: the switcher and the navigation follow the current state.
  frame = buildFrame();
  clear(root()).append(frame.shell);
  for (const [path, link] of Object.entries(frame.links)) {
    if (path === hash) link.setAttribute('aria-current', 'page');
  }
  document.title = `${route.title} · ${scopeLabel() || 'Bifrost'} · Bifrost`;

  if (route.admin && !isAdmin()) {
    frame.main.append(h('h1', {class: 'page-title'}, route.title),
      banner('warning', 'This page is for administrators of an organization.'));
    return;
  }
  if (!state.scope) {
    frame.main.append(h('h1', {class: 'page-title'}, route.title),
      banner('warning', 'Your account belongs to no organization you can see.'));
    return;
  }
  const context = {
    user: state.user,
    scope: state.scope,
    scopeName: scopeLabel(),
    orgs: state.orgs,
    orgName,
    isPlatformAdmin: isPlatformAdmin(),
    isAdmin: isAdmin(),
    alive: () => generation === renderGeneration,
  };
  unmountPage = route.mount(frame.main, context) || null;
  // Keyboard and screen-reader users land on the new page, not on the old link.
  if (!document.querySelector('dialog[open]')) frame.main.focus({preventScroll: true});
}

async function boot() {
  clear(root()).append(loadingState('Loading Bifrost…'));
  try {
    const session = await api('GET', '/api/v1/auth/session', {quiet401: true});
    await startSession(session);
  } catch (error) {
    if (error.status !== 401) {
      clear(root()).append(h('div', {class: 'boot-error'},
        banner('error', h('strong', {}, 'Bifrost is not reachable. '), error.message,
          h('button', {type: 'button', class: 'btn btn-small banner-action',
            onclick: () => boot()}, 'Retry'))));
      return;
    }
    endSession(null);
  }
  if (!listening) {
    window.addEventListener('hashchange', render);
    listening = true;
  }
  render();
}

let listening = false;
let booted = false;
function bootOnce() {
  if (booted) return;
  booted = true;
  boot();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', bootOnce);
else bootOnce();
