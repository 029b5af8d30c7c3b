#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// server.mjs: the tiny static server of examples/browser (Node, no npm dependency).
//
//   node examples/browser/server.mjs --url ws://127.0.0.1:PORT/ --trust hello.toml
//        [--trust wrong=other.toml ...] [--app-port 8080] [--listen 127.0.0.1:0]
//        [--fixtures ../shared/fixtures]
//
// It serves, read-only, from the repository: /examples/browser/ (the page), /bindings/js/ (the
// ES module and its wasm) and /tests/conformance/ (the vectors, for conformance.html); "/" goes
// to the page. /config.json hands the page the enclave's ws:// URL, the app port and a trust
// policy: the trust file's text with each PEM root replaced by its file name, and the PEM texts
// under those names (the browser cannot read local files). Several trust files may be named
// (`--trust NAME=FILE`); the page picks one with ?trust=NAME, the first is the default.
// --fixtures DIR also serves DIR at /fixtures/ (the shared AWS documents some conformance
// vectors name, for conformance.html).
// Prints "server: listening on http://HOST:PORT/" once ready. Binds to 127.0.0.1 by default:
// it is a development server, not a web server.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const served = ['examples/browser/', 'bindings/js/', 'tests/conformance/'];
const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
  '.d.ts': 'text/plain; charset=utf-8',
  '.pem': 'text/plain',
  '.png': 'image/png',
};

function usage(message) {
  console.error(`server: ${message}`);
  console.error('usage: server.mjs --url WS_URL --trust [NAME=]FILE... [--app-port N] [--listen HOST:PORT] [--fixtures DIR]');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { url: '', trusts: [], appPort: 8080, host: '127.0.0.1', port: 0, fixtures: '' };
  for (let i = 0; i < argv.length; i++) {
    const value = () => (i + 1 < argv.length ? argv[++i] : usage(`${argv[i]} needs a value`));
    switch (argv[i]) {
      case '--url': opts.url = value(); break;
      case '--trust': {
        const v = value();
        const eq = v.indexOf('=');
        const name = eq > 0 ? v.slice(0, eq) : (opts.trusts.length === 0 ? 'default' : `trust${opts.trusts.length}`);
        opts.trusts.push({ name, file: eq > 0 ? v.slice(eq + 1) : v });
        break;
      }
      case '--app-port': opts.appPort = Number(value()); break;
      case '--fixtures': opts.fixtures = path.resolve(value()); break;
      case '--listen': {
        const [h, p] = value().split(/:(?=[^:]*$)/);
        opts.host = h; opts.port = Number(p);
        break;
      }
      default: usage(`unknown argument ${argv[i]}`);
    }
  }
  if (!/^wss?:\/\//.test(opts.url)) usage('--url must be a ws:// or wss:// URL');
  if (opts.trusts.length === 0) usage('--trust is required');
  if (!Number.isInteger(opts.appPort) || opts.appPort < 1 || opts.appPort > 65535) usage('bad --app-port');
  return opts;
}

// loadTrust reads a trust file and inlines its PEM roots for the browser: each root that is a
// file ("aws-nitro" is built in) is renamed to its base name and its text put in `files`.
function loadTrust(file) {
  const toml = fs.readFileSync(file, 'utf8');
  const files = {};
  const dir = path.dirname(path.resolve(file));
  const rewritten = toml.replace(/^(\s*roots\s*=\s*)\[([^\]]*)\]/m, (_, head, list) => {
    const roots = [...list.matchAll(/"([^"]*)"/g)].map((m) => m[1]);
    const names = roots.map((root) => {
      if (root === 'aws-nitro') return root;
      const name = path.basename(root);
      if (name in files) throw new Error(`trust file ${file}: two roots named ${name}`);
      files[name] = fs.readFileSync(path.resolve(dir, root), 'utf8');
      return name;
    });
    return `${head}[${names.map((n) => JSON.stringify(n)).join(', ')}]`;
  });
  return { toml: rewritten, files };
}

const opts = parseArgs(process.argv.slice(2));
const trusts = {};
for (const { name, file } of opts.trusts) {
  try {
    trusts[name] = loadTrust(file);
  } catch (e) {
    console.error(`server: ${e.message}`);
    process.exit(1);
  }
}

function send(res, status, type, body) {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'only GET\n');
  if (url.pathname === '/' || url.pathname === '/examples/browser') {
    res.writeHead(302, { Location: `/examples/browser/${url.search}` });
    return res.end();
  }
  if (url.pathname === '/config.json') {
    const name = url.searchParams.get('trust') || opts.trusts[0].name;
    if (!(name in trusts)) return send(res, 404, 'text/plain', `no trust file named ${name}\n`);
    const config = { url: opts.url, appPort: opts.appPort, trustName: name, ...trusts[name] };
    return send(res, 200, 'application/json', JSON.stringify(config));
  }
  let rel;
  try {
    rel = path.posix.normalize(decodeURIComponent(url.pathname)).replace(/^\/+/, '');
  } catch {
    return send(res, 400, 'text/plain', 'bad path\n');
  }
  if (rel.endsWith('/') || rel === '') rel += 'index.html';
  let file;
  if (rel.split('/').includes('..')) return send(res, 404, 'text/plain', 'not found\n');
  if (opts.fixtures && rel.startsWith('fixtures/')) {
    file = path.join(opts.fixtures, rel.slice('fixtures/'.length));
  } else if (served.some((prefix) => rel.startsWith(prefix))) {
    file = path.join(repo, rel);
  } else {
    return send(res, 404, 'text/plain', 'not found\n');
  }
  fs.readFile(file, (err, data) => {
    if (err) return send(res, 404, 'text/plain', 'not found\n');
    const ext = rel.endsWith('.d.ts') ? '.d.ts' : path.extname(rel);
    send(res, 200, types[ext] || 'application/octet-stream', data);
  });
});

server.listen(opts.port, opts.host, () => {
  const { address, port } = server.address();
  console.log(`server: listening on http://${address}:${port}/`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
