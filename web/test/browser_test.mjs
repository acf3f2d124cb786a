// CI browser test: the web page on WebGPU in headless Chromium, checked against the native binary.
//
//   cd web && npm ci && node test/browser_test.mjs
//
// Environment: CHROMIUM (default /usr/bin/chromium), CONVOY_BIN (default target/release/convoy,
// relative to the repository root). Screenshots go to web/test/out/.
//
// Checks:
//   1. the page loads and creates the bundled classifier (window.convoyTest.ready);
//   2. classifyFixed(8) in the browser matches `convoy infer` on the same inputs;
//   3. trainSteps(20, 32) gives finite losses that fall.

import { chromium } from 'playwright-core';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../serve.mjs';

const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO_ROOT = path.dirname(WEB_DIR);
const OUT_DIR = path.join(WEB_DIR, 'test', 'out');

const OVERALL_TIMEOUT_MS = 8 * 60 * 1000;
const READY_TIMEOUT_MS = 120 * 1000; // SwiftShader (the software GPU in CI) is slow to start
const CALL_TIMEOUT_MS = 180 * 1000;
const NATIVE_TIMEOUT_MS = 180 * 1000;
const N_IMAGES = 8;

class TestFailure extends Error {}

function check(cond, message) {
  if (!cond) throw new TestFailure(message);
}

let passed = 0;
function pass(what) {
  passed++;
  console.log(`ok ${passed} - ${what}`);
}

/** Reject after `ms` with a message naming what took too long. */
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new TestFailure(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------
// .npy (format 1.0, little-endian float32, C order)
// ---------------------------------------------------------------------------

function npyBytes(data, shape) {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  // magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64
  // and ending in '\n', as the format asks.
  const unpadded = 10 + dict.length + 1;
  const header = dict + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const buf = Buffer.alloc(10 + header.length + data.length * 4);
  buf.write('\x93NUMPY', 0, 'latin1');
  buf[6] = 1;
  buf[7] = 0;
  buf.writeUInt16LE(header.length, 8);
  buf.write(header, 10, 'latin1');
  const body = 10 + header.length;
  data.forEach((v, i) => buf.writeFloatLE(v, body + 4 * i));
  return buf;
}

function parseNpy(buf, name) {
  check(buf.length >= 10 && buf.toString('latin1', 0, 6) === '\x93NUMPY', `${name}: not a .npy file`);
  const major = buf[6];
  let headerLen;
  let start;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    start = 10;
  } else if (major === 2 || major === 3) {
    headerLen = buf.readUInt32LE(8);
    start = 12;
  } else {
    throw new TestFailure(`${name}: unsupported .npy version ${major}`);
  }
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']*)'/.exec(header)?.[1];
  check(descr === '<f4', `${name}: dtype ${descr}, expected '<f4' (header ${header.trim()})`);
  check(!/'fortran_order':\s*True/.test(header), `${name}: Fortran order is not supported`);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  check(shapeText !== undefined, `${name}: no shape in header ${header.trim()}`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const body = start + headerLen;
  check(buf.length - body === count * 4, `${name}: ${buf.length - body} data bytes for shape (${shape})`);
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = buf.readFloatLE(body + 4 * i);
  return { shape, data };
}

// ---------------------------------------------------------------------------
// The native reference
// ---------------------------------------------------------------------------

function runNative(args) {
  const bin = path.resolve(REPO_ROOT, process.env.CONVOY_BIN || 'target/release/convoy');
  console.log(`$ ${path.relative(REPO_ROOT, bin) || bin} ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    // lavapipe wants a runtime dir; any writable folder will do
    const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || os.tmpdir() };
    execFile(bin, args, { cwd: REPO_ROOT, env, timeout: NATIVE_TIMEOUT_MS, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (stdout.trim()) console.log(stdout.trimEnd());
      if (stderr.trim()) console.log(stderr.trimEnd());
      if (err) {
        const why = err.code === 'ENOENT' ? `not found (build it with cargo build --release, or set CONVOY_BIN)` : err.message;
        reject(new TestFailure(`native convoy (${bin}) failed: ${why}`));
      } else {
        resolve(stdout);
      }
    });
  });
}

const argmax = (xs) => xs.reduce((best, x, i) => (x > xs[best] ? i : best), 0);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

async function run(ctx) {
  await fs.mkdir(OUT_DIR, { recursive: true });
  ctx.tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'convoy-browser-'));

  ctx.server = await serve(WEB_DIR, 0);
  console.log(`serving ${WEB_DIR} at ${ctx.server.url}`);

  // launch() gives the browser a fresh temporary profile (user-data-dir) each time and removes
  // it on close, so no state carries over between runs.
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  ctx.browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--disable-quic', '--use-angle=vulkan',
    ],
  });
  console.log(`browser: ${executablePath} ${ctx.browser.version()}`);
  const page = await ctx.browser.newPage({ viewport: { width: 1000, height: 1000 } });
  page.on('console', (m) => console.log(`[page ${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[page exception] ${e.message}`));
  page.setDefaultTimeout(CALL_TIMEOUT_MS);

  // 1. Start-up
  await page.goto(ctx.server.url);
  await page.waitForFunction(() => window.convoyTest !== undefined, null, { timeout: 30_000 });
  const { adapter } = await withTimeout(page.evaluate(() => window.convoyTest.ready), READY_TIMEOUT_MS, 'page start-up (convoyTest.ready)');
  console.log(`adapter: ${adapter}`);
  pass('page loaded, bundled classifier created');

  // 2a. Every kernel compiles on the browser's WebGPU (its WGSL compiler is stricter than naga)
  const errors = await withTimeout(page.evaluate(() => window.convoyTest.shaderErrors()), CALL_TIMEOUT_MS, 'shaderErrors()');
  check(errors.length === 0, `kernels the browser rejects:\n${errors.join('\n')}`);
  pass('every kernel compiles in the browser');

  // 2. Browser logits against the native binary on the same inputs
  const res = await withTimeout(page.evaluate((n) => window.convoyTest.classifyFixed(n), N_IMAGES), CALL_TIMEOUT_MS, `classifyFixed(${N_IMAGES})`);
  const K = res.classes;
  check(res.inputs.length === N_IMAGES * 28 * 28, `classifyFixed gave ${res.inputs.length} input values, expected ${N_IMAGES * 28 * 28}`);
  check(res.logits.length === N_IMAGES * K, `classifyFixed gave ${res.logits.length} logits, expected ${N_IMAGES}x${K}`);
  check(res.logits.every(Number.isFinite), 'browser logits are not all finite');
  console.log(`browser inference: ${res.ms.toFixed(1)} ms for ${N_IMAGES} images (${(res.ms / N_IMAGES).toFixed(2)} ms per image)`);
  await page.screenshot({ path: path.join(OUT_DIR, 'classify.png'), fullPage: true });

  const inputPath = path.join(ctx.tmp, 'inputs.npy');
  const nativePath = path.join(ctx.tmp, 'native.npy');
  await fs.writeFile(inputPath, npyBytes(res.inputs, [N_IMAGES, 1, 28, 28]));
  await runNative([
    'infer', '--model', 'resnet_mini', '--num-classes', String(K),
    '--weights', 'web/assets/resnet_mini.safetensors', '--input', inputPath, '--output', nativePath,
  ]);
  const native = parseNpy(await fs.readFile(nativePath), 'native.npy');
  check(native.shape.join(',') === `${N_IMAGES},${K}`, `native logits have shape (${native.shape}), expected (${N_IMAGES}, ${K})`);

  // fp32 on two different drivers with different summation orders: the logits are O(10), so
  // agreement to 1e-3 relative to the largest one is a match, and the predicted classes must agree.
  let maxDiff = 0;
  let maxNative = 0;
  for (let i = 0; i < native.data.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(res.logits[i] - native.data[i]));
    maxNative = Math.max(maxNative, Math.abs(native.data[i]));
  }
  const tol = 1e-3 * Math.max(1, maxNative);
  console.log(`max |browser - native| = ${maxDiff.toExponential(3)} (tolerance ${tol.toExponential(3)}, max |native| = ${maxNative.toFixed(3)})`);
  check(maxDiff <= tol, `browser and native logits differ by ${maxDiff}, more than ${tol}`);
  for (let i = 0; i < N_IMAGES; i++) {
    const b = argmax(res.logits.slice(i * K, (i + 1) * K));
    const n = argmax(Array.from(native.data.subarray(i * K, (i + 1) * K)));
    check(b === n, `image ${i}: browser predicts class ${b}, native class ${n}`);
  }
  pass(`browser logits match native (${N_IMAGES} images, same argmax)`);

  // 2b. Time per inference, one image, warm, median of 20: the browser and native on this machine
  const browserMs = await withTimeout(page.evaluate(() => window.convoyTest.timeInference(20)), CALL_TIMEOUT_MS, 'timeInference(20)');
  const one = path.join(ctx.tmp, 'one.npy');
  await fs.writeFile(one, npyBytes(res.inputs.slice(0, 28 * 28), [1, 1, 28, 28]));
  const timing = await runNative([
    'infer', '--model', 'resnet_mini', '--num-classes', String(K), '--weights', 'web/assets/resnet_mini.safetensors',
    '--input', one, '--output', path.join(ctx.tmp, 'one_out.npy'), '--repeat', '20',
  ]);
  console.log(`time per inference (resnet_mini, 1 image, median of 20): headless Chromium WebGPU ${browserMs.toFixed(2)} ms; native: ${timing.trim()}`);

  // 3. Training in the browser
  const losses = await withTimeout(page.evaluate(() => window.convoyTest.trainSteps(20, 32)), CALL_TIMEOUT_MS, 'trainSteps(20, 32)');
  console.log(`losses: ${losses.map((l) => l.toFixed(4)).join(' ')}`);
  await page.screenshot({ path: path.join(OUT_DIR, 'train.png'), fullPage: true });
  check(losses.length === 20, `trainSteps(20, 32) returned ${losses.length} losses`);
  check(losses.every(Number.isFinite), 'a training loss is not finite');
  const first = mean(losses.slice(0, 5));
  const last = mean(losses.slice(-5));
  check(last < first, `the loss did not fall: mean of the first 5 steps ${first.toFixed(4)}, of the last 5 ${last.toFixed(4)}`);
  pass(`training loss falls (${first.toFixed(4)} -> ${last.toFixed(4)})`);
}

async function main() {
  const ctx = {};
  let failed = false;
  let overallTimer;
  const overall = new Promise((_, reject) => {
    overallTimer = setTimeout(() => reject(new TestFailure(`the browser test took longer than ${OVERALL_TIMEOUT_MS / 60000} minutes`)), OVERALL_TIMEOUT_MS);
  });
  try {
    await Promise.race([run(ctx), overall]);
  } catch (e) {
    failed = true;
    console.error(`FAIL: ${e instanceof TestFailure ? e.message : e.stack || e}`);
  } finally {
    clearTimeout(overallTimer);
    // Closing the browser also ends any page call still pending after a timeout.
    await withTimeout(ctx.browser?.close() ?? Promise.resolve(), 30_000, 'closing the browser').catch((e) => console.error(e.message));
    await ctx.server?.close();
    if (ctx.tmp) await fs.rm(ctx.tmp, { recursive: true, force: true });
  }
  console.log(`browser: ${passed} passed, ${failed ? 1 : 0} failed`);
  console.log(`screenshots: ${path.relative(process.cwd(), OUT_DIR) || OUT_DIR}`);
  process.exit(failed ? 1 : 0);
}

main();
