// lib.js — helpers for brana's browser test scripts: Debian's chromium
// headless driven by playwright-core (no browser is ever downloaded).
//
// Environment (set by the Go package testbench/browser):
//   BRANA_CHROMIUM     the browser (default /usr/bin/chromium)
//   BRANA_SCREENSHOTS  directory for screenshots; unset: none are saved
//   BRANA_TIMEOUT_MS   default timeout of page actions (10000)
//
// A script does
//   const b = require('./lib.js');
//   b.main(async (browser) => {
//     const page = await b.newPage(browser, 'desktop');
//     await page.goto(process.env.URL);
//     await b.screenshot(page, 'home');
//     b.emit('title', {title: await page.title()});
//   });
// and talks to its Go test with emit (one JSON line on stdout) and waitFor
// (one line on stdin).
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const { chromium } = require('playwright-core');

const executablePath = process.env.BRANA_CHROMIUM || '/usr/bin/chromium';
const timeout = Number(process.env.BRANA_TIMEOUT_MS || 10000);

// Viewports: a phone held upright and a control-room desktop.
const viewports = {
  phone: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
  desktop: { viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 },
};

async function launch() {
  return chromium.launch({
    executablePath,
    headless: true,
    // CI runs as root, where chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

// newContext opens a browser context with the named viewport ("desktop" or
// "phone"); the console's self-signed certificate is accepted.
async function newContext(browser, viewport = 'desktop', opts = {}) {
  const vp = viewports[viewport];
  if (!vp) throw new Error(`unknown viewport ${viewport}`);
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, ...vp, ...opts });
  ctx.setDefaultTimeout(timeout);
  return ctx;
}

// newPage opens a page in a new context with the named viewport.
async function newPage(browser, viewport = 'desktop', opts = {}) {
  const ctx = await newContext(browser, viewport, opts);
  const page = await ctx.newPage();
  await watchCertificates(page);
  return page;
}

// screenshot saves page as NAME.png in BRANA_SCREENSHOTS and returns the
// file, or null when no directory is set.
async function screenshot(page, name, opts = {}) {
  const dir = process.env.BRANA_SCREENSHOTS;
  if (!dir) return null;
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name + '.png');
  await page.screenshot({ path: file, ...opts });
  return file;
}

const cdpSessions = new WeakMap();

// watchCertificates lets certificateSHA256 see the certificates of what page
// loads from now on; newPage does it.
async function watchCertificates(page) {
  if (cdpSessions.has(page)) return;
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  cdpSessions.set(page, cdp);
}

// certificateSHA256 returns the SHA-256 fingerprints (hex, lower case) of
// the certificate chain that page was served with from origin
// (e.g. "https://127.0.0.1:8443"), leaf first.
async function certificateSHA256(page, origin) {
  const cdp = cdpSessions.get(page);
  if (!cdp) throw new Error('certificateSHA256: watchCertificates was not called before loading the page');
  const { tableNames } = await cdp.send('Network.getCertificate', { origin });
  return tableNames.map((der) => crypto.createHash('sha256').update(Buffer.from(der, 'base64')).digest('hex'));
}

// emit prints {"signal": name, ...data} as one line on stdout.
function emit(name, data = {}) {
  process.stdout.write(JSON.stringify({ signal: name, ...data }) + '\n');
}

let lines = null;
const waiting = [];
const queued = [];

// waitFor resolves with the next line on stdin, which must be name (or start
// with name and a space: the rest is returned).
function waitFor(name) {
  if (!lines) {
    lines = readline.createInterface({ input: process.stdin });
    lines.on('line', (l) => {
      if (waiting.length) waiting.shift()(l);
      else queued.push(l);
    });
    lines.on('close', () => {
      while (waiting.length) waiting.shift()(null);
    });
  }
  return new Promise((resolve, reject) => {
    const check = (l) => {
      if (l === null) return reject(new Error(`stdin closed while waiting for ${name}`));
      if (l === name) return resolve('');
      if (l.startsWith(name + ' ')) return resolve(l.slice(name.length + 1));
      reject(new Error(`waiting for ${name}, got ${JSON.stringify(l)}`));
    };
    if (queued.length) check(queued.shift());
    else waiting.push(check);
  });
}

// main launches chromium, runs fn(browser) and exits 0, or prints the error
// and exits 1; the browser is closed either way.
function main(fn) {
  (async () => {
    let browser;
    let code = 0;
    try {
      browser = await launch();
      await fn(browser);
    } catch (e) {
      process.stderr.write(`${(e && e.stack) || e}\n`);
      code = 1;
    } finally {
      if (browser) await browser.close().catch(() => {});
      if (lines) lines.close();
    }
    process.exit(code);
  })();
}

module.exports = { executablePath, viewports, launch, newContext, newPage, screenshot, watchCertificates, certificateSHA256, emit, waitFor, main };
