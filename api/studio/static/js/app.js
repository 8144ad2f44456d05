// The studio's entry point: sign-in (when the server has API keys) and the hash router; every page is a URL
// (#/kb, #/upload, #/datasets/42, #/searches/17, #/searches) that can be shared and reloaded.

import { datasetPage } from './dataset.js';
import { kbPage } from './kb.js';
import { searchesPage, searchPage } from './search.js';
import { uploadPage } from './upload.js';
import { alertBox, api, auth, field, h, showError } from './util.js';

const main = document.getElementById('main');
const signOut = document.getElementById('sign-out');
const state = { health: null, cleanup: null, signInMessage: null, rendered: false };

const ROUTES = [
  [/^#?\/?(kb)?$/, 'kb', (m) => kbPage(m)],
  [/^#\/upload$/, 'upload', (m) => uploadPage(m)],
  [/^#\/datasets\/(\d+)$/, 'kb', (m, id) => datasetPage(m, Number(id))],
  [/^#\/searches$/, 'searches', (m) => searchesPage(m)],
  [/^#\/searches\/(\d+)$/, 'searches', (m, id) => searchPage(m, Number(id), state)],
];

function signInPage() {
  const key = h('input', { type: 'password', autocomplete: 'current-password', required: true });
  const message = h('div', { 'aria-live': 'assertive' });
  if (state.signInMessage) message.append(alertBox('error', state.signInMessage));
  const form = h('form', { class: 'stack', novalidate: true },
    field('api-key', 'API key', key, 'One of the server\'s METALEARN_API_KEYS. It is kept in this browser tab only (session storage), never in a URL.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in')), message);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!key.value) { message.replaceChildren(alertBox('error', 'Enter an API key.')); return; }
    auth.set(key.value);
    try {
      await api('/v1/knowledge-base/stats');
      state.signInMessage = null;
      render();
    } catch (err) {
      auth.clear();
      showError(message, err, 'Sign-in failed: ');
    }
  });
  main.append(h('h1', {}, 'Sign in'), h('p', {}, 'This server needs an API key.'), form);
  key.focus();
}

async function render() {
  if (state.cleanup) { state.cleanup(); state.cleanup = null; }
  main.replaceChildren();
  document.title = 'metalearn studio';
  const needsKey = state.health?.auth_required && !auth.key;
  signOut.hidden = !(state.health?.auth_required && auth.key);
  if (needsKey) { signInPage(); return; }
  const hash = location.hash || '#/';
  for (const [pattern, nav, page] of ROUTES) {
    const match = pattern.exec(hash);
    if (!match) continue;
    for (const link of document.querySelectorAll('[data-nav]')) {
      if (link.dataset.nav === nav) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
    }
    if (state.rendered) main.focus();
    state.rendered = true;
    try {
      const cleanup = await page(main, ...match.slice(1).filter((x) => x !== undefined && x !== 'kb'));
      if (typeof cleanup === 'function') state.cleanup = cleanup;
    } catch (err) { showError(main, err); }
    return;
  }
  main.append(h('h1', {}, 'Not found'), h('p', {}, 'No such page. ', h('a', { href: '#/kb' }, 'Go to the knowledge base.')));
}

async function start() {
  try {
    const res = await fetch('/v1/health', { headers: { Accept: 'application/json' } });
    state.health = await res.json();
    if (!res.ok) throw new Error(state.health.detail || `${res.status}`);
  } catch (err) {
    main.replaceChildren(alertBox('error', `The server is not healthy: ${err.message}`));
    return;
  }
  window.addEventListener('hashchange', render);
  window.addEventListener('studio:unauthorized', (event) => {
    if (!state.health.auth_required) return;
    auth.clear();
    state.signInMessage = `The API key was refused (${event.detail}); sign in again.`;
    render();
  });
  signOut.addEventListener('click', () => { auth.clear(); state.signInMessage = null; render(); });
  render();
}

start();
