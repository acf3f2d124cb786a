// A tiny static file server for the convoy web page (no dependencies).
//
//   node web/serve.mjs [port]        (or PORT=8080 node web/serve.mjs)
//
// Port 0 picks a free port; the actual URL is printed. Also importable:
//   import { serve } from './serve.mjs';
//   const { url, close } = await serve(root, 0);
//
// It binds to 127.0.0.1 only: WebGPU needs a secure context, and localhost counts as one.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm', // instantiateStreaming insists on this type
  '.safetensors': 'application/octet-stream',
  '.npy': 'application/octet-stream',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Map a request path to a file under root, or null if it would escape root. */
function resolveUnder(root, urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null; // malformed %-escape
  }
  if (decoded.includes('\0')) return null;
  // Resolving against root and then checking the prefix rejects "..", encoded or not.
  const file = path.resolve(root, '.' + path.posix.normalize('/' + decoded));
  if (file !== root && !file.startsWith(root + path.sep)) return null;
  return file;
}

function send(res, status, text) {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(text + '\n');
}

function handle(root, req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, 405, 'method not allowed');
  }
  const urlPath = new URL(req.url, 'http://localhost').pathname;
  let file = resolveUnder(root, urlPath);
  if (!file) return send(res, 403, 'forbidden');

  fs.stat(file, (err, st) => {
    if (!err && st.isDirectory()) {
      // Redirect "/dir" to "/dir/" so relative URLs in its index.html resolve.
      if (!urlPath.endsWith('/')) {
        res.writeHead(301, { Location: urlPath + '/' });
        return res.end();
      }
      file = path.join(file, 'index.html');
      return fs.stat(file, (err2, st2) => serveFile(res, req, file, err2 ? null : st2));
    }
    serveFile(res, req, file, err ? null : st);
  });
}

function serveFile(res, req, file, st) {
  if (!st || !st.isFile()) return send(res, 404, 'not found');
  res.writeHead(200, {
    'Content-Type': MIME[path.extname(file).toLowerCase()] || 'application/octet-stream',
    'Content-Length': st.size,
    // A development server: always serve the freshly built module and weights.
    'Cache-Control': 'no-store',
  });
  if (req.method === 'HEAD') return res.end();
  const stream = fs.createReadStream(file);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

/**
 * Serve the files under `root` on 127.0.0.1:`port` (0 = a free port).
 * Resolves to { url, close } once listening; close() resolves when the server has stopped.
 */
export function serve(root, port = 8080) {
  const absRoot = path.resolve(root);
  const server = http.createServer((req, res) => handle(absRoot, req, res));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(port), '127.0.0.1', () => {
      const { port: actual } = server.address();
      resolve({
        url: `http://127.0.0.1:${actual}/`,
        close: () =>
          new Promise((done) => {
            server.close(() => done());
            // Drop idle keep-alive connections so close() does not wait for them.
            server.closeAllConnections?.();
          }),
      });
    });
  });
}

// Run as a program: serve the folder this file is in.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const port = process.argv[2] ?? process.env.PORT ?? 8080;
  if (!/^\d+$/.test(String(port)) || Number(port) > 65535) {
    console.error(`serve.mjs: bad port ${JSON.stringify(port)} (want 0-65535)`);
    process.exit(2);
  }
  const root = path.dirname(fileURLToPath(import.meta.url));
  serve(root, port).then(
    ({ url }) => console.log(`serving ${root} at ${url}`),
    (err) => {
      console.error(`serve.mjs: ${err.message}`);
      process.exit(1);
    },
  );
}
