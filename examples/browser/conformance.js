// SPDX-License-Identifier: Apache-2.0
// conformance.js: runs every conformance vector (tests/conformance/vectors.json) through the
// browser SDK and shows each verdict beside the expected one. Cases naming a shared AWS
// document ("document_fixture") get its bytes from /fixtures/nitro/ (server.mjs --fixtures);
// without that folder they are skipped, as in every runner (tests/conformance/README.md).
// Leaves window.conformanceResult = {cases: [{name, expect, verdict}], skipped: [names]} (or
// {error}).
import { runConformanceCase } from '../../bindings/js/src/index.js';

const $ = (id) => document.getElementById(id);

async function fixturesOf(c) {
  const files = {};
  if (c.document_fixture) {
    const res = await fetch(`/fixtures/nitro/${encodeURIComponent(c.document_fixture)}`);
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`fixture ${c.document_fixture}: HTTP ${res.status}`);
    files[c.document_fixture] = new Uint8Array(await res.arrayBuffer());
  }
  return files;
}

async function main() {
  const vectors = await (await fetch('/tests/conformance/vectors.json')).json();
  const list = Array.isArray(vectors) ? vectors : vectors.cases;
  const cases = [];
  const skipped = [];
  for (const c of list) {
    const files = await fixturesOf(c);
    if (files === null) {
      skipped.push(c.name);
      continue;
    }
    let verdict;
    try {
      verdict = await runConformanceCase(c, files);
    } catch (e) {
      verdict = `harness error: ${e.message}`;
    }
    cases.push({ name: c.name, expect: c.expect, verdict });
    const row = $('cases').insertRow();
    row.insertCell().textContent = c.name;
    row.insertCell().textContent = c.expect;
    row.insertCell().textContent = verdict;
    const mark = row.insertCell();
    mark.textContent = verdict === c.expect ? '✔' : '✘';
    mark.className = verdict === c.expect ? 'pass' : 'fail';
  }
  const same = cases.filter((k) => k.verdict === k.expect).length;
  $('summary').textContent = `${same} of ${cases.length} verdicts equal the vectors' (C++'s)` +
    (skipped.length ? `; ${skipped.length} skipped (no shared fixtures)` : '');
  $('summary').className = same === cases.length ? 'pass' : 'fail';
  window.conformanceResult = { cases, skipped };
}

main().catch((e) => {
  $('summary').textContent = `error: ${e.message}`;
  $('summary').className = 'fail';
  window.conformanceResult = { error: e.message };
});
