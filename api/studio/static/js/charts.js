// Charts with Chart.js (vendored): the meta-feature map and a search's trajectory.

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf',
  '#ff7f0e', '#393b79', '#637939', '#8c6d31', '#843c39', '#7b4173', '#3182bd', '#31a354', '#756bb1', '#e6550d', '#636363'];

function colourOf(key, keys) {
  const i = keys.indexOf(key);
  return PALETTE[(i < 0 ? 0 : i) % PALETTE.length];
}

function pointLabel(p) {
  const parts = [p.name];
  if (p.family && p.family !== p.name) parts.push(`family ${p.family}`);
  if (p.best_algorithm) parts.push(`best: ${p.best_algorithm}${p.best_score !== null && p.best_score !== undefined ? ` (${p.best_score.toFixed(3)})` : ''}`);
  return parts.join(' · ');
}

/**
 * The map of the meta-feature space on `canvas`: one point per dataset, coloured by `colourBy` ('best_algorithm' or
 * 'family'); `query` (an uploaded dataset) as a large marker with lines to `neighbors` ([{dataset_id, distance}]).
 * Clicking a dataset calls onSelect(dataset_id).
 */
export function mapChart(canvas, map, { colourBy = 'best_algorithm', query = null, neighbors = [], onSelect } = {}) {
  const existing = window.Chart.getChart(canvas);
  if (existing) existing.destroy();
  const groups = new Map();
  for (const p of map.points) {
    const key = p[colourBy] || 'unknown';
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push({ x: p.x, y: p.y, id: p.dataset_id, label: pointLabel(p) });
  }
  const keys = [...groups.keys()].sort();
  const datasets = keys.map((key) => ({
    label: key, data: groups.get(key), pointRadius: 4, pointHoverRadius: 7, order: 3,
    backgroundColor: colourOf(key, keys), borderColor: colourOf(key, keys),
  }));
  if (query) {
    const byId = new Map(map.points.map((p) => [p.dataset_id, p]));
    for (const n of neighbors) {
      const p = byId.get(n.dataset_id);
      if (!p) continue;
      datasets.push({
        label: `→ ${p.name}`, neighbor: true, showLine: true, pointRadius: 0, borderWidth: 2.5, borderColor: '#000000', data: [{ x: query.x, y: query.y }, { x: p.x, y: p.y }], order: 2,
      });
    }
    datasets.push({
      label: `${query.name} (this dataset)`, data: [{ x: query.x, y: query.y, label: `${query.name} (this dataset)` }],
      pointStyle: 'rectRot', pointRadius: 11, pointHoverRadius: 13, borderWidth: 2, borderColor: '#000', backgroundColor: '#f0a500', order: 0,
    });
  }
  const variance = map.explained_variance || [];
  const axis = (i) => ({ title: { display: true, text: `component ${i + 1}${variance[i] !== undefined ? ` (${(100 * variance[i]).toFixed(0)} % of variance)` : ''}` } });
  return new window.Chart(canvas, {
    type: 'scatter',
    data: { datasets },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      scales: { x: axis(0), y: axis(1) },
      plugins: {
        legend: { display: colourBy !== 'family', position: 'bottom', labels: { boxWidth: 10, filter: (item, data) => !data.datasets[item.datasetIndex].neighbor } },
        tooltip: { filter: (item) => !item.dataset.neighbor, callbacks: { label: (ctx) => ctx.raw.label || '' } },
      },
      onHover: (event, elements) => { event.native.target.style.cursor = elements.some((e) => event.chart.data.datasets[e.datasetIndex].data[e.index].id) ? 'pointer' : 'default'; },
      onClick: (event, elements, chart) => {
        const hit = elements.map((e) => chart.data.datasets[e.datasetIndex].data[e.index]).find((d) => d.id);
        if (hit && onSelect) onSelect(hit.id);
      },
    },
  });
}

/** The search's trajectory: every trial's score and the best score so far, by trial number. */
export function trajectoryChart(canvas, metric) {
  return new window.Chart(canvas, {
    type: 'scatter',
    data: {
      datasets: [
        { label: 'best so far', data: [], showLine: true, stepped: 'before', borderColor: '#1a4fa0', backgroundColor: '#1a4fa0', pointRadius: 0, borderWidth: 2 },
        { label: 'trial score', data: [], pointRadius: 4, borderColor: '#d62728', backgroundColor: '#d62728' },
      ],
    },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      scales: { x: { title: { display: true, text: 'trial' }, ticks: { precision: 0 } }, y: { title: { display: true, text: metric || 'score' } } },
      plugins: { legend: { position: 'bottom' } },
    },
  });
}

export function updateTrajectory(chart, status, trials) {
  chart.data.datasets[0].data = (status.trajectory || []).filter((p) => p.best_so_far !== null).map((p) => ({ x: p.trial, y: p.best_so_far }));
  chart.data.datasets[1].data = trials.filter((t) => t.score !== null).map((t) => ({ x: t.trial, y: t.score }));
  chart.update();
}
