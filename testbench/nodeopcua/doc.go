// Package nodeopcua drives node-opcua (the node-opcua-client npm package), an
// OPC UA client stack nobody at brana wrote, from Go tests.
//
// client.js connects with security None and an anonymous user, runs a JSON
// list of operations on one session (browse, read, write, call, subscribe)
// and prints one JSON result per line; [Run] starts it with node and decodes
// the results. The npm dependencies are pinned in package.json and
// package-lock.json and installed into node_modules by
// scripts/install-test-deps (npm ci). [Require] skips a test when node or
// node_modules is missing, or fails it when the environment variable CI is
// set.
//
// TestNodeOPCUAAgainstSimulator checks that testbench/opcuasim interoperates
// with this independent stack.
package nodeopcua
