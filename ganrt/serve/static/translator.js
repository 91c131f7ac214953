// Translators (Pix2Pix, CycleGAN): draw or upload an input, see the translation beside it as you draw.
import { request, timing } from './api.js';
import {
  bump, button, canvasBlob, decodeBitmap, downloadLink, dropTarget, filePicker, h, panel, showBlob,
} from './dom.js';

// Sent byte for byte: the server decodes them as ganrt.load(model)(image) would see them.
const SERVER_TYPES = new Set(['image/png', 'image/jpeg']);
const UNDO_LIMIT = 40;
const DEBOUNCE_MS = 120;

export function translatorPanel(card) {
  const [nativeH, nativeW] = card.fixed_size ?? [card.image_size, card.image_size];
  const side = Math.max(nativeH, nativeW);
  const otherSizes = card.fixed_size
    ? `other sizes are resized to ${nativeW}×${nativeH} and back`
    : `other sizes are padded to a multiple of ${card.multiple} and cropped back`;
  const lead = `Draw on the ${nativeW}×${nativeH} canvas, or upload or drop an image on it; ${otherSizes}.`;
  const { section, body, status, lane } = panel(card, lead);

  const canvas = h('canvas', {
    class: 'drawing',
    width: nativeW,
    height: nativeH,
    tabindex: 0,
    'aria-label': `Input image of ${card.name}: draw with a mouse, pen or finger; Ctrl+Z undoes`,
  });
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const output = h('img', { class: 'result', alt: `Translation by ${card.name}` });
  const download = downloadLink('Download PNG', `${card.name}-output.png`);
  const inputNote = h('span', { class: 'note' });

  const sizes = { pen: Math.max(1, Math.round(side / 64)), eraser: Math.max(3, Math.round(side / 10)) };
  let tool = 'pen';
  let source = null; // an uploaded PNG/JPEG, sent as is until the canvas is drawn on
  let exampleIndex = 0;
  let last = null;
  const history = [];

  const size = h('input', { type: 'range', min: 1, max: Math.max(8, Math.round(side / 4)), value: sizes.pen });
  const sizeText = h('output', { class: 'size-value' });
  const color = h('input', { type: 'color', value: '#000000', 'aria-label': 'Pen colour' });
  const pen = button('Pen', () => choose('pen'), { class: 'tool', 'aria-pressed': 'true' });
  const eraser = button('Eraser', () => choose('eraser'), { class: 'tool', 'aria-pressed': 'false' });
  const undo = button('Undo', () => undoLast(), { disabled: true });
  const clear = button('Clear', () => {
    snapshot();
    blank(nativeW, nativeH);
    edited();
    lane.submit(translate);
  });
  const example = button('Start from example', () => lane.submit(async () => {
    await drawExample();
    await translate();
  }), { disabled: card.examples.length === 0, class: 'primary' });

  function choose(next) {
    tool = next;
    pen.setAttribute('aria-pressed', String(next === 'pen'));
    eraser.setAttribute('aria-pressed', String(next === 'eraser'));
    size.value = sizes[next];
    showSize();
  }

  function showSize() {
    size.setAttribute('aria-label', `${tool === 'pen' ? 'Pen' : 'Eraser'} size in pixels`);
    sizeText.textContent = `${sizes[tool]} px`;
  }
  size.addEventListener('input', () => {
    sizes[tool] = Number(size.value);
    showSize();
  });

  function blank(width, height) {
    canvas.width = width;
    canvas.height = height;
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, width, height);
  }

  function snapshot() {
    history.push(ctx.getImageData(0, 0, canvas.width, canvas.height));
    if (history.length > UNDO_LIMIT) history.shift();
    undo.disabled = false;
  }

  function undoLast() {
    const previous = history.pop();
    if (!previous) return;
    canvas.width = previous.width;
    canvas.height = previous.height;
    ctx.putImageData(previous, 0, 0);
    undo.disabled = history.length === 0;
    edited();
    lane.submit(translate);
  }

  /** The canvas holds the input from now on; describe its size. */
  function edited() {
    source = null;
    describeSize();
  }

  function describeSize() {
    const { width, height } = canvas;
    let text = `${width}×${height}`;
    if (width === nativeW && height === nativeH) text += ', the native size';
    else if (card.fixed_size) text += `, resized to ${nativeW}×${nativeH} for the model`;
    else if (width % card.multiple || height % card.multiple) text += `, padded to a multiple of ${card.multiple}`;
    inputNote.textContent = text;
  }

  async function translate() {
    const sent = source ?? (await canvasBlob(canvas));
    const result = await request(`v1/models/${encodeURIComponent(card.name)}/translate`, {
      body: sent,
      type: sent.type || undefined,
    });
    showBlob(output, await result.response.blob(), download);
    status.textContent = `${timing(result)} · ${card.backend} on ${card.device}`;
    bump(section);
  }

  async function drawExample() {
    const url = card.examples[exampleIndex % card.examples.length];
    exampleIndex += 1;
    const { response } = await request(url, { method: 'GET' });
    const bitmap = await decodeBitmap(await response.blob());
    snapshot();
    blank(nativeW, nativeH);
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(bitmap, 0, 0, nativeW, nativeH);
    bitmap.close();
    edited();
  }

  async function loadFile(file) {
    let bitmap = null;
    try {
      bitmap = await decodeBitmap(file);
    } catch {
      bitmap = null; // not an image this browser reads: the server will say what is wrong with it
    }
    if (bitmap) {
      snapshot();
      blank(bitmap.width, bitmap.height);
      ctx.drawImage(bitmap, 0, 0);
      bitmap.close();
      describeSize();
    }
    // Other formats the browser can read (GIF, WebP, ...) go as the canvas PNG.
    source = bitmap && !SERVER_TYPES.has(file.type) ? null : file;
    lane.submit(translate);
  }

  // Drawing: pointer events cover mouse, pen and touch.
  function at(event) {
    const box = canvas.getBoundingClientRect();
    return [
      ((event.clientX - box.left) * canvas.width) / box.width,
      ((event.clientY - box.top) * canvas.height) / box.height,
    ];
  }

  function stroke(from, to) {
    ctx.save();
    ctx.strokeStyle = tool === 'pen' ? color.value : '#ffffff';
    ctx.lineWidth = (sizes[tool] * canvas.width) / nativeW; // pen sizes are in native pixels
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(...from);
    ctx.lineTo(...to);
    ctx.stroke();
    ctx.restore();
  }

  canvas.addEventListener('pointerdown', (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    canvas.focus();
    try {
      canvas.setPointerCapture(event.pointerId);
    } catch {
      // capture is a convenience (strokes leaving the canvas); drawing works without it
    }
    snapshot();
    edited();
    last = at(event);
    stroke(last, last);
    lane.schedule(translate, DEBOUNCE_MS);
  });
  canvas.addEventListener('pointermove', (event) => {
    if (!last) return;
    const point = at(event);
    stroke(last, point);
    last = point;
    lane.schedule(translate, DEBOUNCE_MS);
  });
  const finish = () => {
    if (!last) return;
    last = null;
    lane.submit(translate);
  };
  canvas.addEventListener('pointerup', finish);
  canvas.addEventListener('pointercancel', finish);

  section.addEventListener('keydown', (event) => {
    const typing = event.target instanceof HTMLInputElement && event.target.type !== 'range';
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === 'z' && !typing) {
      event.preventDefault();
      undoLast();
    }
  });

  const inputFigure = h('figure', { class: 'io-cell' },
    h('div', { class: 'frame drop', title: 'Drop an image here' }, canvas),
    h('figcaption', {}, h('strong', {}, 'Input'), ' ', inputNote));
  dropTarget(inputFigure, loadFile, (err) => lane.showError(err));

  body.append(
    h('div', { class: 'toolbar', role: 'group', 'aria-label': `Drawing tools for ${card.name}` },
      pen, eraser,
      h('label', { class: 'inline' }, h('span', {}, 'Size'), size, sizeText),
      h('label', { class: 'inline' }, h('span', {}, 'Colour'), color),
      undo, clear),
    h('div', { class: 'toolbar', role: 'group', 'aria-label': `Inputs for ${card.name}` },
      example, filePicker('Upload image…', loadFile, `Upload an input image for ${card.name}`)),
    h('div', { class: 'io' },
      inputFigure,
      h('figure', { class: 'io-cell' },
        h('div', { class: 'frame' }, output),
        h('figcaption', {}, h('strong', {}, 'Output'), ' ', download))),
  );

  showSize();
  blank(nativeW, nativeH);
  describeSize();
  if (card.examples.length) example.click();
  else lane.submit(translate);
  return section;
}
