// Package policy owns who may do what through brana: the parties (vendors,
// integrators, operator staff, local SCADA) and the allow-rules that say which
// party may use which operation classes on which target, down to Modbus
// function codes, unit ids, address ranges and value bounds.
//
// A [Spec] (the policy part of the YAML config) is compiled once, at load or
// reload, by [Compile]: every error is reported with the path of the field
// that caused it, names are resolved, rules are indexed by party and target,
// and the denial of every rule is built in advance. Deciding is then a pure
// function of the compiled [Policy] and one request ([Policy.DecideModbus]):
// no I/O, no locks, no allocation, on the allow and on the deny path.
//
// Deny by default: an unidentified party is refused, and a request is allowed
// only when a rule names its party, its target, its operation class and fits
// every restriction the rule has. A denial is a [*Denial] error carrying a
// [Reason] and the rule that came closest to allowing the request, so that
// each protocol front can translate it (errors.As) into its own answer, and
// [Policy.ExplainModbus] can say rule by rule why.
//
// This cut identifies parties by source network and decides by rules only.
// Jurisdiction evidence and approvals (DESIGN.md, "Policy model") come later;
// they add reasons and steps to the same decision.
package policy
