// A dataset's page: summary, warnings, meta-features, recommended pipelines with their evidence, the dataset on the
// map with lines to its neighbours, and the form that starts a search.

import { mapSection } from './kb.js';
import { datasetWarnings } from './tables.js';
import { alertBox, api, config, field, fmt, h, int, metricLabel, profiles, recent, select, showError, table } from './util.js';

const KEY_FEATURES = [
  ['simple.n_classes', 'classes'], ['simple.minority_class_ratio', 'smallest class share'], ['simple.class_entropy', 'class entropy (normalised)'],
  ['simple.cat_ratio', 'categorical column share'], ['simple.missing_ratio', 'missing cells'], ['simple.rows_with_missing_ratio', 'rows with a missing value'],
  ['simple.log_rows_per_feature', 'log(rows / features)'], ['simple.target_skewness', 'target skewness'],
];

function summarySection(d) {
  const facts = [['task', d.task], ['target', d.target || '–'], ['rows', int(d.n_rows)], ['features', int(d.n_features)],
    ['categorical features', int(d.n_categorical)], ['source', d.source], ['family', d.family || '–']];
  if (d.task === 'classification') facts.splice(2, 0, ['classes', int(d.n_classes)]);
  const mf = d.meta_features || {};
  const key = KEY_FEATURES.filter(([name]) => mf[name] !== undefined);
  const all = Object.entries(mf).sort(([a], [b]) => a.localeCompare(b));
  return h('section', { 'aria-labelledby': 'ds-summary' }, h('h2', { id: 'ds-summary' }, 'Summary'),
    h('div', { class: 'grid' },
      h('dl', { class: 'facts card' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      h('dl', { class: 'facts card' }, key.map(([name, label]) => [h('dt', {}, label), h('dd', {}, fmt(mf[name]))]))),
    h('details', {}, h('summary', {}, `All ${all.length} meta-features (${d.extractor})`),
      table([{ label: 'meta-feature', value: (r) => r[0] }, { label: 'value', num: true, value: (r) => fmt(r[1], 4) }], all, { caption: 'Meta-features' })));
}

function warningsSection(d) {
  const prof = profiles.get(d.id);
  const warnings = datasetWarnings(d, prof);
  const body = warnings.length
    ? alertBox('warn', h('strong', {}, `${warnings.length} warning${warnings.length > 1 ? 's' : ''}`),
      h('ul', { class: 'warnings' }, warnings.map(([title, text]) => h('li', {}, h('strong', {}, `${title}: `), text))))
    : alertBox('ok', 'No warnings: enough rows, no strong class imbalance, no missing values.');
  return h('section', { 'aria-labelledby': 'ds-warnings' }, h('h2', { id: 'ds-warnings' }, 'Checks'), body,
    prof ? null : h('p', { class: 'hint' }, 'Column checks (high cardinality) are made when a file is uploaded from this browser.'));
}

function recommendationCard(r, metric) {
  const config = r.configuration || {};
  const steps = ['imputation:numeric', 'encoding', 'scaling', 'feature_preprocessing', 'class_weight', 'target_transform']
    .filter((k) => config[k] !== undefined && config[k] !== 'none').map((k) => `${k.replace(':', ' ')}: ${config[k]}`);
  const range = r.expected_range ? `${fmt(r.expected_range[0])} – ${fmt(r.expected_range[1])}` : '–';
  return h('li', { class: 'card' },
    h('h3', {}, `${r.rank}. ${r.algorithm}`),
    h('p', { class: 'muted' }, r.source === 'portfolio' ? 'from the global portfolio' : 'from the nearest datasets'),
    h('dl', { class: 'facts' }, h('dt', {}, 'expected'), h('dd', {}, `${fmt(r.expected_score)} ${metric}`),
      h('dt', {}, 'range'), h('dd', {}, range)),
    steps.length ? h('p', {}, steps.join(' · ')) : null,
    r.evidence.length ? h('details', {}, h('summary', {}, `Evidence: ${r.evidence.length} dataset${r.evidence.length > 1 ? 's' : ''}`),
      h('ul', {}, r.evidence.map((e) => h('li', {}, h('a', { href: `#/datasets/${e.dataset_id}` }, e.dataset),
        ` scored ${fmt(e.score)}`, e.distance >= 0 ? ` (distance ${fmt(e.distance)})` : ''))))
      : null,
    h('details', {}, h('summary', {}, 'Configuration'), h('pre', {}, JSON.stringify(config, null, 1))));
}

function recommendationsSection(rec) {
  return h('section', { 'aria-labelledby': 'ds-recs' }, h('h2', { id: 'ds-recs' }, 'Recommended pipelines'),
    rec.far_from_knowledge_base ? alertBox('warn', 'This dataset is far from every dataset of the knowledge base: the global portfolio leads.') : null,
    h('p', { class: 'muted' }, `Measured in ${metricLabel(rec.metric)}. A warm search starts from these.`),
    h('ol', { class: 'cards' }, rec.recommendations.map((r) => recommendationCard(r, rec.metric))),
    h('h3', { style: 'margin-top:1rem' }, 'Nearest datasets'),
    table([{ label: 'dataset', value: (n) => h('a', { href: `#/datasets/${n.dataset_id}` }, n.dataset) },
      { label: 'family', value: (n) => n.family || '–' }, { label: 'distance', num: true, value: (n) => fmt(n.distance) }],
    rec.neighbors, { caption: 'Nearest datasets' }));
}

// The constraints of metalearn.mitigation (the API answers 400 for any other).
const FAIRNESS = [['demographic_parity', 'demographic parity (equal selection rates)'], ['equalized_odds', 'equalized odds (equal error rates)']];

/** Optional fairness mitigation of the final model (classification only): a sensitive column and a constraint. */
function fairnessFields(d) {
  if (d.task !== 'classification') return { block: null, values: () => ({}) };
  const columns = (profiles.get(d.id)?.columns || []).map((c) => c.name).filter((name) => name !== d.target);
  const sensitive = h('input', { type: 'text', autocomplete: 'off', placeholder: 'none', list: 'search-sensitive-columns' });
  const constraint = select(FAIRNESS, FAIRNESS[0][0]);
  const block = h('details', {}, h('summary', {}, 'Fairness (optional)'), h('div', { class: 'row' },
    field('search-sensitive', 'Sensitive column', sensitive, 'Two-class targets: the final model is post-processed so that the groups of this column are treated alike (it stays a feature).'),
    h('datalist', { id: 'search-sensitive-columns' }, columns.map((name) => h('option', { value: name }))),
    field('search-fairness', 'Fairness constraint', constraint)));
  const values = () => (sensitive.value.trim() ? { sensitive: sensitive.value.trim(), fairness: constraint.value } : {});
  return { block, values };
}

function searchForm(d) {
  const metrics = config.metrics[d.task] || [];
  const fairness = fairnessFields(d);
  const strategy = select(config.strategies.map((s) => [s, s]), config.defaults.strategy);
  const trials = h('input', { type: 'number', min: 1, max: 1000, value: config.defaults.n_trials });
  const budget = h('input', { type: 'number', min: 1, step: 1, placeholder: 'none' });
  const metric = select(metrics.map((m) => [m, metricLabel(m)]), metrics[0]);
  const ensemble = h('input', { type: 'number', min: 0, max: 1000, value: config.defaults.ensemble_size });
  const folds = h('input', { type: 'number', min: 2, max: 10, value: config.defaults.folds });
  const trialLimit = h('input', { type: 'number', min: 1, step: 1, placeholder: 'server default' });
  const seed = h('input', { type: 'number', min: 0, value: config.defaults.seed });
  const message = h('div', { 'aria-live': 'assertive' });
  const form = h('form', { class: 'stack', novalidate: true },
    h('div', { class: 'row' },
      field('search-strategy', 'Strategy', strategy, 'warm starts from the recommendations'),
      field('search-trials', 'Trials', trials, 'leave empty to use the time budget only'),
      field('search-budget', 'Time budget (s)', budget, 'optional wall-clock limit'),
      field('search-metric', 'Metric', metric)),
    h('details', {}, h('summary', {}, 'More settings'), h('div', { class: 'row' },
      field('search-ensemble', 'Ensemble size', ensemble, '0: the model is the single best pipeline'),
      field('search-folds', 'Cross-validation folds', folds),
      field('search-trial-limit', 'Seconds per trial', trialLimit),
      field('search-seed', 'Random seed', seed))),
    fairness.block,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Start the search')), message);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { dataset_id: d.id, strategy: strategy.value, metric: metric.value,
      n_trials: trials.value ? Number(trials.value) : null, time_budget: budget.value ? Number(budget.value) : null,
      ensemble_size: Number(ensemble.value || 0), folds: Number(folds.value || config.defaults.folds), seed: Number(seed.value || 0),
      ...fairness.values() };
    if (trialLimit.value) body.trial_time_limit = Number(trialLimit.value);
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      const started = await api('/v1/searches', { method: 'POST', json: body });
      recent.add({ id: started.id, dataset_id: d.id, dataset: d.name, strategy: body.strategy, at: new Date().toISOString() });
      location.hash = `#/searches/${started.id}`;
    } catch (err) { showError(message, err, 'The search could not start: '); button.disabled = false; }
  });
  return h('section', { 'aria-labelledby': 'ds-search' }, h('h2', { id: 'ds-search' }, 'Search'),
    d.stored ? form : alertBox('warn', 'This dataset came with the knowledge base (meta-features and runs only, no table): upload its data to search on it.'));
}

export async function datasetPage(main, id) {
  const head = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  main.append(head);
  let d;
  try { d = await api(`/v1/datasets/${id}`); } catch (err) {
    showError(head, err);
    if (err.status === 404) head.append(h('p', {}, 'Datasets of the shared knowledge base appear on the map and as neighbours; their pages are open to admin keys and to the keys that uploaded them.'));
    return;
  }
  head.replaceChildren(h('h1', {}, d.name), h('p', { class: 'muted' }, `Dataset ${d.id} · ${d.task} · ${int(d.n_rows)} rows × ${int(d.n_features)} features`));
  document.title = `${d.name} · metalearn studio`;
  const recs = h('div', {}, h('p', { class: 'muted' }, 'Finding the nearest datasets…'));
  const mapSlot = h('div', {});
  main.append(warningsSection(d), recs, mapSlot, searchForm(d), summarySection(d));
  try {
    const rec = await api('/v1/recommendations', { method: 'POST', json: { dataset_id: d.id, top: config.defaults.top, k: config.defaults.k } });
    recs.replaceChildren(recommendationsSection(rec));
    mapSlot.replaceChildren(mapSection({ datasetId: d.id, neighbors: rec.neighbors, title: 'This dataset on the map' }));
  } catch (err) {
    showError(recs, err, 'Recommendations: ');
    mapSlot.replaceChildren(mapSection({ datasetId: d.id, title: 'This dataset on the map' }));
  }
}
