// Samplers (DCGAN, CGAN): a seeded grid of samples; class-conditional models get one row per class or a class.
import { request, timing } from './api.js';
import { bump, button, downloadLink, h, newSeed, panel, showBlob, zoomToFit } from './dom.js';

const DEBOUNCE_MS = 250;

export function samplerPanel(card, limits) {
  const classes = card.num_classes;
  const maxSample = limits.max_sample;
  const rowsFit = classes > 0 && classes <= maxSample;
  const lead = classes
    ? 'Samples of every class (one row each) or of one class. A seed gives the same images as ganrt sample --seed.'
    : 'A grid of samples. A seed gives the same images as ganrt sample --seed.';
  const { section, body, status, lane } = panel(card, lead);

  const seed = h('input', {
    type: 'text', inputmode: 'numeric', pattern: '[0-9]*', value: '0', size: 12, spellcheck: 'false',
    autocomplete: 'off', class: 'seed',
  });
  const count = h('input', {
    type: 'number', min: 1, max: maxSample, class: 'count',
    value: classes && rowsFit ? Math.min(8, Math.floor(maxSample / classes)) : Math.min(16, maxSample),
  });
  const countLabel = h('span', {});
  const picker = classes
    ? h('select', { class: 'classes' },
      h('option', { value: 'rows', disabled: !rowsFit }, rowsFit ? 'One row per class' : 'One row per class (above --max-sample)'),
      Array.from({ length: classes }, (_, c) => h('option', { value: String(c) }, `Class ${c}`)))
    : null;
  if (picker && !rowsFit) picker.value = '0';
  const grid = h('img', { class: 'result grid', alt: `Samples of ${card.name}` });
  zoomToFit(grid, 540, 540);
  const rowLabels = h('ol', { class: 'row-labels', 'aria-hidden': 'true', hidden: true });
  const download = downloadLink('Download PNG', `${card.name}-samples.png`);
  const command = h('code', { class: 'cli' });

  function currentQuery() {
    const n = Number(count.value);
    const query = { n };
    const text = seed.value.trim();
    if (text) query.seed = text;
    const mode = picker?.value;
    if (mode === 'rows') {
      query.n = n * classes;
      query.labels = Array.from({ length: classes }, (_, c) => Array(n).fill(c)).flat().join(',');
      query.nrow = n;
    } else if (mode !== undefined) {
      query.labels = Array(n).fill(mode).join(','); // the query form takes one label per image
    }
    return query;
  }

  function describeCommand(query, usedSeed) {
    const parts = ['ganrt sample', card.name, `-n ${query.n}`, `--seed ${usedSeed}`];
    const mode = picker?.value;
    if (mode === 'rows') parts.push(`--labels ${query.labels}`);
    else if (mode !== undefined) parts.push(`--labels ${mode}`);
    if (query.nrow !== undefined) parts.push(`--nrow ${query.nrow}`);
    command.textContent = `${parts.join(' ')} -o grid.png`;
  }

  async function sample() {
    const query = currentQuery();
    const result = await request(`v1/models/${encodeURIComponent(card.name)}/sample`, { query });
    const usedSeed = result.response.headers.get('X-Ganrt-Seed') ?? query.seed;
    showBlob(grid, await result.response.blob(), download);
    if (!query.seed) seed.value = usedSeed; // the server drew one: show it so it can be reproduced
    const rows = query.nrow !== undefined;
    rowLabels.hidden = !rows;
    if (rows) {
      rowLabels.replaceChildren(...Array.from({ length: classes }, (_, c) => h('li', {}, String(c))));
      rowLabels.style.setProperty('--rows', String(classes));
    }
    describeCommand(query, usedSeed);
    status.textContent = `${query.n} images · ${timing(result)} · ${card.backend} on ${card.device}`;
    bump(section);
  }

  function describeCount() {
    countLabel.textContent = picker?.value === 'rows' ? 'Per class' : 'Images';
    count.max = picker?.value === 'rows' ? Math.max(1, Math.floor(maxSample / classes)) : maxSample;
  }

  const again = () => lane.schedule(sample, DEBOUNCE_MS);
  seed.addEventListener('input', again);
  seed.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') lane.submit(sample);
  });
  count.addEventListener('input', again);
  picker?.addEventListener('change', () => {
    describeCount();
    lane.submit(sample);
  });

  body.append(
    h('div', { class: 'toolbar', role: 'group', 'aria-label': `Sampling options for ${card.name}` },
      h('label', { class: 'inline' }, h('span', {}, 'Seed'), seed),
      button('New seed', () => {
        seed.value = newSeed();
        lane.submit(sample);
      }, { class: 'primary' }),
      h('label', { class: 'inline' }, countLabel, count),
      picker && h('label', { class: 'inline' }, h('span', {}, 'Classes'), picker)),
    h('figure', { class: 'samples' },
      h('div', { class: 'grid-wrap' }, rowLabels, h('div', { class: 'frame' }, grid)),
      h('figcaption', {}, command, ' ', download)),
  );
  describeCount();
  lane.submit(sample);
  return section;
}
