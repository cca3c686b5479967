package bench

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/brana-ot/brana/testbench/gwtest"
	"github.com/brana-ot/brana/testbench/modbussim"
)

// gatewayConfig is the gateway under test; %[1]s is the simulated PLC,
// %[2]s the audit durability.
//
// Sizing: a target's `connections` are the downstream connections all
// clients share, and `queue` is how many requests may wait for one of them
// (config.Target). A request that finds the queue full is answered with
// exception 06, so queue must be at least clients − connections; 128 covers
// the 64-client case. 4 connections with 8 requests in flight on each
// (`pipeline`) is what a PLC that allows pipelining offers a gateway; the
// 1-connection, 1-in-flight target shows what a strict PLC costs under load.
// max_connections is raised above the listener default (64) because each
// path keeps its clients connected for the whole benchmark.
const gatewayConfig = `version: 1
gateway:
  name: bench
  data_dir: data
audit:
  durability: %[2]s

listeners:
  - name: bench-c4
    address: 127.0.0.1:0
    max_connections: 256
    routes:
      - units: [1]
        target: feeder-c4
  - name: bench-c1
    address: 127.0.0.1:0
    max_connections: 256
    routes:
      - units: [1]
        target: feeder-c1

targets:
  - name: feeder-c4
    transport: tcp
    address: %[1]s
    timeout: 2s
    connections: 4
    pipeline: 8
    queue: 128
  - name: feeder-c1
    transport: tcp
    address: %[1]s
    timeout: 2s
    connections: 1
    queue: 128

parties:
  - id: bench
    name: "Benchmark load generator"
    organisation: "brana testbench"
    kind: scada
    networks: [127.0.0.1/32]

rules:
  - name: bench-read
    description: "The mix's reads: holding 0-19, input 0-31."
    parties: [bench]
    targets: [feeder-c4, feeder-c1]
    classes: [read]
    functions: [3, 4]
    units: [1]
    ranges:
      holding: ["0-19"]
      input: ["0-31"]
  - name: bench-setpoints
    description: "The mix's writes: setpoint window 100-119, values 0..5000."
    parties: [bench]
    targets: [feeder-c4, feeder-c1]
    classes: [write]
    functions: [6]
    units: [1]
    ranges:
      holding: ["100-119"]
    values: {min: 0, max: 5000}
`

// Path names, in the order the first round runs them.
const (
	pathDirect  = "direct"
	pathRelay   = "relay"
	pathBrana   = "brana"    // target with connections: 4, pipeline: 8
	pathBranaC1 = "brana-c1" // target with connections: 1
)

type path struct {
	name    string
	addr    string
	clients []*client
	stats   Stats
}

// env is one simulated PLC, the relay and a gateway, with clients connected
// to every path. Everything stops when the test or benchmark ends.
type env struct {
	plc   *modbussim.PLC
	gw    *gwtest.Gateway
	paths []*path
}

func newEnv(tb testing.TB, clients int) *env { return newEnvDurability(tb, clients, "batch") }

// newEnvDurability is newEnv with the gateway's audit durability set.
func newEnvDurability(tb testing.TB, clients int, durability string) *env {
	tb.Helper()
	plc, err := modbussim.New(map[byte]string{unitID: "feeder"})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); plc.ServeTCP(ctx, ln) }()
	tb.Cleanup(func() { cancel(); <-served })
	sim := ln.Addr().String()

	relay, err := StartRelay(sim)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { relay.Close() })

	gw := gwtest.Start(tb, fmt.Sprintf(gatewayConfig, sim, durability))

	e := &env{plc: plc, gw: gw}
	for _, p := range []struct{ name, addr string }{
		{pathDirect, sim},
		{pathRelay, relay.Addr()},
		{pathBrana, gw.ModbusAddr("bench-c4")},
		{pathBranaC1, gw.ModbusAddr("bench-c1")},
	} {
		cs, err := dialClients(p.addr, clients)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { closeClients(cs) })
		e.paths = append(e.paths, &path{name: p.name, addr: p.addr, clients: cs})
	}
	return e
}

func (e *env) path(name string) *path {
	for _, p := range e.paths {
		if p.name == name {
			return p
		}
	}
	panic("bench: no path " + name)
}
