// The page of ganrt serve: one panel per served model, fitted to its task.
import { describe, request } from './api.js';
import { h } from './dom.js';
import { samplerPanel } from './sampler.js';
import { translatorPanel } from './translator.js';
import { encoderPanel, vaePanel } from './vae.js';

function panelFor(card, limits) {
  if (card.task === 'translate') return translatorPanel(card);
  if (card.task === 'encode') return encoderPanel(card);
  if (card.family === 'vae') return vaePanel(card, limits);
  return samplerPanel(card, limits);
}

async function main() {
  const root = document.getElementById('models');
  const summary = document.getElementById('summary');
  const nav = document.getElementById('model-nav');
  let listing;
  try {
    const { response } = await request('v1/models', { method: 'GET' });
    listing = await response.json();
  } catch (err) {
    summary.textContent = 'The list of models could not be loaded.';
    root.append(h('p', { class: 'error', role: 'alert' }, describe(err)));
    return;
  }
  const { models, limits } = listing;
  summary.textContent = models.length === 1
    ? 'One model is served. Try it below.'
    : `${models.length} models are served. Try them below.`;
  for (const card of models) {
    let section;
    try {
      section = panelFor(card, limits);
    } catch (err) {
      section = h('section', { class: 'panel', 'data-model': card.name },
        h('h2', {}, card.name), h('p', { class: 'error', role: 'alert' }, describe(err)));
    }
    root.append(section);
    nav.append(h('li', {}, h('a', { href: `#${section.id}` }, card.name)));
  }
  document.body.dataset.ready = 'true';
}

main();
