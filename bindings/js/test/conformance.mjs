// SPDX-License-Identifier: Apache-2.0
// The browser client core (wasm) in Node: every case of tests/conformance/vectors.json must give
// its `expect` verdict (README there), plus API checks on a real AWS Nitro document.
//   node bindings/js/test/conformance.mjs [VECTORS_JSON] [FIXTURES_DIR]
// FIXTURES_DIR defaults to $ENCLAVIA_FIXTURES, else ../shared/fixtures next to the repository;
// cases that need a fixture are skipped (with a message) when it is absent. With
// ENCLAVIA_VERDICTS_OUT=<file>, appends "<name> <verdict>" per case run, as the C/C++ runners do.
// Exits 1 on any wrong verdict, or when no case ran; 77 (skip) when bindings/js/dist is not built.
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(join(here, "../dist/enclavia_core.wasm"))) {
  console.log("SKIP: bindings/js/dist not built (scripts/build-wasm)");
  process.exit(77);
}
const {
  EnclaviaError, Trust, bytesToHex, runConformanceCase, verifyAttestation,
} = await import("../src/index.js");

const repo = resolve(here, "../../..");
const vectorsPath = process.argv[2] ?? join(repo, "tests/conformance/vectors.json");
const fixturesDir = process.argv[3] ?? process.env.ENCLAVIA_FIXTURES ?? resolve(repo, "../shared/fixtures");
const verdictsOut = process.env.ENCLAVIA_VERDICTS_OUT;
const haveFixtures = existsSync(join(fixturesDir, "nitro"));
if (!haveFixtures && process.env.ENCLAVIA_REQUIRE_FIXTURES) {
  console.log(`FAIL ENCLAVIA_REQUIRE_FIXTURES is set and ${fixturesDir}/nitro is absent`);
  process.exit(1);
}

let failures = 0;
let passed = 0;
let skipped = 0;
function check(name, ok, detail = "") {
  if (ok) { passed++; console.log(`ok   ${name}`); } else { failures++; console.log(`FAIL ${name} ${detail}`); }
}

const started = performance.now();

// --- The vectors -------------------------------------------------------------------------------
const vectors = JSON.parse(readFileSync(vectorsPath, "utf8"));
if (vectors.version !== 1 || !Array.isArray(vectors.cases)) {
  console.log(`FAIL ${vectorsPath}: not a version 1 vectors file`);
  process.exit(1);
}
const fixture = (name) => readFileSync(join(fixturesDir, "nitro", name));
let ran = 0;
for (const c of vectors.cases) {
  if (c.document_fixture !== undefined && !haveFixtures) {
    skipped++;
    console.log(`skip ${c.name}: no fixtures folder ${fixturesDir}/nitro`);
    continue;
  }
  let verdict;
  try {
    verdict = await runConformanceCase(c, fixture);
  } catch (e) {
    verdict = `harness error: ${e.message}`;
  }
  ran++;
  if (verdictsOut) appendFileSync(verdictsOut, `${c.name} ${verdict}\n`);
  check(`conformance ${c.name}`, verdict === c.expect, `got ${verdict}, want ${c.expect}`);
}
const vectorsMs = performance.now() - started;

// --- API checks on a real AWS document -------------------------------------------------------------
// The one non-debug evervault document: PCR0 and the time to check it at come from the
// fixtures' expected.json, never from the core under test.
const awsName = "att_2022-10-13_evervault_nondebug.cose";
if (haveFixtures && existsSync(join(fixturesDir, "nitro", awsName)) &&
    existsSync(join(fixturesDir, "nitro", "expected.json"))) {
  const expected = JSON.parse(readFileSync(join(fixturesDir, "nitro", "expected.json"), "utf8"));
  const entry = expected.documents.find((d) => d.file === awsName);
  const pcr0 = entry.pcrs["0"];
  const at = Number(entry.verify_at_ms);
  const doc = fixture(awsName);
  const good = await Trust.parse(`roots = ["aws-nitro"]\n[[accept]]\nPCR0 = "${pcr0}"\n`);
  const att = await verifyAttestation(doc, good, { at });
  check("api verifyAttestation accepts the AWS document", bytesToHex(att.pcrs[0]) === pcr0.toLowerCase());
  check("api attestation.timestamp is a Date", att.timestamp instanceof Date && att.timestamp.getTime() === Number(entry.timestamp_ms),
    `${att.timestamp?.getTime?.()} vs ${entry.timestamp_ms}`);
  check("api attestation.moduleId", typeof att.moduleId === "string" && att.moduleId.length > 0);
  check("api attestation.upgrades/genesis (unchained)", att.upgrades === 0 && att.genesis === null);

  // The real clock: a 2022 document is long expired.
  try {
    await verifyAttestation(doc, good);
    check("api the real clock rejects a 2022 document", false, "accepted");
  } catch (e) {
    check("api the real clock rejects a 2022 document", e instanceof EnclaviaError && e.status === "expired", `${e.status}: ${e.message}`);
  }
  // One flipped bit in the signature.
  const tampered = new Uint8Array(doc);
  tampered[tampered.length - 10] ^= 1;
  try {
    await verifyAttestation(tampered, good, { at });
    check("api a flipped signature bit is refused", false, "accepted");
  } catch (e) {
    check("api a flipped signature bit is refused", e instanceof EnclaviaError && e.status === "verify_failed", `${e.status}: ${e.message}`);
  }
  // Another PCR0.
  const other = await Trust.parse(`roots = ["aws-nitro"]\n[[accept]]\nPCR0 = "${"ab".repeat(48)}"\n`);
  try {
    await verifyAttestation(doc, other, { at });
    check("api a wrong PCR0 is a policy_violation", false, "accepted");
  } catch (e) {
    check("api a wrong PCR0 is a policy_violation", e instanceof EnclaviaError && e.status === "policy_violation", `${e.status}: ${e.message}`);
  }
  good.free();
  other.free();
} else {
  skipped++;
  console.log(`skip api checks: no ${awsName} in ${fixturesDir}/nitro`);
}

// Trust files the core refuses, without any document.
for (const [name, toml, files] of [
  ["no roots", `[[accept]]\nPCR0 = "${"00".repeat(48)}"\n`, {}],
  ["a missing root file", `roots = ["root.pem"]\n[[accept]]\nPCR0 = "${"00".repeat(48)}"\n`, {}],
  ["a root file that is not PEM", `roots = ["root.pem"]\n[[accept]]\nPCR0 = "${"00".repeat(48)}"\n`, { "root.pem": "not a certificate" }],
]) {
  try {
    await Trust.parse(toml, { files });
    check(`api Trust.parse refuses ${name}`, false, "accepted");
  } catch (e) {
    check(`api Trust.parse refuses ${name}`, e instanceof EnclaviaError && typeof e.status === "string" && e.message.length > 0,
      String(e));
  }
}

const total = performance.now() - started;
console.log(`${passed} passed, ${failures} failed, ${skipped} skipped; ${ran} vectors in ${vectorsMs.toFixed(0)} ms (wasm load included), total ${total.toFixed(0)} ms`);
if (ran === 0) {
  console.log("FAIL no conformance case ran");
  process.exit(1);
}
process.exit(failures === 0 ? 0 : 1);
