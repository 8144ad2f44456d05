// Shared helpers of the studio: the /v1 API client (key in sessionStorage, sent as a Bearer header, never in a
// URL), DOM building with text nodes only (nothing from the server is parsed as HTML), formatting, downloads.

export const config = JSON.parse(document.getElementById('studio-config').textContent);

const KEY = 'metalearn.apiKey';
export const auth = {
  get key() { return sessionStorage.getItem(KEY); },
  set(key) { sessionStorage.setItem(KEY, key); },
  clear() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; this.detail = detail; }
}

/** A /v1 request; resolves to the JSON body (or the Response with raw), rejects with an ApiError. */
export async function api(path, { method = 'GET', json, form, accept = 'application/json', raw = false } = {}) {
  const headers = { Accept: accept };
  if (auth.key) headers.Authorization = `Bearer ${auth.key}`;
  let body;
  if (json !== undefined) { headers['Content-Type'] = 'application/json'; body = JSON.stringify(json); }
  else if (form) body = form;
  let res;
  try {
    res = await fetch(path, { method, headers, body });
  } catch (err) {
    throw new ApiError(0, `cannot reach the server (${err.message})`);
  }
  if (!res.ok) {
    let detail = `${res.status} ${res.statusText}`;
    try {
      const payload = await res.json();
      if (payload && payload.detail) detail = typeof payload.detail === 'string' ? payload.detail : JSON.stringify(payload.detail);
    } catch { /* not JSON */ }
    if (res.status === 401) window.dispatchEvent(new CustomEvent('studio:unauthorized', { detail }));
    throw new ApiError(res.status, detail);
  }
  return raw ? res : res.json();
}

/** An element: h('a', {href: '#/kb', class: 'x', onclick: fn}, 'text', child, [more]). Text is never HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else if (name === 'value') el.value = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function alertBox(kind, ...content) {
  return h('div', { class: `alert ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...content);
}

/** Replace the contents of `el` with an error message (the API's `detail`). */
export function showError(el, err, prefix = '') {
  el.replaceChildren(alertBox('error', `${prefix}${err instanceof ApiError || err instanceof Error ? err.message : err}`));
}

export function field(id, label, control, hint) {
  control.id = id;
  const children = [h('label', { for: id }, label)];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute('aria-describedby', hintId);
    children.push(h('span', { class: 'hint', id: hintId }, hint));
  }
  return h('div', { class: 'field' }, children, control);
}

export function select(options, selected) {
  return h('select', {}, options.map(([value, label]) => h('option', { value, selected: value === selected }, label)));
}

export function fmt(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  if (typeof value !== 'number') return String(value);
  return Math.abs(value) >= 1000 ? value.toLocaleString('en', { maximumFractionDigits: 0 }) : value.toFixed(digits);
}

export const int = (value) => (value === null || value === undefined ? '–' : Number(value).toLocaleString('en'));
export const pct = (value, digits = 1) => (value === null || value === undefined ? '–' : `${(100 * value).toFixed(digits)} %`);

/** A table: columns [{label, value: row => text|Node, num: bool}], optional caption and row class. */
export function table(columns, rows, { caption, rowClass } = {}) {
  return h('div', { class: 'table-wrap' }, h('table', {},
    caption ? h('caption', { class: 'sr-only' }, caption) : null,
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))),
    h('tbody', {}, rows.map((row) => h('tr', { class: rowClass ? rowClass(row) : null },
      columns.map((c) => h('td', { class: c.num ? 'num' : null }, c.value(row))))))));
}

export function badge(status) { return h('span', { class: `badge ${status}` }, status); }

export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h('a', { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30000);
}

// Searches started in this browser, for the Searches page (there is no list endpoint for them).
const SEARCHES = 'metalearn.searches';
export const recent = {
  list() { try { return JSON.parse(localStorage.getItem(SEARCHES)) || []; } catch { return []; } },
  add(entry) {
    const items = [entry, ...this.list().filter((e) => e.id !== entry.id)].slice(0, 50);
    localStorage.setItem(SEARCHES, JSON.stringify(items));
  },
};

// Column profiles of uploads (high-cardinality warnings need the columns), kept for the browser session.
export const profiles = {
  get(id) { try { return JSON.parse(sessionStorage.getItem(`metalearn.profile.${id}`)); } catch { return null; } },
  set(id, profile) { sessionStorage.setItem(`metalearn.profile.${id}`, JSON.stringify(profile)); },
};

export const isActive = (status) => config.active_statuses.includes(status);
export const metricLabel = (metric) => (config.negated.includes(metric) ? `${metric} (negated: higher is better)` : metric);
