// Package bench measures brana's inline Modbus path against baselines
// measured in the same run, as DESIGN.md "Budgets" asks: the added latency of
// the gateway (policy and audit on) must stay within a ratio of a plain TCP
// relay, and its throughput must stay above a ratio of the relay's.
//
// The harness has three parts, all on 127.0.0.1:
//
//   - a simulated PLC (testbench/modbussim) that every path ends at;
//   - [Relay], the baseline: accept, dial the PLC, io.Copy both ways. It is
//     what the cheapest possible middlebox costs (two extra socket hops);
//   - a load generator: N clients, each with its own TCP connection and one
//     request outstanding, sending a fixed mix of hand-built Modbus TCP frames
//     (70 % FC 3 read of 10 holding registers, 20 % FC 4 read of 10 input
//     registers, 10 % FC 6 write of an allowed value to an allowed setpoint
//     register), checking every response (transaction id, protocol id,
//     length, unit, function code, no exception, byte count or echo) and
//     recording every latency into a preallocated slice.
//
// BenchmarkInline runs the same mix over four paths in one process: direct to
// the PLC, through the relay, and through a real gateway (gwtest.Start) with a
// policy that allows the mix and the audit log on in batch durability, once
// with a target of 4 downstream connections and once with 1. One benchmark
// iteration (b.N) is one round, in which every path runs for the same fixed
// window; the order of the paths rotates from round to round so that machine
// noise hits all of them alike. docs/PERFORMANCE.md has the command, the
// figures and the goals.
//
// BenchmarkFootprint (Linux) measures the real binary instead: it builds
// cmd/brana as scripts/build-all does, runs `brana run -c FILE` as a child
// process and reports its start-up time (exec to READY=1 on NOTIFY_SOCKET),
// its RSS idle and with 200 live sessions (from /proc), and what 1,000
// commands add to the audit log on disk, with the fdatasyncs that cost.
package bench
