// Results of a finished search: leaderboard, ensemble, model download, the model report, predictions on a file.

import { jsonRows, readTable } from './tables.js';
import { alertBox, api, field, fmt, h, int, saveBlob, select, showError, table } from './util.js';

const PREDICT_ROWS_CAP = 200000; // rows read from a file to predict in the browser

function leaderboard(status, trials) {
  const ok = trials.filter((t) => t.status === 'success' && t.score !== null).sort((a, b) => b.score - a.score || a.trial - b.trial);
  const best = status.best ? status.best.trial : null;
  return h('section', { 'aria-labelledby': 'res-leaderboard' }, h('h2', { id: 'res-leaderboard' }, 'Leaderboard'),
    status.ensemble ? h('p', {}, `The model is an ensemble of ${status.ensemble.members.length} pipelines, out-of-fold score ${fmt(status.ensemble.oof_score)}.`) : null,
    ok.length ? table([
      { label: 'rank', num: true, value: (t) => String(ok.indexOf(t) + 1) },
      { label: 'trial', num: true, value: (t) => String(t.trial) },
      { label: 'algorithm', value: (t) => t.algorithm },
      { label: 'score', num: true, value: (t) => fmt(t.score) },
      { label: '± std', num: true, value: (t) => fmt(t.std) },
      { label: 'seconds', num: true, value: (t) => fmt(t.seconds, 1) },
      { label: 'origin', value: (t) => t.origin },
    ], ok.slice(0, 20), { caption: 'Leaderboard', rowClass: (t) => (t.trial === best ? 'best' : null) })
      : h('p', {}, 'No successful trial.'));
}

async function downloadModel(id, out) {
  out.replaceChildren(h('p', {}, 'Downloading the model…'));
  try {
    const res = await api(`/v1/searches/${id}/model`, { raw: true, accept: 'application/octet-stream' });
    saveBlob(await res.blob(), `metalearn-search-${id}.joblib`);
    out.replaceChildren(alertBox('ok', `Saved metalearn-search-${id}.joblib (a signed model file: load it with metalearn predict).`));
  } catch (err) { showError(out, err); }
}

function fairnessSection(f) {
  const rows = [['balanced accuracy', 'balanced_accuracy'], ['accuracy', 'accuracy'],
    ['demographic parity difference', 'demographic_parity_difference'], ['equalized odds difference', 'equalized_odds_difference']];
  return h('section', { 'aria-labelledby': 'res-fairness' }, h('h2', { id: 'res-fairness' }, 'Fairness mitigation'),
    h('p', {}, `The model was post-processed for ${f.constraint.replace('_', ' ')} on ${f.sensitive} (${f.evaluated_on}).`),
    table([{ label: 'figure', value: (r) => r[0] }, { label: 'before', num: true, value: (r) => fmt(f.before[r[1]]) },
      { label: 'after', num: true, value: (r) => fmt(f.after[r[1]]) }], rows, { caption: 'Fairness before and after mitigation' }));
}

function reportSection(status) {
  const id = status.id;
  const mitigated = status.settings?.fairness?.sensitive || '';
  const choices = (status.columns || []).map((c) => [c, c]);
  const sensitive = select(mitigated ? choices : [['', 'none (no fairness section)'], ...choices], mitigated);
  const out = h('div', { 'aria-live': 'polite' });
  let opened = false;
  const show = async () => {
    button.disabled = true;
    sensitive.disabled = true;
    opened = true;
    const column = sensitive.value;
    out.replaceChildren(h('p', {}, 'Building the report (metrics, confusion matrix, calibration, explanations, fairness): this can take a minute…'),
      h('progress', { 'aria-label': 'Building the report' }));
    try {
      const query = column ? `?sensitive=${encodeURIComponent(column)}` : '';
      const res = await api(`/v1/searches/${id}/report${query}`, { raw: true, accept: 'text/html' });
      const html = await res.text();
      const frame = h('iframe', { class: 'report', title: `Model report of search ${id}`, sandbox: '' });
      frame.srcdoc = html;
      const name = `metalearn-report-${id}${column ? `-${column.replace(/[^\w.-]+/g, '_')}` : ''}.html`;
      out.replaceChildren(h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => saveBlob(new Blob([html], { type: 'text/html' }), name) }, 'Download the report (HTML)')),
      frame);
    } catch (err) { showError(out, err, 'Report: '); button.disabled = false; }
    sensitive.disabled = false;
  };
  sensitive.addEventListener('change', () => { if (opened) show(); });
  const button = h('button', { type: 'button', class: 'primary', onclick: show }, 'Open the model report');
  return h('section', { 'aria-labelledby': 'res-report' }, h('h2', { id: 'res-report' }, 'Model report'),
    h('p', { class: 'muted' }, 'Evaluation, explanations and the search itself; with a sensitive column, metrics per group and the demographic-parity and equalized-odds differences.'),
    choices.length ? field('report-sensitive', 'Sensitive column', sensitive, mitigated ? 'Preselected: the column the model was made fair for. The report reloads when you choose another.' : 'The report reloads when you choose another column.') : null,
    h('div', { class: 'actions' }, button), out);
}

function predictionsCsv(rows, result) {
  const classes = result.classes || [];
  const out = rows.map((row, i) => {
    const line = { ...row, prediction: result.predictions[i] };
    if (result.probabilities) classes.forEach((c, j) => { line[`probability_${c}`] = result.probabilities[i][j]; });
    return line;
  });
  return window.Papa.unparse(out, { escapeFormulae: true });
}

function predictSection(id, limits) {
  const input = h('input', { type: 'file', accept: '.csv,.txt,.data,.parquet,.pq,.arff' });
  const out = h('div', { 'aria-live': 'polite' });
  const run = async (event) => {
    event.preventDefault();
    if (!input.files.length) { out.replaceChildren(alertBox('error', 'Choose a file to predict.')); return; }
    const file = input.files[0];
    out.replaceChildren(h('p', {}, `Reading ${file.name}…`));
    try {
      const { rows } = await readTable(file, PREDICT_ROWS_CAP);
      if (!rows.length) throw new Error(`${file.name} has no rows`);
      const chunk = Math.max(1, Math.min(limits.max_predict_rows || 1000, 5000));
      const progress = h('progress', { max: rows.length, value: 0, 'aria-label': 'Predicting' });
      out.replaceChildren(h('p', {}, `Predicting ${int(rows.length)} rows…`), progress);
      const merged = { predictions: [], probabilities: [], classes: null };
      for (let start = 0; start < rows.length; start += chunk) {
        const part = await api(`/v1/searches/${id}/predict`, { method: 'POST', json: { rows: jsonRows(rows.slice(start, start + chunk)) } });
        merged.predictions.push(...part.predictions);
        merged.classes = part.classes;
        if (part.probabilities) merged.probabilities.push(...part.probabilities); else merged.probabilities = null;
        progress.value = Math.min(rows.length, start + chunk);
      }
      const csv = predictionsCsv(rows, merged);
      const name = `${file.name.replace(/\.[^.]+$/, '')}-predictions.csv`;
      const counts = {};
      merged.predictions.forEach((p) => { counts[p] = (counts[p] || 0) + 1; });
      out.replaceChildren(alertBox('ok', `Predicted ${int(rows.length)} rows: saved ${name}.`),
        h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => saveBlob(new Blob([csv], { type: 'text/csv' }), name) }, 'Download the predictions again')),
        table([{ label: 'prediction', value: (r) => String(r[0]) }, { label: 'rows', num: true, value: (r) => int(r[1]) }],
          Object.entries(counts).slice(0, 20), { caption: 'Predictions by value' }));
      saveBlob(new Blob([csv], { type: 'text/csv' }), name);
    } catch (err) { showError(out, err, 'Prediction: '); }
  };
  return h('section', { 'aria-labelledby': 'res-predict' }, h('h2', { id: 'res-predict' }, 'Predict'),
    h('form', { class: 'stack', onsubmit: run },
      field('predict-file', 'Table to predict', input, 'CSV, parquet or ARFF with the same feature columns (the target may be missing); the CSV of predictions downloads when done.'),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Predict and download CSV'))),
    out);
}

/** The results block of a finished search. */
export function resultsSection(status, trials, limits) {
  const id = status.id;
  const modelOut = h('div', { 'aria-live': 'polite' });
  const blocks = [leaderboard(status, trials)];
  if (status.model_available) {
    blocks.push(h('section', { 'aria-labelledby': 'res-model' }, h('h2', { id: 'res-model' }, 'Model'),
      h('p', {}, status.best ? `Best pipeline: ${status.best.algorithm}, score ${fmt(status.best.score)}; refitted on all rows.` : ''),
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', onclick: () => downloadModel(id, modelOut) }, 'Download the model')),
      modelOut), status.fairness ? fairnessSection(status.fairness) : null, reportSection(status), predictSection(id, limits));
  } else {
    blocks.push(alertBox('warn', `This search has no model${status.error ? ` (${status.error})` : ''}.`));
  }
  return h('div', {}, blocks);
}
