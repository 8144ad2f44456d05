// The upload page: drop or choose a table, pick the target (suggested), upload it to POST /v1/datasets.

import { profile, readTable, suggestTarget } from './tables.js';
import { alertBox, api, field, h, int, profiles, select, showError } from './util.js';

export function uploadPage(main) {
  const input = h('input', { type: 'file', accept: '.csv,.txt,.data,.parquet,.pq,.arff' });
  const zone = h('div', { class: 'dropzone' },
    h('p', {}, 'Drop a CSV, parquet or ARFF file here, or choose one:'),
    field('upload-file', 'Table file', input, 'CSV (UTF-8, header row), parquet or ARFF; the target is one of its columns.'));
  const details = h('div', {});
  const message = h('div', { id: 'upload-message', 'aria-live': 'assertive' });
  const form = h('form', { class: 'stack', novalidate: true }, zone, details, message);
  let file = null;
  let prof = null;

  const choose = async (chosen) => {
    file = chosen;
    prof = null;
    message.replaceChildren();
    details.replaceChildren(h('p', { class: 'muted' }, `Reading ${file.name}…`));
    let control;
    let hint;
    try {
      prof = profile(await readTable(file));
      const suggestion = suggestTarget(prof);
      control = select(prof.columns.map((c) => [c.name, `${c.name} (${c.numeric ? 'numeric' : 'text'}, ${int(c.distinct)} distinct)`]), suggestion.column);
      hint = `Suggested: ${suggestion.column}, ${suggestion.reason}.`;
    } catch (err) {
      control = h('input', { type: 'text', required: true, autocomplete: 'off' });
      hint = `The browser could not read the columns (${err.message}); type the target column's name and the server will check the file.`;
    }
    const stem = file.name.replace(/\.[^.]+$/, '');
    details.replaceChildren(
      h('p', {}, h('strong', {}, file.name), ` · ${(file.size / 1024).toFixed(1)} KiB`,
        prof ? ` · ${prof.columns.length} columns${prof.rows ? `, ${int(prof.rows)} rows read` : ''}` : ''),
      field('upload-target', 'Target column', control, hint),
      h('div', { class: 'row' },
        field('upload-name', 'Dataset name', h('input', { type: 'text', value: stem, maxlength: 255, autocomplete: 'off' })),
        field('upload-task', 'Task', select([['', 'detect from the target'], ['classification', 'classification'], ['regression', 'regression']], ''))),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Upload and analyse')));
  };

  input.addEventListener('change', () => { if (input.files.length) choose(input.files[0]); });
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    if (e.dataTransfer.files.length) choose(e.dataTransfer.files[0]);
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!file) { message.replaceChildren(alertBox('error', 'Choose a file first.')); return; }
    const target = form.querySelector('#upload-target').value.trim();
    if (!target) { message.replaceChildren(alertBox('error', 'Give the target column.')); return; }
    const data = new FormData();
    data.append('file', file, file.name);
    data.append('target', target);
    const name = form.querySelector('#upload-name').value.trim();
    if (name) data.append('name', name);
    const task = form.querySelector('#upload-task').value;
    if (task) data.append('task', task);
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    message.replaceChildren(h('p', {}, 'Uploading and extracting meta-features…'), h('progress', { 'aria-label': 'Uploading' }));
    try {
      const created = await api('/v1/datasets', { method: 'POST', form: data });
      if (prof) profiles.set(created.id, prof);
      location.hash = `#/datasets/${created.id}`;
    } catch (err) {
      showError(message, err, `${file.name} was refused: `);
      button.disabled = false;
    }
  });

  main.append(h('h1', {}, 'Upload a dataset'),
    h('p', {}, 'The table is checked, its meta-features are extracted, and the nearest datasets of the knowledge base give the pipelines to try first.'),
    form);
}
