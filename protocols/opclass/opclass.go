// Package opclass names the operation classes that every protocol terminator
// sorts requests into (read, write, diagnose, control, program, unknown), so
// that policy rules speak one vocabulary for Modbus and OPC UA alike.
package opclass

import "fmt"

// Class is the operation class of one request. The order is by rising risk,
// except Unknown, which is denied unless a rule names it.
type Class uint8

const (
	Unknown Class = iota
	Read
	Diagnose
	Write
	Control
	Program
	numClasses
)

var names = [numClasses]string{
	Unknown:  "unknown",
	Read:     "read",
	Diagnose: "diagnose",
	Write:    "write",
	Control:  "control",
	Program:  "program",
}

// String returns the lower-case name used in config, audit records and the CLI.
func (c Class) String() string {
	if c < numClasses {
		return names[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Parse turns a config or CLI name into a Class.
func Parse(s string) (Class, error) {
	for i, n := range names {
		if n == s {
			return Class(i), nil
		}
	}
	return Unknown, fmt.Errorf("opclass: unknown operation class %q (want read, write, diagnose, control, program or unknown)", s)
}

// Set is a set of classes as a bit mask; the zero Set is empty.
type Set uint8

// Has reports whether c is in s.
func (s Set) Has(c Class) bool { return s&(1<<c) != 0 }

// With returns s with c added.
func (s Set) With(c Class) Set { return s | 1<<c }

// All lists every class in order, for help texts and tests.
func All() []Class {
	return []Class{Unknown, Read, Diagnose, Write, Control, Program}
}
