// DOM helpers shared by the panels.
import { Lane } from './api.js';

/** h('button', {type: 'button', onclick: fn}, 'Text'): attributes set as attributes, on* as listeners. */
export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

export const button = (text, onclick, attributes = {}) => h('button', { type: 'button', onclick, ...attributes }, text);

/** "pix2pix · translate · onnxruntime on cpu · 64×64" */
export function describeModel(card) {
  const [height, width] = card.fixed_size ?? [card.image_size, card.image_size];
  const parts = [card.family, card.task, `${card.backend} on ${card.device}`, `${width}×${height}`];
  if (card.num_classes) parts.push(`${card.num_classes} classes`);
  if (card.latent_dim) parts.push(`latent ${card.latent_dim}`);
  if (card.instances > 1) parts.push(`${card.instances} instances`);
  return parts.join(' · ');
}

/**
 * The frame of every panel: a titled section, a status line (latency, backend) and an error box that the
 * panel's Lane fills. Returns {section, body, status, lane}.
 */
export function panel(card, lead) {
  const id = `model-${card.name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const status = h('p', { class: 'status', role: 'status' });
  const errorBox = h('p', { class: 'error', role: 'alert', hidden: true });
  const body = h('div', { class: 'panel-body' });
  const section = h(
    'section',
    { class: 'panel', id, 'aria-labelledby': `${id}-title`, 'data-model': card.name, 'data-task': card.task },
    h('header', { class: 'panel-head' },
      h('h2', { id: `${id}-title` }, card.name),
      h('p', { class: 'badges' }, describeModel(card)),
      h('p', { class: 'lead' }, lead)),
    body,
    errorBox,
    status,
  );
  return { section, body, status, lane: new Lane(section, errorBox) };
}

/** A file input that looks like a button; the input stays focusable (keyboard) and receives the file. */
export function filePicker(text, onFile, label) {
  const input = h('input', { type: 'file', class: 'visually-hidden', accept: 'image/*', 'aria-label': label });
  input.addEventListener('change', () => {
    const [file] = input.files;
    input.value = '';
    if (file) onFile(file);
  });
  return h('label', { class: 'button file-picker' }, input, h('span', { 'aria-hidden': 'true' }, text));
}

/** Accept a file dropped on target (drag and drop from the desktop). */
export function dropTarget(target, onFile, onError) {
  const leave = () => target.classList.remove('dragging');
  target.addEventListener('dragover', (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    target.classList.add('dragging');
  });
  target.addEventListener('dragleave', leave);
  target.addEventListener('drop', (event) => {
    event.preventDefault();
    leave();
    const [file] = event.dataTransfer.files;
    if (file) onFile(file);
    else onError(new Error('drop an image file here (PNG or JPEG)'));
  });
}

/** Decode an image without colour management, so its pixels reach the canvas unchanged. */
export function decodeBitmap(blob) {
  return createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
}

export function canvasBlob(canvas) {
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('the canvas could not be encoded'))), 'image/png');
  });
}

/** Show blob in img and offer it through the download link; the previous object URL is released. */
export function showBlob(img, blob, download) {
  const previous = img.dataset.url;
  const url = URL.createObjectURL(blob);
  img.dataset.url = url;
  img.src = url;
  if (download) {
    download.href = url;
    download.removeAttribute('aria-disabled');
  }
  if (previous) URL.revokeObjectURL(previous);
}

/** A link styled as a button that downloads name; inert until showBlob gives it something. */
export const downloadLink = (text, name) => h('a', { class: 'button', download: name, 'aria-disabled': 'true' }, text);

/** Bump the panel's output counter (tests and assistive tools can tell a new result arrived). */
export function bump(section) {
  section.dataset.outputs = String(Number(section.dataset.outputs ?? 0) + 1);
}

/** Show a small model output at the largest whole-number zoom within maxWidth x maxHeight CSS pixels. */
export function zoomToFit(img, maxWidth, maxHeight) {
  img.addEventListener('load', () => {
    const scale = Math.floor(Math.min(maxWidth / img.naturalWidth, maxHeight / img.naturalHeight));
    img.style.width = `${img.naturalWidth * Math.max(1, scale)}px`;
  });
}

/** A random seed in 0..2**31-1, like `ganrt sample` draws when none is given. */
export function newSeed() {
  return String(crypto.getRandomValues(new Uint32Array(1))[0] >>> 1);
}
