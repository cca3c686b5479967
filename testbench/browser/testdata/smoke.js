// smoke.js — open URL at both viewports, read #hello, the page's width and
// the certificate fingerprint, save a screenshot of each, then wait for
// "done" on stdin.
'use strict';
const b = require('lib.js');

b.main(async (browser) => {
  const url = process.env.URL;
  for (const vp of ['desktop', 'phone']) {
    const page = await b.newPage(browser, vp);
    const resp = await page.goto(url);
    const text = await page.locator('#hello').innerText();
    const width = await page.evaluate(() => window.innerWidth);
    const fingerprints = await b.certificateSHA256(page, new URL(url).origin);
    const file = await b.screenshot(page, 'smoke-' + vp);
    b.emit('page', { viewport: vp, status: resp.status(), text, width, fingerprints, file });
    await page.context().close();
  }
  b.emit('ready');
  await b.waitFor('done');
});
