package modbus

import (
	"fmt"

	"github.com/brana-ot/brana/protocols/opclass"
)

// Function codes this package decodes (application protocol spec, section 6),
// plus Schneider's UMAS.
const (
	FuncReadCoils                  byte = 0x01
	FuncReadDiscreteInputs         byte = 0x02
	FuncReadHoldingRegisters       byte = 0x03
	FuncReadInputRegisters         byte = 0x04
	FuncWriteSingleCoil            byte = 0x05
	FuncWriteSingleRegister        byte = 0x06
	FuncReadExceptionStatus        byte = 0x07
	FuncDiagnostics                byte = 0x08
	FuncGetCommEventCounter        byte = 0x0B
	FuncGetCommEventLog            byte = 0x0C
	FuncWriteMultipleCoils         byte = 0x0F
	FuncWriteMultipleRegisters     byte = 0x10
	FuncReportServerID             byte = 0x11
	FuncReadFileRecord             byte = 0x14
	FuncWriteFileRecord            byte = 0x15
	FuncMaskWriteRegister          byte = 0x16
	FuncReadWriteMultipleRegisters byte = 0x17
	FuncReadFIFOQueue              byte = 0x18
	FuncEncapsulatedInterface      byte = 0x2B // MEI transport; Sub is the MEI type
	FuncUMAS                       byte = 0x5A // Schneider UMAS; Sub is the UMAS sub-function
)

// MEI types carried by FC 43.
const (
	MEICANopen      = 13 // CANopen general reference: unknown (opaque, can write objects)
	MEIReadDeviceID = 14 // read device identification
)

// Classification table. A request's class decides which policy rules can
// allow it; anything not named here is Unknown and denied unless a rule names
// it, so the table errs towards the riskier class when in doubt.
//
//	read:     1, 2, 3, 4, 7 (exception status), 11, 12 (comm event counter/log),
//	          17 (report server id), 20 (read file record), 24 (read FIFO),
//	          43 with MEI type 14 (read device identification)
//	write:    5, 6, 15, 16, 22 (mask write), 23 (read/write: its write part decides)
//	diagnose: 8 with sub-function 0 (echo), 2 (diagnostic register) and 11..18
//	          (counter reads)
//	control:  8 with sub-functions that change state: 1 (restart communications),
//	          3 (change ASCII delimiter), 4 (force listen-only), 10 (clear
//	          counters), 20 (clear overrun counter); 90 (UMAS) by default, e.g.
//	          0x10/0x11 take/release reservation
//	program:  21 (write file record); 90 with UMAS sub-functions 0x30..0x35
//	          (upload/download), 0x40 (start), 0x41 (stop); 40, 42, 125, 126
//	          (used by vendor programming tools)
//	unknown:  everything else, including other FC 8 sub-functions, FC 43 with
//	          MEI type 13 (CANopen), and any code with the exception bit.
var funcClass = [128]opclass.Class{
	FuncReadCoils:                  opclass.Read,
	FuncReadDiscreteInputs:         opclass.Read,
	FuncReadHoldingRegisters:       opclass.Read,
	FuncReadInputRegisters:         opclass.Read,
	FuncReadExceptionStatus:        opclass.Read,
	FuncGetCommEventCounter:        opclass.Read,
	FuncGetCommEventLog:            opclass.Read,
	FuncReportServerID:             opclass.Read,
	FuncReadFileRecord:             opclass.Read,
	FuncReadFIFOQueue:              opclass.Read,
	FuncWriteSingleCoil:            opclass.Write,
	FuncWriteSingleRegister:        opclass.Write,
	FuncWriteMultipleCoils:         opclass.Write,
	FuncWriteMultipleRegisters:     opclass.Write,
	FuncMaskWriteRegister:          opclass.Write,
	FuncReadWriteMultipleRegisters: opclass.Write,
	FuncWriteFileRecord:            opclass.Program,
	40:                             opclass.Program,
	42:                             opclass.Program,
	125:                            opclass.Program,
	126:                            opclass.Program,
	// FC 8, 43 and 90 depend on the sub-function: see Classify.
}

// diagClass classifies FC 8 by sub-function.
var diagClass = [...]opclass.Class{
	0:  opclass.Diagnose, // return query data (echo)
	1:  opclass.Control,  // restart communications option
	2:  opclass.Diagnose, // return diagnostic register
	3:  opclass.Control,  // change ASCII input delimiter
	4:  opclass.Control,  // force listen only mode: the unit stops answering
	10: opclass.Control,  // clear counters and diagnostic register
	11: opclass.Diagnose, // return bus message count
	12: opclass.Diagnose, // return bus communication error count
	13: opclass.Diagnose, // return bus exception error count
	14: opclass.Diagnose, // return server message count
	15: opclass.Diagnose, // return server no response count
	16: opclass.Diagnose, // return server NAK count
	17: opclass.Diagnose, // return server busy count
	18: opclass.Diagnose, // return bus character overrun count
	20: opclass.Control,  // clear overrun counter and flag
}

// Classify returns the operation class of function code fc with sub-function
// sub (FC 8 sub-function, FC 43 MEI type, FC 90 UMAS sub-function; ignored for
// other codes). See the table above funcClass.
func Classify(fc byte, sub uint16) opclass.Class {
	switch fc {
	case FuncDiagnostics:
		if int(sub) < len(diagClass) {
			return diagClass[sub]
		}
		return opclass.Unknown
	case FuncEncapsulatedInterface:
		if sub == MEIReadDeviceID {
			return opclass.Read
		}
		return opclass.Unknown
	case FuncUMAS:
		// Public UMAS tables disagree, so every FC 90 is at least control,
		// and the ones that change the program or its run state are program.
		switch {
		case sub >= 0x30 && sub <= 0x35, sub == 0x40, sub == 0x41:
			return opclass.Program
		}
		return opclass.Control
	}
	if fc < 0x80 {
		return funcClass[fc]
	}
	return opclass.Unknown
}

var funcNames = [128]string{
	FuncReadCoils:                  "read coils",
	FuncReadDiscreteInputs:         "read discrete inputs",
	FuncReadHoldingRegisters:       "read holding registers",
	FuncReadInputRegisters:         "read input registers",
	FuncWriteSingleCoil:            "write single coil",
	FuncWriteSingleRegister:        "write single register",
	FuncReadExceptionStatus:        "read exception status",
	FuncDiagnostics:                "diagnostics",
	FuncGetCommEventCounter:        "get comm event counter",
	FuncGetCommEventLog:            "get comm event log",
	FuncWriteMultipleCoils:         "write multiple coils",
	FuncWriteMultipleRegisters:     "write multiple registers",
	FuncReportServerID:             "report server id",
	FuncReadFileRecord:             "read file record",
	FuncWriteFileRecord:            "write file record",
	FuncMaskWriteRegister:          "mask write register",
	FuncReadWriteMultipleRegisters: "read/write multiple registers",
	FuncReadFIFOQueue:              "read fifo queue",
	FuncEncapsulatedInterface:      "encapsulated interface transport",
	FuncUMAS:                       "umas",
}

// FuncName returns the spec's name for a function code, e.g. "read holding
// registers"; an exception response code gets " exception" appended ("read
// holding registers exception"); unknown codes read "function 0x41".
func FuncName(fc byte) string {
	if n := funcNames[fc&0x7F]; n != "" {
		if fc&0x80 != 0 {
			return n + " exception"
		}
		return n
	}
	return fmt.Sprintf("function 0x%02X", fc)
}
