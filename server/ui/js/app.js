// Loghound's web UI: boot, sign-in state, the page router and the theme.
// Pages: `/` search, `/saved` saved searches, `/alerts` alerts.

import { api, SIGNED_OUT_EVENT } from './api.js';
import { renderAlertsPage } from './alerts.js';
import { toast } from './dom.js';
import { renderSavedPage } from './saved.js';
import { renderSearchPage } from './search.js';
import { renderSignIn } from './signin.js';

const PAGES = { '/': renderSearchPage, '/saved': renderSavedPage, '/alerts': renderAlertsPage };
const THEME_KEY = 'loghound-theme';

const main = document.getElementById('main');
const topbar = document.getElementById('topbar');
let session = null;
let current = null; // {path, page}

function pageName(path) {
  return { '/': 'search', '/saved': 'saved', '/alerts': 'alerts' }[path];
}

function render() {
  const path = window.location.pathname in PAGES ? window.location.pathname : '/';
  if (!session) {
    if (current) current.page.dispose();
    topbar.hidden = true;
    current = { path: null, page: renderSignIn(main, { onSignedIn }) };
    return;
  }
  if (current && current.path === path && current.page.reload) {
    current.page.reload();
    return;
  }
  if (current) current.page.dispose();
  topbar.hidden = false;
  for (const link of topbar.querySelectorAll('nav a')) {
    if (link.dataset.page === pageName(path)) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = { search: 'Search', saved: 'Saved searches', alerts: 'Alerts' }[pageName(path)] + ' · Loghound';
  current = { path, page: PAGES[path](main, { navigate, session }) };
}

// Changes the URL; `render: false` only records it (the page updated itself).
function navigate(url, { replace = false, render: rerender = true } = {}) {
  const target = new URL(url, window.location.origin);
  if (target.href !== window.location.href) {
    if (replace) window.history.replaceState(null, '', target);
    else window.history.pushState(null, '', target);
  }
  if (rerender) {
    if (current && current.path !== target.pathname) {
      current.page.dispose();
      current = null;
    }
    render();
  }
}

function onSignedIn(newSession) {
  session = newSession;
  if (current) current.page.dispose();
  current = null;
  render();
}

// Theme: the system's choice unless the user picked one here.
function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
  const dark = theme ? theme === 'dark' : window.matchMedia('(prefers-color-scheme: dark)').matches;
  document.getElementById('theme-toggle').setAttribute('aria-label', dark ? 'Switch to light theme' : 'Switch to dark theme');
}

function storedTheme() {
  try { return localStorage.getItem(THEME_KEY); } catch { return null; }
}

document.getElementById('theme-toggle').addEventListener('click', () => {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === 'dark'
    : window.matchMedia('(prefers-color-scheme: dark)').matches;
  const next = dark ? 'light' : 'dark';
  try { localStorage.setItem(THEME_KEY, next); } catch { /* private mode */ }
  applyTheme(next);
});

document.getElementById('sign-out').addEventListener('click', async () => {
  try {
    await api('/api/v1/session', { method: 'DELETE' });
  } catch (e) {
    toast(`Sign-out failed: ${e.message}`, { bad: true });
    return;
  }
  session = null;
  render();
});

// In-page links (topbar) without a reload.
topbar.addEventListener('click', (event) => {
  const link = event.target instanceof Element ? event.target.closest('a[href^="/"]') : null;
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(link.getAttribute('href'));
});

window.addEventListener('popstate', () => render());
window.addEventListener(SIGNED_OUT_EVENT, () => {
  if (!session) return;
  session = null;
  toast('Your session ended; sign in again.', { bad: true });
  render();
});

applyTheme(storedTheme());
(async () => {
  try {
    session = await api('/api/v1/session');
  } catch {
    session = null;
  }
  render();
})();
