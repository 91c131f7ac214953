// VAEs: interpolate between the encodings of two images (or, with only a decoder, walk between two seeds).
import { request, timing } from './api.js';
import {
  bump, button, canvasBlob, decodeBitmap, downloadLink, dropTarget, filePicker, h, newSeed, panel, showBlob,
} from './dom.js';

const DEBOUNCE_MS = 250;
const DEFAULT_STEPS = 9;

/** The frames of one interpolation: a large frame chosen with a slider, and the whole strip below it. */
function framesViewer(card, limits) {
  const side = card.image_size;
  const frame = h('canvas', { class: 'frame-canvas', width: side, height: side, role: 'img', 'aria-label': 'Current frame' });
  const ctx = frame.getContext('2d');
  const slider = h('input', { type: 'range', min: 0, max: DEFAULT_STEPS - 1, value: 0, step: 1, disabled: true, class: 'position' });
  const position = h('output', { class: 'position-text' }, 'no frames yet');
  const strip = h('img', { class: 'strip', alt: 'Every frame, left to right' });
  const marker = h('span', { class: 'marker', 'aria-hidden': 'true' });
  const downloadStrip = downloadLink('Download all frames', `${card.name}-frames.png`);
  const steps = h('input', { type: 'number', min: 2, max: Math.min(limits.max_sample, 64), value: DEFAULT_STEPS, class: 'count' });
  let bitmap = null;
  let frames = 0;

  function show(k) {
    if (!bitmap) return;
    ctx.clearRect(0, 0, side, side);
    ctx.drawImage(bitmap, k * side, 0, side, side, 0, 0, side, side);
    const text = `frame ${k + 1} of ${frames}, t = ${(k / (frames - 1)).toFixed(2)}`;
    position.textContent = text;
    slider.setAttribute('aria-valuetext', text);
    frame.setAttribute('aria-label', `Frame ${k + 1} of ${frames}`);
    marker.style.left = `${(100 * k) / frames}%`;
    marker.style.width = `${100 / frames}%`;
  }
  slider.addEventListener('input', () => show(Number(slider.value)));

  const downloadFrame = button('Download frame', async () => {
    const link = h('a', { href: URL.createObjectURL(await canvasBlob(frame)), download: `${card.name}-frame-${Number(slider.value) + 1}.png` });
    link.click();
    URL.revokeObjectURL(link.href);
  }, { disabled: true });

  async function load(blob, count) {
    const next = await decodeBitmap(blob);
    bitmap?.close();
    bitmap = next;
    frames = count;
    slider.max = String(count - 1);
    slider.disabled = false;
    downloadFrame.disabled = false;
    if (Number(slider.value) > count - 1) slider.value = String(count - 1);
    showBlob(strip, blob, downloadStrip);
    show(Number(slider.value));
  }

  const element = h('div', { class: 'frames' },
    h('div', { class: 'frame-view' }, h('div', { class: 'frame' }, frame)),
    h('div', { class: 'frame-controls' },
      h('label', { class: 'stacked' }, h('span', {}, 'Position'), slider),
      position,
      h('div', { class: 'strip-wrap' }, strip, marker),
      h('div', { class: 'toolbar' },
        h('label', { class: 'inline' }, h('span', {}, 'Frames'), steps),
        downloadFrame, downloadStrip)));
  return { element, load, slider, steps };
}

async function interpolate(card, a, b, steps) {
  const result = await request(`v1/models/${encodeURIComponent(card.name)}/interpolate`, {
    body: JSON.stringify({ a, b, steps }),
    type: 'application/json',
  });
  return { result, blob: await result.response.blob(), frames: Number(result.response.headers.get('X-Ganrt-Frames')) };
}

/** A VAE with its encoder: two images, their mean encodings, the frames between them. */
function pairPanel(card, limits) {
  const lead = 'Choose two images (upload, drop or pick below). The slider walks the straight line between their '
    + 'encodings: the frames of model.interpolate(image_a, image_b).';
  const { section, body, status, lane } = panel(card, lead);
  const viewer = framesViewer(card, limits);
  let target = 'a';

  function makeSlot(key) {
    const preview = h('img', { class: 'result', alt: `Image ${key.toUpperCase()}: none chosen` });
    const slot = { key, blob: null, url: null, mu: null, preview };
    const choose = (file) => {
      setSlot(slot, file);
      lane.submit(update);
    };
    slot.element = h('figure', { class: 'slot' },
      h('div', { class: 'frame drop', title: 'Drop an image here' }, preview),
      h('figcaption', {}, h('strong', {}, `Image ${key.toUpperCase()}`), ' ',
        filePicker(`Choose ${key.toUpperCase()}…`, choose, `Upload image ${key.toUpperCase()} for ${card.name}`)));
    dropTarget(slot.element, choose, (err) => lane.showError(err));
    return slot;
  }
  const slots = { a: makeSlot('a'), b: makeSlot('b') };

  /** Image chosen for slot: a file (blob) now, or a bundled example (url) that update() fetches. */
  async function setSlot(slot, blob, url = null) {
    slot.blob = blob;
    slot.url = url;
    slot.mu = null;
    if (!blob) return;
    try {
      const bitmap = await decodeBitmap(blob);
      bitmap.close();
      showBlob(slot.preview, blob);
      slot.preview.alt = `Image ${slot.key.toUpperCase()}`;
    } catch {
      slot.preview.removeAttribute('src');
      slot.preview.alt = `Image ${slot.key.toUpperCase()}: not an image this browser can show`;
    }
  }

  async function update() {
    for (const slot of [slots.a, slots.b]) {
      if (slot.url && !slot.blob) {
        const { url } = slot;
        const { response } = await request(url, { method: 'GET' });
        const blob = await response.blob();
        if (slot.url === url) await setSlot(slot, blob, url);
      }
      if (!slot.blob || slot.mu) continue;
      const blob = slot.blob;
      const { response } = await request(`v1/models/${encodeURIComponent(card.name)}/encode`, {
        body: blob,
        type: blob.type || undefined,
      });
      const { mu } = await response.json();
      if (slot.blob === blob) slot.mu = mu;
    }
    if (!slots.a.mu || !slots.b.mu) {
      status.textContent = `Choose image ${slots.a.mu ? 'B' : 'A'} to see the frames between them.`;
      return;
    }
    const { result, blob, frames } = await interpolate(card, slots.a.mu, slots.b.mu, Number(viewer.steps.value));
    await viewer.load(blob, frames);
    status.textContent = `${frames} frames · ${timing(result)} · ${card.backend} on ${card.device}`;
    bump(section);
  }

  const pickFor = h('select', { class: 'pick-target', 'aria-label': 'Which image a picked example replaces' },
    h('option', { value: 'a' }, 'as A'), h('option', { value: 'b' }, 'as B'));
  pickFor.addEventListener('change', () => {
    target = pickFor.value;
  });

  const gallery = card.examples.map((url, i) => h('button', {
    type: 'button',
    class: 'thumb',
    'aria-label': `Use example ${i + 1}`,
    onclick: () => {
      setSlot(slots[target], null, url);
      target = target === 'a' ? 'b' : 'a';
      pickFor.value = target;
      lane.submit(update);
    },
  }, h('img', { src: url, alt: '' })));

  viewer.steps.addEventListener('input', () => lane.schedule(update, DEBOUNCE_MS));
  body.append(
    h('div', { class: 'pair' }, slots.a.element, slots.b.element),
    gallery.length ? h('div', { class: 'toolbar gallery', role: 'group', 'aria-label': `Example images for ${card.name}` },
      h('span', { class: 'note' }, 'Pick an example'), pickFor, gallery) : null,
    viewer.element,
  );
  if (card.examples.length >= 2) {
    setSlot(slots.a, null, card.examples[0]);
    setSlot(slots.b, null, card.examples[1]);
    target = 'a';
    lane.submit(update);
  } else {
    status.textContent = 'Choose two images to see the frames between them.';
  }
  return section;
}

/** Only a decoder is served: walk from the latent of one seed to the next (model.interpolate(s, s + 1)). */
function walkPanel(card, limits) {
  const lead = 'Only the decoder is served: the slider walks from the latent of a seed to that of the next seed, '
    + 'the frames of model.interpolate(seed, seed + 1).';
  const { section, body, status, lane } = panel(card, lead);
  const viewer = framesViewer(card, limits);
  const seed = h('input', { type: 'text', inputmode: 'numeric', pattern: '[0-9]+', value: '0', size: 12, class: 'seed', autocomplete: 'off', spellcheck: 'false' });

  async function update() {
    const text = seed.value.trim();
    if (!/^[0-9]+$/.test(text)) throw new Error(`the seed must be a whole number, got ${JSON.stringify(text)}`);
    const next = (BigInt(text) + 1n).toString(); // seeds can exceed 2**53: count them as strings
    const { result, blob, frames } = await interpolate(card, text, next, Number(viewer.steps.value));
    await viewer.load(blob, frames);
    status.textContent = `seed ${text} → ${next} · ${frames} frames · ${timing(result)} · ${card.backend} on ${card.device}`;
    bump(section);
  }

  seed.addEventListener('input', () => lane.schedule(update, DEBOUNCE_MS));
  seed.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') lane.submit(update);
  });
  viewer.steps.addEventListener('input', () => lane.schedule(update, DEBOUNCE_MS));
  body.append(
    h('div', { class: 'toolbar', role: 'group', 'aria-label': `Walk options for ${card.name}` },
      h('label', { class: 'inline' }, h('span', {}, 'Seed'), seed),
      button('New seed', () => {
        seed.value = newSeed();
        lane.submit(update);
      }, { class: 'primary' }),
      button('Walk on', () => {
        if (/^[0-9]+$/.test(seed.value.trim())) seed.value = (BigInt(seed.value.trim()) + 1n).toString();
        viewer.slider.value = '0';
        lane.submit(update);
      })),
    viewer.element,
  );
  lane.submit(update);
  return section;
}

export function vaePanel(card, limits) {
  return card.encoder ? pairPanel(card, limits) : walkPanel(card, limits);
}

/** An encoder served alone: upload an image, read its mean encoding. */
export function encoderPanel(card) {
  const { section, body, status, lane } = panel(card, 'Upload an image to see its encoding (mu, the mean latent).');
  const preview = h('img', { class: 'result', alt: 'Encoded image' });
  const values = h('output', { class: 'latent' });
  const choose = (file) => lane.submit(async () => {
    const result = await request(`v1/models/${encodeURIComponent(card.name)}/encode`, { body: file, type: file.type || undefined });
    const { mu } = await result.response.json();
    showBlob(preview, file);
    values.textContent = `mu = [${mu.map((v) => v.toFixed(3)).join(', ')}]`;
    status.textContent = `${timing(result)} · ${card.backend} on ${card.device}`;
    bump(section);
  });
  const slot = h('figure', { class: 'slot' }, h('div', { class: 'frame drop' }, preview),
    h('figcaption', {}, filePicker('Upload image…', choose, `Upload an image for ${card.name}`)));
  dropTarget(slot, choose, (err) => lane.showError(err));
  body.append(h('div', { class: 'pair' }, slot, values));
  return section;
}
