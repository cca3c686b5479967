// Package scenario holds brana's end-to-end tests: each starts the real
// gateway from a config string (testbench/gwtest) in front of simulated PLCs
// (testbench/modbussim) or independent Modbus peers (simonvetter/modbus,
// mbpoll, pymodbus), on loopback and port 0, and asserts on what reached the
// PLC (its request counters and tables) and on the audit log (JSON Lines).
//
// Clients from 127.0.0.1 are the party "monitoring" (read-only) and from
// 127.0.0.2 the party "engineering" (may write a setpoint window), so tests
// that need a second party dial with a bound source address.
//
// External tools (mbpoll, socat, /usr/bin/python3 with pymodbus) are
// installed by `make test-deps`. Without them the tests that need them skip,
// unless the environment variable CI is set: then they fail.
package scenario
