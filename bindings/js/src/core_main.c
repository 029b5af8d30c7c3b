/* SPDX-License-Identifier: Apache-2.0 */
/* The wasm module has no entry point (linked with --no-entry): its interface is the exported C
 * ABI functions (bindings/js/src/index.js). This file exists because emscripten links an
 * executable target from at least one source. */
typedef int enclavia_core_js_no_entry;
