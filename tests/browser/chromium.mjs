// SPDX-License-Identifier: Apache-2.0
// chromium.mjs: Debian's chromium (/usr/bin/chromium, never a downloaded browser) under
// playwright-core, with the flags that keep it off the network: no background networking,
// component updates, sync or QUIC, and a fresh profile. Shared by example_test.mjs and
// bench/bindings.sh (bench.mjs).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const executablePath = process.env.ENCLAVIA_CHROMIUM || '/usr/bin/chromium';

// launch returns {context, close}; close() also deletes the profile.
export async function launch() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'enclavia-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1100, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

// open loads `url` in a new page, echoing the page's console errors and uncaught exceptions
// (prefixed "page:") so that a failing test says why.
export async function open(context, url) {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.error(`page: ${m.text()}`); });
  page.on('pageerror', (e) => console.error(`page: uncaught ${e.message}`));
  await page.goto(url);
  return page;
}
