// A search, live: status and progress, trajectory chart and trials table refreshed every second (polling
// GET /v1/searches/{id} and /trials), cancel; then its results.

import { trajectoryChart, updateTrajectory } from './charts.js';
import { resultsSection } from './results.js';
import { alertBox, api, badge, field, fmt, h, isActive, metricLabel, recent, showError, table } from './util.js';

const POLL_MS = 1000;

function trialsTable(trials, best) {
  return table([
    { label: 'trial', num: true, value: (t) => String(t.trial) },
    { label: 'algorithm', value: (t) => t.algorithm },
    { label: 'status', value: (t) => t.status },
    { label: 'score', num: true, value: (t) => fmt(t.score) },
    { label: 'seconds', num: true, value: (t) => fmt(t.seconds, 1) },
    { label: 'budget', num: true, value: (t) => fmt(t.budget, 2) },
    { label: 'origin', value: (t) => t.origin },
  ], [...trials].reverse(), { caption: 'Trials, newest first', rowClass: (t) => (t.trial === best ? 'best' : null) });
}

function progressOf(status) {
  if (status.n_trials) return { value: status.trials_done, max: status.n_trials, text: `${status.trials_done} of ${status.n_trials} trials` };
  if (status.time_budget && status.started_at) {
    const elapsed = Math.min(status.time_budget, (Date.now() - Date.parse(status.started_at)) / 1000);
    return { value: elapsed, max: status.time_budget, text: `${status.trials_done} trials, ${elapsed.toFixed(0)} of ${status.time_budget} s` };
  }
  return { value: null, max: 1, text: `${status.trials_done} trials` };
}

export async function searchPage(main, id, { health }) {
  const head = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const live = h('div', { 'aria-live': 'polite', id: 'search-live' });
  const controls = h('div', { class: 'actions' });
  const canvas = h('canvas', { role: 'img', 'aria-label': 'Trajectory: score of every trial and best score so far, by trial number' });
  const trialsBox = h('div', {});
  const results = h('div', {});
  main.append(head, controls, live,
    h('section', { 'aria-labelledby': 'search-trajectory' }, h('h2', { id: 'search-trajectory' }, 'Trajectory'), h('div', { class: 'chart-box small' }, canvas)),
    h('section', { 'aria-labelledby': 'search-trials' }, h('h2', { id: 'search-trials' }, 'Trials'), trialsBox), results);
  let chart = null;
  let timer = null;
  let stopped = false;
  let lastCount = -1;
  let dataset = null;

  const cancel = async (button) => {
    button.disabled = true;
    try {
      const answer = await api(`/v1/searches/${id}`, { method: 'DELETE' });
      controls.replaceChildren(alertBox('ok', answer.detail));
    } catch (err) { showError(controls, err, 'Cancel: '); }
  };

  const poll = async () => {
    timer = null;
    let status;
    let trials;
    try {
      [status, { trials }] = await Promise.all([api(`/v1/searches/${id}`), api(`/v1/searches/${id}/trials`)]);
    } catch (err) {
      showError(live, err);
      if (err.status === 0 && !stopped) timer = setTimeout(poll, 3 * POLL_MS);
      return;
    }
    if (stopped) return;
    if (!dataset) {
      try { dataset = await api(`/v1/datasets/${status.dataset_id}`); } catch { dataset = { name: `dataset ${status.dataset_id}` }; }
      document.title = `Search ${id} · metalearn studio`;
    }
    head.replaceChildren(h('h1', {}, `Search ${id}`),
      h('p', {}, badge(status.status), ' ', `${status.strategy} search on `, h('a', { href: `#/datasets/${status.dataset_id}` }, dataset.name),
        ` · ${metricLabel(status.metric)}`, status.cancel_requested && isActive(status.status) ? ' · stopping after the trial in progress' : ''));
    const active = isActive(status.status);
    if (active && !controls.querySelector('button') && !status.cancel_requested) {
      const button = h('button', { type: 'button', class: 'danger', onclick: () => cancel(button) }, 'Cancel the search');
      controls.replaceChildren(button);
    } else if (!active) controls.replaceChildren();
    const p = progressOf(status);
    const bar = h('progress', { max: p.max, 'aria-label': 'Search progress' });
    if (p.value !== null) bar.value = p.value;
    live.replaceChildren(...[h('p', {}, p.text, status.best ? ` · best so far ${fmt(status.best.score)} (${status.best.algorithm}, trial ${status.best.trial})` : ''),
      active ? bar : null, status.error ? alertBox('error', status.error) : null].filter(Boolean));
    if (!chart) chart = trajectoryChart(canvas, status.metric);
    if (trials.length !== lastCount || !active) {
      lastCount = trials.length;
      updateTrajectory(chart, status, trials);
      trialsBox.replaceChildren(trials.length ? trialsTable(trials, status.best?.trial) : h('p', { class: 'muted' }, status.status === 'queued' ? 'Waiting for a worker…' : 'No trial finished yet.'));
    }
    if (active) timer = setTimeout(poll, POLL_MS);
    else results.replaceChildren(resultsSection(status, trials, health.limits || {}));
  };
  await poll();
  return () => { stopped = true; if (timer) clearTimeout(timer); };
}

export function searchesPage(main) {
  const input = h('input', { type: 'number', min: 1, autocomplete: 'off' });
  const form = h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); if (input.value) location.hash = `#/searches/${Number(input.value)}`; } },
    field('open-search', 'Search id', input), h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Open')));
  const items = recent.list();
  main.append(h('h1', {}, 'Searches'), h('p', {}, 'Searches started from this browser; any search can be opened by its id.'), form,
    items.length ? table([
      { label: 'search', value: (s) => h('a', { href: `#/searches/${s.id}` }, `Search ${s.id}`) },
      { label: 'dataset', value: (s) => h('a', { href: `#/datasets/${s.dataset_id}` }, s.dataset) },
      { label: 'strategy', value: (s) => s.strategy },
      { label: 'started', value: (s) => new Date(s.at).toLocaleString() },
    ], items, { caption: 'Recent searches' }) : h('p', { class: 'muted' }, 'No search started from this browser yet.'));
}
