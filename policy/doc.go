// Package policy owns who may do what through brana: the parties (vendors,
// integrators, operator staff, local SCADA) and the allow-rules that say which
// party may use which operation classes on which target, down to Modbus
// function codes, unit ids, address ranges and value bounds.
//
// A [Spec] (the policy part of the YAML config) is compiled once, at load or
// reload, by [Compile]: every error is reported with the path of the field
// that caused it, names are resolved, rules are indexed by party and target,
// and the denial of every rule is built in advance. Evaluating a request is
// then a pure function of the compiled [Policy] and the request
// ([Policy.DecideModbus]): no I/O, no locks, no allocation, on the allow and
// on the deny path.
//
// Deny by default: an unidentified party is refused, and a request is allowed
// only when a rule allows each of its accesses. A Modbus request has one or
// two accesses:
//   - a write (FC 5, 6, 15, 16, 22, and the write part of FC 23): the
//     request's class over its write range, with the values it writes;
//   - a read of an address range (FC 1..4, 24, and the read part of FC 23):
//     class read over the read range;
//   - anything else (diagnose, control, program, unknown, and reads without
//     an address range such as FC 7, 17 or 43/14): the request's class alone.
//
// A rule allows an access when it names the party (or "*") and the target
// (or "*"), has the access's class, and, where it sets them, lists the
// function code and the unit id (unit 0, broadcast, only if the rule lists 0
// or no units), holds the whole address range inside one of its ranges for
// that table (a table it leaves out has no allowed address), and bounds every
// written value (a mask write, FC 22, cannot be bounded and is refused). The
// first allowing rule in file order wins. When none allows, the denial is a
// [*Denial] error with the [Reason] of the rule that got furthest, so that
// each protocol front can translate it (errors.As) into its own answer, and
// [Policy.ExplainModbus] says rule by rule why.
//
// Jurisdiction (DESIGN.md, "Policy model"). Each party carries evidence:
// where it is established, who controls it (other parties, often of kind
// owner, followed up the chain; a cycle is a compile error), where its
// management sits, where its staff operate from, where its data goes, its
// listings, the relays it uses, and when the evidence must be reviewed.
// Compile judges every party once ([Party.Verdict], [Party.Findings]) from
// that evidence, its controllers' and the listings of public high-risk
// entities (its own, and those given with [WithListings]: the built-in ones
// and a signed bundle's, see package bundle). At session start
// [Policy.Admit] adds the run-time signals ([Signals]: source country and
// AS from an offline database, see package geoip; certificate country;
// relay; clock; bundle expiry) and applies the decision order: no party
// → deny; a block listing on the chain → deny; PRC-managed → approval
// (strict: deny); a PRC finding at run time → approval (strict: deny) with
// the conflict recorded; anything unknown → approval; otherwise the rules
// decide. Every [Admission] carries its findings and the step that decided,
// for the audit record and [Policy.Explain]. [Policy.DecideAdmitted] puts
// the admission in front of each command's decision, still without
// allocating.
package policy
