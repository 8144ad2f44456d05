// Reading tables in the browser (CSV with Papa Parse, parquet with hyparquet, ARFF's text format), so the page
// can list the columns, suggest a target, warn about the data and send rows to the predict endpoint.
// The server reads the uploaded file again with its own (bounded) readers: these reads are for display only.

import { parquetMetadata, parquetReadObjects } from '../vendor/hyparquet.min.js';

export const PROFILE_ROWS = 20000; // rows read to profile an upload
const TARGET_NAMES = /^(target|class|label|labels|y|outcome|diagnosis|species|survived|churn|default|response)$/i;
const MAX_DISTINCT = 10000;

export function kindOf(name) {
  const lower = name.toLowerCase();
  if (lower.endsWith('.parquet') || lower.endsWith('.pq')) return 'parquet';
  if (lower.endsWith('.arff')) return 'arff';
  return 'csv';
}

function plain(value) {
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Date) return value.toISOString();
  if (value === undefined || (typeof value === 'number' && Number.isNaN(value))) return null;
  return value;
}

function readCsv(file, maxRows) {
  return new Promise((resolve, reject) => {
    window.Papa.parse(file, {
      header: true, dynamicTyping: true, skipEmptyLines: true, preview: maxRows || 0,
      complete: (result) => {
        const fields = result.meta.fields || [];
        if (!fields.length) reject(new Error('no header row found'));
        else resolve({ columns: fields, rows: result.data });
      },
      error: (err) => reject(new Error(err.message || String(err))),
    });
  });
}

async function readArff(file, maxRows) {
  const text = await file.text();
  const columns = [];
  const lines = text.split(/\r?\n/);
  let i = 0;
  for (; i < lines.length; i++) {
    const line = lines[i].trim();
    const attr = /^@attribute\s+('([^']*)'|"([^"]*)"|(\S+))\s+/i.exec(line);
    if (attr) columns.push(attr[2] ?? attr[3] ?? attr[4]);
    else if (/^@data/i.test(line)) break;
  }
  if (!columns.length || i >= lines.length) throw new Error('no @attribute / @data section found');
  const body = lines.slice(i + 1).filter((l) => l.trim() && !l.trim().startsWith('%'));
  const parsed = window.Papa.parse(body.slice(0, maxRows || undefined).join('\n'),
    { header: false, dynamicTyping: true, quoteChar: "'", skipEmptyLines: true });
  const rows = parsed.data.map((cells) => Object.fromEntries(columns.map((c, j) => [c, cells[j] === '?' ? null : cells[j] ?? null])));
  return { columns, rows };
}

async function readParquet(file, maxRows) {
  const buffer = await file.arrayBuffer();
  const metadata = parquetMetadata(buffer);
  const columns = metadata.schema.slice(1).filter((s) => !s.num_children).map((s) => s.name)
    .filter((name) => !name.startsWith('__index_level_'));
  const rows = await parquetReadObjects({ file: buffer, metadata, columns, rowEnd: maxRows || undefined });
  return { columns, rows: rows.map((row) => Object.fromEntries(columns.map((c) => [c, plain(row[c])]))) };
}

/** {kind, columns, rows} of the first `maxRows` rows (all rows when 0). */
export async function readTable(file, maxRows = PROFILE_ROWS) {
  const kind = kindOf(file.name);
  const reader = { csv: readCsv, arff: readArff, parquet: readParquet }[kind];
  const { columns, rows } = await reader(file, maxRows);
  return { kind, columns, rows };
}

/** Per column: missing values, distinct values (up to MAX_DISTINCT), whether all values are numbers. */
export function profile(table) {
  const columns = table.columns.map((name) => {
    const distinct = new Set();
    let missing = 0;
    let numeric = true;
    for (const row of table.rows) {
      const value = row[name];
      if (value === null || value === undefined || value === '') { missing++; continue; }
      if (typeof value !== 'number') numeric = false;
      if (distinct.size < MAX_DISTINCT) distinct.add(value);
    }
    return { name, missing, distinct: distinct.size, numeric };
  });
  return { rows: table.rows.length, columns };
}

/** The suggested target: a column with a usual target name, else the last column; with the reason. */
export function suggestTarget(prof) {
  const named = prof.columns.find((c) => TARGET_NAMES.test(c.name.trim()));
  if (named) return { column: named.name, reason: `its name, "${named.name}", is a usual name for a target` };
  const last = prof.columns[prof.columns.length - 1];
  return { column: last.name, reason: 'the last column (the usual place of the target)' };
}

/** Warnings about a registered dataset: from its meta-features and, after an upload, its column profile. */
export function datasetWarnings(detail, prof) {
  const mf = detail.meta_features || {};
  const out = [];
  if (detail.n_rows < 100) {
    out.push(['Too few rows', `only ${detail.n_rows} rows: cross-validated scores will be noisy and the ranking of pipelines uncertain.`]);
  }
  const minority = mf['simple.minority_class_ratio'];
  if (detail.task === 'classification' && detail.n_classes && minority !== null && minority !== undefined
      && minority < 0.5 / detail.n_classes) {
    out.push(['Class imbalance', `the smallest class has ${(100 * minority).toFixed(1)} % of the rows (an even split would give `
      + `${(100 / detail.n_classes).toFixed(1)} %); balanced accuracy, the default metric, weighs every class equally.`]);
  }
  const missing = mf['simple.missing_ratio'];
  if (missing) {
    const rowsMissing = mf['simple.rows_with_missing_ratio'];
    out.push(['Missing values', `${(100 * missing).toFixed(1)} % of the cells are missing`
      + (rowsMissing ? `, in ${(100 * rowsMissing).toFixed(1)} % of the rows` : '') + '; the search chooses how to impute them.']);
  }
  for (const c of prof?.columns || []) {
    if (c.name === detail.target || c.numeric) continue;
    if (c.distinct > 50 || (prof.rows >= 20 && c.distinct > 0.5 * prof.rows)) {
      out.push(['High cardinality', `column "${c.name}" has ${c.distinct.toLocaleString('en')} distinct values in `
        + `${prof.rows.toLocaleString('en')} rows (an identifier or free text?); rare categories are grouped, but consider dropping it.`]);
    }
  }
  return out;
}

/** Rows as JSON-safe objects for POST /predict (BigInt to Number, no undefined). */
export function jsonRows(rows) {
  return rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, plain(v)])));
}
