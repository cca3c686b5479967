// console.js — an engineer's morning in brana's console, driven through
// chromium by TestConsoleEndToEnd (console_test.go), which plays the vendor
// over Modbus and tells this script when to go on.
//
// Environment: URL (the console), REQUEST (the pending access request),
// PASSWORD_SUFFIX (password = user + suffix), BRANA_SCREENSHOTS.
'use strict';
const b = require('lib.js');

const url = process.env.URL;
const req = process.env.REQUEST;
const pw = (user) => user + process.env.PASSWORD_SUFFIX;

async function login(browser, user, viewport = 'desktop') {
  const page = await b.newPage(browser, viewport);
  await page.goto(url + '/requests');
  await page.waitForURL((u) => u.pathname === '/login'); // not logged in yet: sent to the login page
  await page.fill('#username', user);
  await page.fill('#password', pw(user));
  await Promise.all([page.waitForURL((u) => u.pathname === '/requests'), page.click('#login-submit')]);
  await page.locator('#whoami').waitFor();
  return page;
}

// shot saves the page at the top, without the keyboard focus ring of the
// last click.
async function shot(page, name) {
  await page.evaluate(() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); });
  return b.screenshot(page, name);
}

b.main(async (browser) => {
  // Log in; the inbox shows the request that the vendor's held write filed,
  // with the PRC findings highlighted.
  const alice = await login(browser, 'alice');
  const card = alice.locator(`#req-${req}`);
  await card.waitFor();
  b.emit('inbox', {
    whoami: await alice.locator('#whoami').innerText(),
    card: await card.innerText(),
    prcBadge: await card.locator('h2 .badge.prc').count(),
    prcFindings: await card.locator('.findings li.prc').count(),
    fingerprints: await b.certificateSHA256(alice, new URL(url).origin),
  });
  await shot(alice, 'inbox');

  const phone = await login(browser, 'alice', 'phone');
  await phone.locator(`#req-${req}`).waitFor();
  await shot(phone, 'inbox-phone');
  b.emit('phone', {
    width: await phone.evaluate(() => window.innerWidth),
    scrollWidth: await phone.evaluate(() => document.documentElement.scrollWidth),
  });
  await phone.context().close();

  // Approve for 30 minutes instead of the two hours asked for.
  await alice.click(`#title-${req} a`);
  await alice.waitForURL((u) => u.pathname === `/requests/${req}`);
  await alice.selectOption(`#for-${req}`, '30m');
  await alice.fill(`#note-${req}`, 'ok for the relay settings, 30 minutes');
  await alice.click(`#req-${req} button.approve`);
  await alice.waitForURL((u) => u.pathname === '/requests'); // back in the inbox
  const first = alice.locator(`#req-${req} .steps li.first`);
  b.emit('approved', {
    flash: await alice.locator('#flash').innerText(),
    state: await alice.locator(`#req-${req} .state`).innerText(),
    first: await first.innerText(),
  });

  // Two-person rule: bob approves as the second engineer.
  const bob = await login(browser, 'bob');
  await bob.goto(`${url}/requests/${req}`);
  await bob.locator(`#req-${req} .steps li.first`).waitFor();
  await shot(bob, 'request');
  await bob.click(`#req-${req} button.approve`);
  await bob.waitForURL((u) => u.pathname === '/requests');
  b.emit('granted', { flash: await bob.locator('#flash').innerText() });
  await bob.context().close();

  // The vendor's session: listed, then watched live.
  const session = await b.waitFor('session');
  await alice.click('nav a[href="/sessions"]');
  const row = alice.locator(`#sessions tr[data-session-id="${session}"]`);
  await row.waitFor();
  b.emit('sessions', { row: await row.innerText() });
  await shot(alice, 'sessions');
  await alice.click(`#sessions tr[data-session-id="${session}"] a[href="/sessions/${session}"]`);
  await alice.waitForURL((u) => u.pathname === `/sessions/${session}`);
  await alice.waitForFunction(() => /Live/.test(document.getElementById('stream-status').textContent));
  b.emit('watching');

  // The test names the text of the last command it sent.
  const last = await b.waitFor('sent');
  await alice.waitForFunction((text) => Array.from(document.querySelectorAll('#stream li')).some((li) => li.textContent.includes(text)), last);
  b.emit('stream', {
    items: await alice.locator('#stream li').allInnerTexts(),
    decisions: await alice.locator('#stream li').evaluateAll((lis) => lis.map((li) => li.dataset.decision || '')),
  });
  await shot(alice, 'session');

  // Kill the session; the vendor's connection drops (the test checks) and
  // the stream says so.
  await alice.fill('#reason', 'work done, closing the vendor session');
  await alice.click('#kill button.kill');
  await alice.waitForURL((u) => u.pathname === '/sessions');
  b.emit('killed', { flash: await alice.locator('#flash').innerText() });

  // Find the session in the audit log, then its whole story.
  await b.waitFor('audit');
  await alice.goto(url + '/audit');
  await alice.fill('#session', session);
  await Promise.all([alice.waitForURL((u) => u.pathname === '/audit' && u.search !== ''), alice.click('#search-submit')]);
  await alice.locator('#result-count').waitFor();
  b.emit('audit', {
    count: await alice.locator('#result-count').innerText(),
    rows: await alice.locator('#results tbody tr').allInnerTexts(),
  });
  await shot(alice, 'audit');
  await alice.locator(`#results a[href="/audit/sessions/${session}"]`).first().click();
  await alice.waitForURL((u) => u.pathname === `/audit/sessions/${session}`);
  b.emit('story', { text: await alice.locator('main').innerText() });
  await shot(alice, 'story');

  for (const name of ['parties', 'targets', 'policy']) {
    await alice.click(`nav a[href="/${name}"]`);
    await alice.waitForURL((u) => u.pathname === `/${name}`);
    b.emit(name, { text: await alice.locator('main').innerText() });
    await shot(alice, name);
  }
});
