// SPDX-License-Identifier: Apache-2.0
// patch-esm.mjs FILE makes emscripten 3.1.6's ES module output (EXPORT_ES6 + ENVIRONMENT node)
// loadable by Node: that version still uses CommonJS's `require` and `__dirname`, which an ES
// module does not have (fixed in later emscripten). Defines both at the top of the module, for
// Node only (the browser never reaches the code that uses them). Run after each link; refuses a
// file that does not look as expected, so an emscripten upgrade is noticed.
import { readFileSync, writeFileSync } from "node:fs";

const file = process.argv[2];
const marker = "// enclavia: node shims";
let text = readFileSync(file, "utf8");
if (!text.includes(marker)) {
  if (!text.includes("__dirname") || !text.includes("import.meta.url")) {
    console.error(`patch-esm: ${file} does not look like emscripten 3.1.6 ES module output`);
    process.exit(1);
  }
  const shim = `${marker}
const __enclavia_node = typeof process == "object" && typeof process.versions == "object" && !!process.versions.node;
const require = __enclavia_node ? (await import("node:module")).createRequire(import.meta.url) : undefined;
const __dirname = __enclavia_node ? require("node:path").dirname(require("node:url").fileURLToPath(import.meta.url)) : "";
`;
  text = shim + text;
  writeFileSync(file, text);
}
