// SPDX-License-Identifier: Apache-2.0
// example_test.mjs SERVER_URL PCR0 RESPONSE OUT_DIR: the Chromium half of example_test.sh.
//   1. index.html with the right trust file: state ok, the PCR0 shown on the page equals PCR0,
//      the enclave's answer (RESPONSE) is shown;
//   2. ?trust=wrong: a visible refusal naming policy_violation, and no PCR or response shown;
//   3. conformance.html: every vector of tests/conformance ran, each verdict equal to its expect.
// Screenshots: OUT_DIR/browser-example.png, -refused.png, -conformance.png. Prints "ok ..." /
// "FAIL ..." lines; exits 1 if any check failed.
import path from 'node:path';
import { launch, open } from './chromium.mjs';

const [server, pcr0, response, out] = process.argv.slice(2);
let failed = 0;
function check(name, ok, detail = '') {
  console.log(`${ok ? 'ok' : 'FAIL'} ${name}${ok || !detail ? '' : `: ${detail}`}`);
  if (!ok) failed++;
}

async function result(page, timeout = 30_000) {
  await page.waitForFunction(() => window.enclaviaResult !== undefined, null, { timeout });
  return page.evaluate(() => window.enclaviaResult);
}

async function shot(page, name) {
  const file = path.resolve(out, name);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
}

const browser = await launch();
try {
  // 1. The right trust file.
  let page = await open(browser.context, `${server}examples/browser/`);
  let r = await result(page);
  check('right trust: verified', r.state === 'ok', JSON.stringify(r.error));
  const shownPcr0 = await page.locator('#pcrs tr', { hasText: 'PCR0' }).locator('td.hex').textContent()
    .catch(() => '');
  check('right trust: the page shows PCR0 of the trust file', shownPcr0 === pcr0, `shown "${shownPcr0}"`);
  check('right trust: PCR0 reported', r.pcrs?.[0] === pcr0);
  const shownResponse = await page.textContent('#response');
  check('right trust: the enclave answered through the channel',
    r.response?.status === 200 && r.response?.text.trim() === response && shownResponse.includes(response),
    JSON.stringify(r.response));
  check('right trust: status visible', await page.isVisible('#status[data-state="ok"]'));
  await shot(page, 'browser-example.png');
  await page.close();

  // 2. A wrong PCR0: refused, visibly, before any request.
  page = await open(browser.context, `${server}examples/browser/?trust=wrong`);
  r = await result(page);
  check('wrong PCR0: refused', r.state === 'refused', JSON.stringify(r));
  check('wrong PCR0: status policy_violation', r.error?.status === 'policy_violation', JSON.stringify(r.error));
  const status = page.locator('#status');
  check('wrong PCR0: the refusal is visible and names policy_violation',
    (await status.isVisible()) && (await status.textContent()).includes('policy_violation'),
    await status.textContent());
  check('wrong PCR0: no PCR and no response shown',
    (await page.locator('#pcrs td').count()) === 0 && (await page.textContent('#response')) === '');
  await shot(page, 'browser-example-refused.png');
  await page.close();

  // 3. The conformance vectors, in the browser.
  page = await open(browser.context, `${server}examples/browser/conformance.html`);
  await page.waitForFunction(() => window.conformanceResult !== undefined, null, { timeout: 60_000 });
  const c = await page.evaluate(() => window.conformanceResult);
  check('conformance: loaded', !c.error, c.error);
  const cases = c.cases || [];
  check('conformance: vectors ran', cases.length > 0, `${cases.length} cases`);
  const wrong = cases.filter((k) => k.verdict !== k.expect);
  check(`conformance: ${cases.length - wrong.length}/${cases.length} verdicts equal the vectors'`,
    wrong.length === 0, wrong.slice(0, 5).map((k) => `${k.name}: got ${k.verdict}, want ${k.expect}`).join('; '));
  const skipped = c.skipped || [];
  console.log(`conformance: ${cases.length} ran in Chromium, ${skipped.length} skipped (no shared fixtures)`);
  if (process.env.ENCLAVIA_REQUIRE_FIXTURES === '1') {
    check('conformance: no case skipped', skipped.length === 0, skipped.join(', '));
  }
  await shot(page, 'browser-example-conformance.png');
  await page.close();
} catch (e) {
  check('chromium run', false, e.message);
} finally {
  await browser.close();
}
process.exit(failed === 0 ? 0 : 1);
