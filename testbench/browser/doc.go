// Package browser drives Debian's chromium headless through playwright-core
// (npm) for brana's end-to-end browser tests. No browser is ever downloaded:
// lib.js launches /usr/bin/chromium.
//
// A test writes a node script that loads lib.js (require('lib.js'); [Run]
// puts this directory and its node_modules on NODE_PATH), which launches
// chromium with --no-sandbox (CI runs as root), opens pages with a desktop
// or phone viewport that accept a self-signed certificate, and saves
// screenshots to the directory in BRANA_SCREENSHOTS. [Run] runs a script to
// the end; [Start] returns a [Script] that the test talks to while it runs:
// the script emits JSON lines (lib.js emit, [Script.Await]) and waits for
// lines on stdin (lib.js waitFor, [Script.Send]).
//
// playwright-core is pinned in package.json and package-lock.json and
// installed into node_modules by scripts/install-test-deps (npm ci), which
// also installs Debian's chromium. [Require] skips a test when chromium,
// node or playwright-core is missing, or fails it when the environment
// variable CI is set.
package browser
