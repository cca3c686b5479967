// Package nodeopcua drives node-opcua (the node-opcua-client and
// node-opcua-server npm packages), an OPC UA stack nobody at brana wrote,
// from Go tests.
//
// client.js runs a JSON list of operations on one session (browse, read,
// readMany, write, writeMany, registerNodes, unregisterNodes, call,
// subscribe) and prints one JSON result per line; [Run] starts it with node
// and decodes the results. It connects with security None and an anonymous
// user unless the BRANA_OPCUA_* environment variables say otherwise;
// [RunWith] sets them from [ClientOptions].
//
// server.js is a downstream PLC that offers only Basic256Sha256 with
// SignAndEncrypt and one UserName identity; [StartServer] runs it for a test
// and records the writes and method calls that reach it.
//
// The npm dependencies are pinned in package.json and package-lock.json and
// installed into node_modules by scripts/install-test-deps (npm ci).
// [Require] skips a test when node or node_modules is missing, or fails it
// when the environment variable CI is set.
//
// TestNodeOPCUAAgainstSimulator checks that testbench/opcuasim interoperates
// with this independent stack; the TestServer tests check server.js against
// node-opcua's client and against gopcua.
package nodeopcua
