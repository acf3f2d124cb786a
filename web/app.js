// convoy web page: classify images and train resnet_mini in the browser, on WebGPU.
// Plain ES module; the compute lives in the wasm module pkg/convoy.js (built by web/build.sh).

const BUNDLED_MODEL = 'resnet_mini';
const BUNDLED_WEIGHTS = 'assets/resnet_mini.safetensors';
const BUNDLED_CLASSES = 10;
const GREY_SIZE = 28; // Fashion-MNIST images are 1x28x28
const THUMB_COUNT = 12;
const EVAL_IMAGES = 1000;
const TRAIN_SEED = 1;

const $ = (id) => document.getElementById(id);

/** The wasm module's exports, once loaded. */
let wasm = null;

const state = {
  bundled: null, // Classifier for resnet_mini, created at start-up and kept
  custom: null, // { classifier, model, size, numClasses } for a user-picked ImageNet model
  classNames: [], // Fashion-MNIST class names
  // Training
  trainer: null,
  trainCfg: null, // { batchSize, epochs, lrMax } the trainer was created with
  losses: [],
  evals: [], // { step, loss, top1, top5 }
  stepTimes: [], // recent step durations (ms) for images/s
  running: null, // Promise of the running training loop, or null
  stopRequested: false,
};

// ---------------------------------------------------------------------------
// Serialising GPU work
// ---------------------------------------------------------------------------

// wasm-bindgen objects are borrowed for the whole of an async method call, so a second call
// on the same object while one is pending fails ("recursive use of an object"). The page can
// start work from several places (clicks, the training loop, the test hook): run them one at
// a time through this queue.
let gpuQueue = Promise.resolve();
function withGpu(fn) {
  const result = gpuQueue.then(fn);
  gpuQueue = result.catch(() => {}); // a failed job must not block the ones after it
  return result;
}

// ---------------------------------------------------------------------------
// Errors and status
// ---------------------------------------------------------------------------

function errorMessage(err) {
  if (err instanceof Error) return err.message || String(err);
  return typeof err === 'string' ? err : JSON.stringify(err);
}

function showError(err, context) {
  let msg = errorMessage(err);
  if (context) msg = `${context}: ${msg}`;
  if (!('gpu' in navigator) && !showError.hinted) {
    // The Rust side says what failed; add why, once, when WebGPU is missing altogether.
    msg += '\n(This browser exposes no WebGPU: navigator.gpu is undefined. Use a recent ' +
      'Chrome/Edge, or enable WebGPU, and open the page from http://127.0.0.1 or https.)';
    showError.hinted = true;
  }
  console.error(msg);
  const li = document.createElement('li');
  li.textContent = msg;
  $('error-list').append(li);
  $('error').hidden = false;
}

function setStatus(text) {
  $('status').textContent = text;
}

// ---------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------

function showView(name) {
  if (name !== 'classify' && name !== 'train') throw new Error(`unknown view "${name}"`);
  for (const v of ['classify', 'train']) {
    $(`view-${v}`).hidden = v !== name;
    $(`tab-${v}`).setAttribute('aria-selected', String(v === name));
  }
  if (name === 'train') drawLossChart(); // its size is only known once visible
}

// ---------------------------------------------------------------------------
// Classify view: results
// ---------------------------------------------------------------------------

function softmax(logits) {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  const exps = Array.from(logits, (x) => Math.exp(x - max)); // minus max: no overflow
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

function className(index, bundled) {
  return bundled ? state.classNames[index] ?? `class ${index}` : `class ${index}`;
}

/**
 * Show the top-5 of one image's logits as bars.
 * source: what was classified; truth: the true class index, if known.
 */
function renderTop5(logits, { bundled, source, truth = null, ms, images = 1 }) {
  const probs = softmax(logits);
  const order = probs.map((p, i) => i).sort((a, b) => probs[b] - probs[a]).slice(0, 5);

  const list = $('top5');
  list.replaceChildren();
  for (const i of order) {
    const li = document.createElement('li');
    if (i === truth) li.className = 'truth';
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = className(i, bundled);
    name.title = name.textContent;
    const track = document.createElement('span');
    track.className = 'track';
    const fill = document.createElement('span');
    fill.className = 'fill';
    fill.style.display = 'block';
    fill.style.width = `${(probs[i] * 100).toFixed(2)}%`;
    track.append(fill);
    const pct = document.createElement('span');
    pct.className = 'pct';
    pct.textContent = `${(probs[i] * 100).toFixed(1)}%`;
    li.append(name, track, pct);
    list.append(li);
  }

  let text = source;
  if (truth !== null) text += ` (true label: ${className(truth, bundled)})`;
  $('result-source').textContent = text;
  const per = images > 1 ? ` (${images} images, ${(ms / images).toFixed(2)} ms each)` : '';
  $('timing').textContent = `Inference: ${ms.toFixed(1)} ms${per}`;
}

// ---------------------------------------------------------------------------
// Classify view: models
// ---------------------------------------------------------------------------

/** The classifier the model picker points at, or null if its weights are not loaded. */
function activeModel() {
  const choice = $('model-select').value;
  if (choice === BUNDLED_MODEL) {
    return state.bundled && {
      classifier: state.bundled, bundled: true, grey: true, size: GREY_SIZE,
    };
  }
  if (state.custom && state.custom.model === choice) {
    return { classifier: state.custom.classifier, bundled: false, grey: false, size: state.custom.size };
  }
  return null;
}

function requireModel() {
  const m = activeModel();
  if (!m) {
    throw new Error(`no weights loaded for ${$('model-select').value}: pick a .safetensors file and press "Load model"`);
  }
  return m;
}

function onModelSelect() {
  const choice = $('model-select').value;
  $('custom-model').hidden = choice === BUNDLED_MODEL;
  updateCustomState();
}

function updateCustomState() {
  const c = state.custom;
  $('custom-state').textContent = c
    ? `Loaded ${c.model}: ${c.numClasses} classes, ${c.size}x${c.size} input.`
    : 'No weights loaded.';
}

function positiveInt(input, what) {
  const v = Number(input.value);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${what} must be a positive whole number, not "${input.value}"`);
  return v;
}

async function loadCustomModel() {
  const model = $('model-select').value;
  const file = $('weights-file').files[0];
  if (!file) throw new Error('pick a .safetensors weights file first');
  const numClasses = positiveInt($('num-classes'), 'Classes');
  const size = positiveInt($('input-size'), 'Input size');

  setStatus(`Loading ${model} from ${file.name} (${(file.size / 1e6).toFixed(1)} MB)…`);
  const weights = new Uint8Array(await file.arrayBuffer());
  const classifier = await withGpu(() => wasm.Classifier.create(model, weights, numClasses, 3, size));
  if (state.custom) await withGpu(() => state.custom.classifier.free());
  state.custom = { classifier, model, size, numClasses: classifier.num_classes() };
  updateCustomState();
  setStatus(`${model} ready.`);
}

// ---------------------------------------------------------------------------
// Classify view: inputs
// ---------------------------------------------------------------------------

const draw = {
  canvas: null,
  ctx: null,
  drawing: false,
  last: null,
  brush: 18,
};

function clearCanvas() {
  draw.ctx.fillStyle = '#000';
  draw.ctx.fillRect(0, 0, draw.canvas.width, draw.canvas.height);
}

function canvasPoint(ev) {
  // The canvas may be scaled by CSS; map the pointer into canvas pixels.
  const r = draw.canvas.getBoundingClientRect();
  return {
    x: ((ev.clientX - r.left) * draw.canvas.width) / r.width,
    y: ((ev.clientY - r.top) * draw.canvas.height) / r.height,
  };
}

function strokeTo(p) {
  const ctx = draw.ctx;
  ctx.strokeStyle = '#fff';
  ctx.fillStyle = '#fff';
  ctx.lineWidth = draw.brush;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  if (draw.last) {
    ctx.beginPath();
    ctx.moveTo(draw.last.x, draw.last.y);
    ctx.lineTo(p.x, p.y);
    ctx.stroke();
  } else {
    // A click without a move still leaves a dot.
    ctx.beginPath();
    ctx.arc(p.x, p.y, draw.brush / 2, 0, 2 * Math.PI);
    ctx.fill();
  }
  draw.last = p;
}

function setupDrawing() {
  draw.canvas = $('draw');
  draw.ctx = draw.canvas.getContext('2d', { willReadFrequently: true });
  clearCanvas();

  // Pointer events cover mouse, touch and pen alike.
  draw.canvas.addEventListener('pointerdown', (ev) => {
    ev.preventDefault();
    draw.canvas.setPointerCapture(ev.pointerId);
    draw.drawing = true;
    draw.last = null;
    selectThumb(null); // the canvas no longer shows just the test image
    strokeTo(canvasPoint(ev));
  });
  draw.canvas.addEventListener('pointermove', (ev) => {
    if (draw.drawing) strokeTo(canvasPoint(ev));
  });
  const end = () => {
    if (!draw.drawing) return;
    draw.drawing = false;
    draw.last = null;
    classifyCanvas('your drawing').catch((e) => showError(e, 'classify'));
  };
  draw.canvas.addEventListener('pointerup', end);
  draw.canvas.addEventListener('pointercancel', end);
}

/** True if the border of the picture is mostly light, i.e. a dark item on a light background. */
function lightBackground(rgba, w, h) {
  let sum = 0;
  let count = 0;
  const add = (x, y) => {
    const i = 4 * (y * w + x);
    sum += (rgba[i] + rgba[i + 1] + rgba[i + 2]) / 3;
    count++;
  };
  for (let x = 0; x < w; x++) { add(x, 0); add(x, h - 1); }
  for (let y = 1; y < h - 1; y++) { add(0, y); add(w - 1, y); }
  return sum / count > 127;
}

/** Classify what the drawing canvas shows with the active model. */
async function classifyCanvas(source) {
  const model = requireModel();
  const { width: w, height: h } = draw.canvas;
  const rgba = new Uint8Array(draw.ctx.getImageData(0, 0, w, h).data.buffer);
  let input;
  if (model.grey) {
    // Fashion-MNIST items are light on dark: invert photos of dark items on light ground.
    const invert = lightBackground(rgba, w, h);
    if (invert) source += ', inverted (light background)';
    input = wasm.preprocess_grey(rgba, w, h, invert);
  } else {
    input = wasm.preprocess_rgb(rgba, w, h, model.size);
  }
  await classifyInput(model, input, source, null);
}

async function classifyInput(model, input, source, truth) {
  const t0 = performance.now();
  const logits = await withGpu(() => model.classifier.classify(input, 1));
  const ms = performance.now() - t0;
  renderTop5(logits, { bundled: model.bundled, source, truth, ms });
}

/** Put an image file on the canvas (largest centred square, scaled) and classify it. */
async function classifyFile(file) {
  requireModel();
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new Error(`the browser cannot decode ${file.name} as an image`);
  }
  const side = Math.min(bitmap.width, bitmap.height);
  const sx = (bitmap.width - side) / 2;
  const sy = (bitmap.height - side) / 2;
  clearCanvas();
  selectThumb(null);
  draw.ctx.imageSmoothingEnabled = true;
  draw.ctx.drawImage(bitmap, sx, sy, side, side, 0, 0, draw.canvas.width, draw.canvas.height);
  bitmap.close();
  await classifyCanvas(file.name);
}

/** Draw 28x28 grey bytes onto a canvas context at (0,0), scaled to `size`. */
function drawGrey(ctx, pixels, size) {
  const img = new ImageData(GREY_SIZE, GREY_SIZE);
  for (let i = 0; i < pixels.length; i++) {
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = pixels[i];
    img.data[4 * i + 3] = 255;
  }
  if (size === GREY_SIZE) {
    ctx.putImageData(img, 0, 0);
    return;
  }
  // Scale through a small canvas so the pixels stay sharp.
  const small = document.createElement('canvas');
  small.width = small.height = GREY_SIZE;
  small.getContext('2d').putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, size, size);
  ctx.imageSmoothingEnabled = true;
}

/** Mark thumbnail `index` as the one shown (null: none). */
function selectThumb(index) {
  for (const b of $('thumbs').children) b.classList.toggle('selected', Number(b.dataset.index) === index);
}

/** Show embedded test image `index` on the drawing canvas. */
function showTestImage(index) {
  drawGrey(draw.ctx, wasm.embedded_test_pixels(index), draw.canvas.width);
  selectThumb(index);
}

async function classifyTestImage(index) {
  const model = requireModel();
  showTestImage(index);
  const truth = wasm.embedded_test_labels(index, 1)[0];
  const source = `test image #${index}`;
  if (model.grey) {
    // The exact tensor the model was tested with, not a re-rendering of the thumbnail.
    await classifyInput(model, wasm.embedded_test_images(index, 1), source, model.bundled ? truth : null);
  } else {
    await classifyCanvas(source);
  }
}

function buildThumbnails() {
  const strip = $('thumbs');
  const count = Math.min(THUMB_COUNT, wasm.embedded_test_count());
  const labels = wasm.embedded_test_labels(0, count);
  for (let i = 0; i < count; i++) {
    const button = document.createElement('button');
    button.dataset.index = String(i);
    button.title = `test image #${i}: ${className(labels[i], true)}`;
    const c = document.createElement('canvas');
    c.width = c.height = GREY_SIZE;
    drawGrey(c.getContext('2d'), wasm.embedded_test_pixels(i), GREY_SIZE);
    button.append(c);
    button.addEventListener('click', () => classifyTestImage(i).catch((e) => showError(e, 'classify')));
    strip.append(button);
  }
}

// ---------------------------------------------------------------------------
// Train view
// ---------------------------------------------------------------------------

function readTrainConfig() {
  const lrMax = Number($('lr-max').value);
  if (!(lrMax > 0) || !Number.isFinite(lrMax)) throw new Error(`Max lr must be a positive number, not "${$('lr-max').value}"`);
  return {
    batchSize: positiveInt($('batch-size'), 'Batch size'),
    epochs: positiveInt($('epochs'), 'Epochs'),
    lrMax,
  };
}

const sameConfig = (a, b) => a && b && a.batchSize === b.batchSize && a.epochs === b.epochs && a.lrMax === b.lrMax;

async function newTrainer(cfg) {
  await freeTrainer();
  setStatus('Creating the trainer…');
  state.trainer = await withGpu(() =>
    wasm.Trainer.create(BUNDLED_MODEL, cfg.batchSize, cfg.epochs, cfg.lrMax, TRAIN_SEED));
  state.trainCfg = cfg;
  state.losses = [];
  state.evals = [];
  state.stepTimes = [];
  $('eval-log').replaceChildren();
  $('train-acc').textContent = '–';
  $('train-speed').textContent = '–';
  $('train-loss').textContent = '–';
  $('adapter').textContent = state.trainer.adapter();
  updateTrainStats();
  drawLossChart();
  setStatus('Trainer ready.');
}

async function freeTrainer() {
  if (!state.trainer) return;
  const t = state.trainer;
  state.trainer = null;
  await withGpu(() => t.free());
}

const trainFinished = () => state.trainer && state.trainer.steps_done() >= state.trainer.total_steps();

function updateTrainStats() {
  const t = state.trainer;
  $('train-step').textContent = t ? `step ${t.steps_done()} / ${t.total_steps()}` : 'step 0 / 0';
  if (state.losses.length) $('train-loss').textContent = state.losses[state.losses.length - 1].toFixed(4);
  if (state.stepTimes.length && state.trainCfg) {
    const ms = state.stepTimes.reduce((a, b) => a + b, 0);
    const ips = (state.trainCfg.batchSize * state.stepTimes.length * 1000) / ms;
    $('train-speed').textContent = ips.toFixed(ips < 100 ? 1 : 0);
  }
}

async function evaluateNow() {
  const t = state.trainer;
  const n = Math.min(EVAL_IMAGES, wasm.embedded_test_count());
  setStatus(`Evaluating on ${n} test images…`);
  const [loss, top1, top5] = await withGpu(() => t.evaluate(n));
  const step = t.steps_done();
  state.evals.push({ step, loss, top1, top5 });
  $('train-acc').textContent = `${(top1 * 100).toFixed(1)}%`;
  const li = document.createElement('li');
  li.textContent = `step ${step}: test loss ${loss.toFixed(4)}, top-1 ${(top1 * 100).toFixed(1)}%, ` +
    `top-5 ${(top5 * 100).toFixed(1)}% (${n} images)`;
  $('eval-log').append(li);
  drawLossChart();
}

/**
 * Run up to `limit` training steps (all remaining ones if limit is Infinity), updating the
 * page after each, evaluating at the end of each epoch. Returns the losses of these steps.
 */
async function runSteps(limit) {
  const t = state.trainer;
  const losses = [];
  while (!state.stopRequested && losses.length < limit && t.steps_done() < t.total_steps()) {
    const t0 = performance.now();
    const loss = await withGpu(() => t.step());
    state.stepTimes.push(performance.now() - t0);
    if (state.stepTimes.length > 20) state.stepTimes.shift(); // images/s over the last 20 steps
    losses.push(loss);
    state.losses.push(loss);
    updateTrainStats();
    drawLossChart();
    setStatus(`Training: step ${t.steps_done()} / ${t.total_steps()}`);

    const done = t.steps_done();
    if (done % t.steps_per_epoch() === 0 || done === t.total_steps()) await evaluateNow();
    // Let the page repaint and handle input between steps.
    await new Promise((r) => setTimeout(r, 0));
  }
  return losses;
}

/** Run the training loop from the UI; Stop pauses it, Start resumes or starts over. */
async function startTraining() {
  if (state.running) return;
  const cfg = readTrainConfig();
  setTrainButtons(true);
  state.stopRequested = false;
  const loop = (async () => {
    if (!state.trainer || trainFinished() || !sameConfig(cfg, state.trainCfg)) await newTrainer(cfg);
    await runSteps(Infinity);
    setStatus(trainFinished() ? 'Training finished.' : `Paused at step ${state.trainer.steps_done()}: Start resumes (new settings start over).`);
  })();
  state.running = loop;
  try {
    await loop;
  } finally {
    state.running = null;
    setTrainButtons(false);
  }
}

async function stopTraining() {
  state.stopRequested = true;
  if (state.running) await state.running.catch(() => {});
}

function setTrainButtons(running) {
  $('train-start').disabled = running;
  $('train-stop').disabled = !running;
  for (const id of ['batch-size', 'epochs', 'lr-max']) $(id).disabled = running;
}

// ---------------------------------------------------------------------------
// Loss chart (plain 2D canvas)
// ---------------------------------------------------------------------------

/** A round tick spacing (1, 2 or 5 times a power of ten) giving about `count` ticks over `range`. */
function niceStep(range, count) {
  const raw = range / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw);
}

/** Tick values 0, step, 2*step, ... up to max. */
function tickValues(max, step) {
  const out = [];
  for (let i = 0; i * step <= max + step * 1e-9; i++) out.push(i * step);
  return out;
}

function formatTick(v, step) {
  const decimals = Math.max(0, -Math.floor(Math.log10(step)));
  return v.toFixed(decimals);
}

function drawLossChart() {
  const canvas = $('loss-chart');
  const cssW = canvas.clientWidth;
  const cssH = canvas.clientHeight;
  if (!cssW || !cssH) return; // hidden view: drawn when shown
  // Back the canvas with device pixels so lines and text stay crisp.
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);

  const pad = { left: 52, right: 16, top: 16, bottom: 36 };
  const w = cssW - pad.left - pad.right;
  const h = cssH - pad.top - pad.bottom;
  const losses = state.losses;
  const total = state.trainer ? state.trainer.total_steps() : Math.max(losses.length, 10);
  const xMax = Math.max(total, losses.length, 1);
  const finite = losses.filter(Number.isFinite);
  const yTop = Math.max(...finite, 0.1);
  const yStep = niceStep(yTop, 5);
  const yMax = Math.ceil(yTop / yStep - 1e-9) * yStep; // the axis ends on a round value
  const xStep = Math.max(1, niceStep(xMax, 6));

  const X = (step) => pad.left + (step / xMax) * w;
  const Y = (v) => pad.top + h - (Math.min(v, yMax) / yMax) * h;

  // Grid and tick labels
  ctx.font = '12px system-ui, sans-serif';
  ctx.fillStyle = '#6b7280';
  ctx.strokeStyle = '#e5e7eb';
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const v of tickValues(yMax, yStep)) {
    ctx.beginPath();
    ctx.moveTo(pad.left, Y(v));
    ctx.lineTo(pad.left + w, Y(v));
    ctx.stroke();
    ctx.fillText(formatTick(v, yStep), pad.left - 6, Y(v));
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const v of tickValues(xMax, xStep)) {
    ctx.fillText(String(Math.round(v)), X(v), pad.top + h + 6);
  }
  // Axes
  ctx.strokeStyle = '#9ca3af';
  ctx.beginPath();
  ctx.moveTo(pad.left, pad.top);
  ctx.lineTo(pad.left, pad.top + h);
  ctx.lineTo(pad.left + w, pad.top + h);
  ctx.stroke();
  ctx.fillText('step', pad.left + w / 2, pad.top + h + 20);
  ctx.save();
  ctx.translate(12, pad.top + h / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = 'middle';
  ctx.fillText('loss', 0, 0);
  ctx.restore();

  // Epoch boundaries
  if (state.trainer) {
    const spe = state.trainer.steps_per_epoch();
    ctx.strokeStyle = '#cbd5e1';
    ctx.setLineDash([4, 4]);
    for (let s = spe; s < total; s += spe) {
      ctx.beginPath();
      ctx.moveTo(X(s), pad.top);
      ctx.lineTo(X(s), pad.top + h);
      ctx.stroke();
    }
    ctx.setLineDash([]);
  }

  if (!losses.length) {
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText('Press Start to train; the loss of every step is plotted here.', pad.left + w / 2, pad.top + h / 2);
    return;
  }

  // Raw loss per step (step i+1 is the loss after i+1 batches), then a smoothed line on top.
  const line = (values, colour, width) => {
    ctx.strokeStyle = colour;
    ctx.lineWidth = width;
    ctx.beginPath();
    values.forEach((v, i) => (i ? ctx.lineTo(X(i + 1), Y(v)) : ctx.moveTo(X(i + 1), Y(v))));
    ctx.stroke();
  };
  line(losses, '#93c5fd', 1);
  // The mean of the last few steps shows the trend through the batch-to-batch noise.
  const span = Math.min(50, Math.max(1, Math.round(xMax / 50)));
  if (span > 1) {
    let sum = 0;
    line(losses.map((v, i) => {
      sum += v - (i >= span ? losses[i - span] : 0);
      return sum / Math.min(i + 1, span);
    }), '#2563eb', 2);
  }

  // Test losses as dots at the steps they were measured.
  ctx.fillStyle = '#dc2626';
  for (const e of state.evals) {
    ctx.beginPath();
    ctx.arc(X(e.step), Y(e.loss), 4, 0, 2 * Math.PI);
    ctx.fill();
  }

  // Legend
  ctx.textAlign = 'left';
  ctx.textBaseline = 'middle';
  const legend = [['#93c5fd', 'loss'], ...(span > 1 ? [['#2563eb', `mean of ${span}`]] : []),
    ['#dc2626', 'test loss']];
  let lx = pad.left + w - 250;
  for (const [colour, label] of legend) {
    ctx.fillStyle = colour;
    ctx.fillRect(lx, pad.top + 2, 12, 8);
    ctx.fillStyle = '#374151';
    ctx.fillText(label, lx + 16, pad.top + 6);
    lx += 16 + ctx.measureText(label).width + 14;
  }
}

// ---------------------------------------------------------------------------
// Start-up and wiring
// ---------------------------------------------------------------------------

function wireUi() {
  for (const b of document.querySelectorAll('nav button')) b.addEventListener('click', () => showView(b.dataset.view));
  $('error-close').addEventListener('click', () => {
    $('error').hidden = true;
    $('error-list').replaceChildren();
  });
  $('model-select').addEventListener('change', onModelSelect);
  $('load-model').addEventListener('click', async () => {
    $('load-model').disabled = true;
    try {
      await loadCustomModel();
    } catch (e) {
      showError(e, 'load model');
      setStatus('Loading the model failed.');
    } finally {
      $('load-model').disabled = false;
    }
  });
  $('clear').addEventListener('click', () => {
    clearCanvas();
    selectThumb(null);
  });
  $('classify-drawing').addEventListener('click', () => classifyCanvas('the canvas').catch((e) => showError(e, 'classify')));
  $('image-file').addEventListener('change', (ev) => {
    const file = ev.target.files[0];
    if (file) classifyFile(file).catch((e) => showError(e, 'classify'));
  });
  $('train-start').addEventListener('click', () => startTraining().catch((e) => {
    showError(e, 'train');
    setStatus('Training stopped by an error.');
  }));
  $('train-stop').addEventListener('click', () => stopTraining());
  window.addEventListener('resize', () => drawLossChart());
  window.addEventListener('unhandledrejection', (ev) => showError(ev.reason));
}

async function start() {
  setStatus('Loading the wasm module…');
  try {
    // A dynamic import, so that a missing build shows up in the error box, not a blank page.
    wasm = await import('./pkg/convoy.js');
  } catch (e) {
    throw new Error(`cannot load pkg/convoy.js (build it with "bash web/build.sh"): ${errorMessage(e)}`);
  }
  await wasm.default();
  state.classNames = Array.from(wasm.fashion_classes());
  buildThumbnails();

  setStatus('Loading the bundled resnet_mini weights…');
  const resp = await fetch(BUNDLED_WEIGHTS);
  if (!resp.ok) throw new Error(`cannot fetch ${BUNDLED_WEIGHTS}: HTTP ${resp.status} ${resp.statusText}`);
  const weights = new Uint8Array(await resp.arrayBuffer());
  state.bundled = await withGpu(() =>
    wasm.Classifier.create(BUNDLED_MODEL, weights, BUNDLED_CLASSES, 1, GREY_SIZE));
  $('adapter').textContent = state.bundled.adapter();
  setStatus('Ready: draw an item, pick an image file or click a test image.');
}

setupDrawing();
wireUi();
onModelSelect();
drawLossChart();
if (location.hash === '#train') showView('train');

const ready = start().catch((e) => {
  showError(e, 'start-up');
  setStatus('Start-up failed; see the error above.');
  throw e;
});
ready.catch(() => {}); // reported above; the test hook still sees the rejection

// ---------------------------------------------------------------------------
// Test hook for the browser test (web/test/browser_test.mjs)
// ---------------------------------------------------------------------------

const testReady = ready.then(() => ({ adapter: state.bundled.adapter() }));
testReady.catch(() => {}); // already reported; awaiting it still rejects

window.convoyTest = {
  ready: testReady,

  /** Classify the first n embedded test images in one call; show the first one's top-5. */
  async classifyFixed(n) {
    await ready;
    const inputs = wasm.embedded_test_images(0, n);
    const labels = wasm.embedded_test_labels(0, n);
    showView('classify');
    $('model-select').value = BUNDLED_MODEL;
    onModelSelect();
    showTestImage(0);
    const t0 = performance.now();
    const logits = await withGpu(() => state.bundled.classify(inputs, n));
    const ms = performance.now() - t0;
    const classes = state.bundled.num_classes();
    renderTop5(logits.subarray(0, classes), {
      bundled: true, source: `test image #0 (batch of ${n})`, truth: labels[0], ms, images: n,
    });
    return { inputs: Array.from(inputs), logits: Array.from(logits), classes, ms };
  },

  /** Compile every kernel on this GPU: the messages of those that fail (empty: all compile). */
  async shaderErrors() {
    await ready;
    return Array.from(await withGpu(() => wasm.shader_errors()));
  },

  /** Median ms of classifying one embedded test image, over `reps` runs after a warm-up. */
  async timeInference(reps) {
    await ready;
    const input = wasm.embedded_test_images(0, 1);
    await withGpu(() => state.bundled.classify(input, 1));
    const times = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      await withGpu(() => state.bundled.classify(input, 1));
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  },

  /** Run k training steps with batch size bs (creating the trainer if none); return the losses. */
  async trainSteps(k, bs) {
    await ready;
    await stopTraining();
    showView('train');
    if (!state.trainer) {
      $('batch-size').value = String(bs);
      $('epochs').value = '1';
      $('lr-max').value = '0.1';
      await newTrainer({ batchSize: bs, epochs: 1, lrMax: 0.1 });
    }
    state.stopRequested = false;
    const losses = await runSteps(k);
    setStatus(`Ran ${losses.length} training steps.`);
    return losses;
  },

  showView,
};
