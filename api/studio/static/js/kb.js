// The knowledge-base page: counts, the map of the meta-feature space and the searchable table of datasets.

import { mapChart } from './charts.js';
import { api, field, fmt, h, int, select, showError, table } from './util.js';

function statCard(value, label) {
  return h('div', { class: 'card' }, h('p', { class: 'stat' }, int(value)), h('p', { class: 'stat-label' }, label));
}

function statsSection(stats) {
  const bySource = Object.entries(stats.by_source || {});
  const byTask = Object.entries(stats.by_task || {});
  return h('section', { 'aria-labelledby': 'kb-counts' },
    h('h2', { id: 'kb-counts' }, 'Contents'),
    h('div', { class: 'grid' },
      statCard(stats.datasets, 'datasets'), statCard(stats.runs, 'runs (trials)'),
      statCard(stats.configurations, 'pipeline configurations'), statCard(stats.searches, 'searches')),
    h('div', { class: 'grid', style: 'margin-top:1rem' },
      table([{ label: 'source', value: (r) => r[0] }, { label: 'datasets', num: true, value: (r) => int(r[1].datasets) },
        { label: 'runs', num: true, value: (r) => int(r[1].runs) }], bySource, { caption: 'By source' }),
      byTask.length ? table([{ label: 'task', value: (r) => r[0] }, { label: 'datasets', num: true, value: (r) => int(r[1].datasets) },
        { label: 'runs', num: true, value: (r) => int(r[1].runs) }], byTask, { caption: 'By task' }) : null));
}

/** The map section; `options.query`/`options.neighbors` highlight a dataset. Returns the section element. */
export function mapSection({ datasetId = null, neighbors = [], title = 'Map of the meta-feature space' } = {}) {
  const canvas = h('canvas', { role: 'img', 'aria-label': 'Scatter plot of the datasets of the knowledge base by their meta-features; hover for names, click to open one' });
  const status = h('div', { 'aria-live': 'polite' });
  const colour = select([['best_algorithm', 'best algorithm'], ['family', 'family']], 'best_algorithm');
  const task = select([['classification', 'classification'], ['regression', 'regression']], 'classification');
  let map = null;
  const draw = () => {
    if (!map) return;
    mapChart(canvas, map, { colourBy: colour.value, query: map.query, neighbors, onSelect: (id) => { location.hash = `#/datasets/${id}`; } });
  };
  const load = async () => {
    status.replaceChildren(h('p', { class: 'muted' }, 'Projecting the meta-features…'));
    try {
      const params = datasetId ? `dataset_id=${datasetId}` : `task=${task.value}`;
      map = await api(`/v1/knowledge-base/map?${params}`);
      status.replaceChildren(h('p', { class: 'muted' }, map.points.length
        ? `${map.points.length} datasets (${map.task}); each point is a dataset placed by a 2-D projection (PCA) of the scaled meta-features the neighbour search compares: nearby points are similar datasets.`
        : `No ${map.task} datasets with runs in the knowledge base yet.`));
      draw();
    } catch (err) { showError(status, err, 'Map: '); }
  };
  colour.addEventListener('change', draw);
  task.addEventListener('change', load);
  const controls = h('div', { class: 'row' }, field(`map-colour-${datasetId || 'kb'}`, 'Colour by', colour),
    datasetId ? null : field('map-task', 'Task', task));
  load();
  return h('section', { 'aria-labelledby': `map-title-${datasetId || 'kb'}` },
    h('h2', { id: `map-title-${datasetId || 'kb'}` }, title), controls, status, h('div', { class: 'chart-box' }, canvas));
}

function datasetsSection() {
  const search = h('input', { type: 'search', placeholder: 'name, family or source', autocomplete: 'off' });
  const task = select([['', 'all tasks'], ['classification', 'classification'], ['regression', 'regression']], '');
  const out = h('div', { 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading datasets…'));
  let rows = [];
  const columns = [
    { label: 'name', value: (d) => h('a', { href: `#/datasets/${d.id}` }, d.name) },
    { label: 'family', value: (d) => d.family || '–' },
    { label: 'rows × features', num: true, value: (d) => `${int(d.n_rows)} × ${int(d.n_features)}` },
    { label: 'classes', num: true, value: (d) => int(d.n_classes) },
    { label: 'source', value: (d) => d.source },
    { label: 'task', value: (d) => d.task },
    { label: 'best score', num: true, value: (d) => (d.best_score === null ? '–' : `${fmt(d.best_score)}`) },
    { label: 'best pipeline', value: (d) => d.best_pipeline || '–' },
  ];
  const render = () => {
    const needle = search.value.trim().toLowerCase();
    const shown = rows.filter((d) => (!task.value || d.task === task.value)
      && (!needle || [d.name, d.family, d.source].some((v) => (v || '').toLowerCase().includes(needle))));
    out.replaceChildren(h('p', { class: 'muted' }, `${shown.length} of ${rows.length} datasets; best score in the task's default metric (balanced accuracy or R²).`,
      rows.length ? '' : ' With API keys this table lists the datasets your key uploaded (an admin key sees all); the counts and the map cover the whole knowledge base.'),
      table(columns, shown.slice(0, 1000), { caption: 'Datasets of the knowledge base' }));
  };
  search.addEventListener('input', render);
  task.addEventListener('change', render);
  api('/v1/knowledge-base/datasets?limit=5000').then((body) => { rows = body.datasets; render(); })
    .catch((err) => showError(out, err));
  return h('section', { 'aria-labelledby': 'kb-datasets' }, h('h2', { id: 'kb-datasets' }, 'Datasets'),
    h('div', { class: 'row' }, field('dataset-filter', 'Search datasets', search), field('dataset-task', 'Task', task)), out);
}

export async function kbPage(main) {
  main.append(h('h1', {}, 'Knowledge base'),
    h('p', {}, 'Every dataset metalearn has seen, with its meta-features and the pipelines tried on it. ',
      h('a', { href: '#/upload' }, 'Upload a dataset'), ' to get recommendations from the nearest ones and start a search.'));
  const counts = h('div', {}, h('p', { class: 'muted' }, 'Loading counts…'));
  main.append(counts, mapSection(), datasetsSection());
  try { counts.replaceChildren(statsSection(await api('/v1/knowledge-base/stats'))); } catch (err) { showError(counts, err); }
}
