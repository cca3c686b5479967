package modbussim

import (
	"bytes"
	"fmt"
	"testing"
)

type fcCase struct {
	name      string
	unit      byte
	req, want string // PDUs in hex
	check     func(t *testing.T, p *PLC)
}

// allModels is the PLC layout the function-code tests run against.
var allModels = map[byte]string{1: "feeder", 2: "pump", 3: "points"}

// genericCases are the same for every model: framing of each function code,
// exceptions, diagnostics, identification and file records.
func genericCases(unit byte, model, description string) []fcCase {
	id := func(objs ...string) string {
		s := ""
		for i, o := range objs {
			s += fmt.Sprintf("%02x %02x %x ", i, len(o), o)
		}
		return s
	}
	name := vendorName + " " + model
	return []fcCase{
		{name: "ok/write-register-free-window", unit: unit, req: "06 0064 1234", want: "06 0064 1234",
			check: wantHolding(unit, 100, 0x1234)},
		{name: "ok/write-registers-free-window", unit: unit, req: "10 0064 0002 04 0001 0002", want: "10 0064 0002",
			check: wantHolding(unit, 101, 2)},
		{name: "ok/read-write-registers", unit: unit, req: "17 0064 0002 0065 0001 02 abcd", want: "17 04 0000 abcd"},
		{name: "ok/mask-write-free-window", unit: unit, req: "16 0070 00f2 0025", want: "16 0070 00f2 0025",
			check: wantHolding(unit, 0x70, 0x0005)},
		{name: "ok/diag-echo", unit: unit, req: "08 0000 a537", want: "08 0000 a537"},
		{name: "ok/diag-echo-long", unit: unit, req: "08 0000 0102030405", want: "08 0000 0102030405"},
		{name: "ok/diag-restart", unit: unit, req: "08 0001 0000", want: "08 0001 0000"},
		{name: "ok/diag-bus-messages", unit: unit, req: "08 000b 0000", want: "08 000b 0001"},
		{name: "ok/diag-server-messages", unit: unit, req: "08 000e 0000", want: "08 000e 0001"},
		{name: "ok/diag-clear-counters", unit: unit, req: "08 000a 0000", want: "08 000a 0000"},
		{name: "fail/diag-unknown-sub", unit: unit, req: "08 0063 0000", want: "88 01"},
		{name: "fail/diag-counter-data", unit: unit, req: "08 000b 0001", want: "88 03"},
		{name: "ok/report-server-id", unit: unit, req: "11",
			want: fmt.Sprintf("11 %02x %02x ff %x", 2+len(name), unit, name)},
		{name: "fail/report-server-id-length", unit: unit, req: "11 00", want: "91 03"},
		{name: "ok/device-id-basic", unit: unit, req: "2b 0e 01 00",
			want: "2b 0e 01 82 00 00 03 " + id(vendorName, model, revision)},
		{name: "ok/device-id-regular", unit: unit, req: "2b 0e 02 00",
			want: "2b 0e 02 82 00 00 07 " + id(vendorName, model, revision, "https://github.com/brana-ot/brana", model, description, "modbussim")},
		{name: "ok/device-id-individual", unit: unit, req: "2b 0e 04 01",
			want: fmt.Sprintf("2b 0e 04 82 00 00 01 01 %02x %x", len(model), model)},
		{name: "ok/device-id-restart-unknown-object", unit: unit, req: "2b 0e 01 50",
			want: "2b 0e 01 82 00 00 03 " + id(vendorName, model, revision)},
		{name: "fail/device-id-individual-unknown-object", unit: unit, req: "2b 0e 04 50", want: "ab 02"},
		{name: "fail/device-id-bad-code", unit: unit, req: "2b 0e 05 00", want: "ab 03"},
		{name: "fail/device-id-mei-type", unit: unit, req: "2b 0d 01 00", want: "ab 01"},
		{name: "ok/write-file-record", unit: unit, req: "15 0d 06 0004 0007 0003 0102 0304 0506", want: "15 0d 06 0004 0007 0003 0102 0304 0506",
			check: func(t *testing.T, p *PLC) {
				recs := p.FileRecords(unit, 4)
				if len(recs) != fileRecords || recs[7] != 0x0102 || recs[8] != 0x0304 || recs[9] != 0x0506 || recs[6] != 0 {
					t.Errorf("file 4 records 6..9 = %v", recs[6:10])
				}
				if p.FileRecords(unit, 5) != nil {
					t.Error("file 5 exists without a write")
				}
			}},
		{name: "ok/read-file-record-unwritten", unit: unit, req: "14 07 06 0004 0001 0002", want: "14 06 05 06 0000 0000"},
		{name: "fail/write-file-record-ref-type", unit: unit, req: "15 09 07 0004 0007 0001 0102", want: "95 02",
			check: func(t *testing.T, p *PLC) {
				if p.FileRecords(unit, 4) != nil {
					t.Error("rejected file write stored records")
				}
			}},
		{name: "fail/write-file-record-past-9999", unit: unit, req: "15 0b 06 0004 270f 0002 0001 0002", want: "95 02"},
		{name: "fail/write-file-record-file-zero", unit: unit, req: "15 09 06 0000 0007 0001 0102", want: "95 02"},
		{name: "fail/write-file-record-byte-count", unit: unit, req: "15 0a 06 0004 0007 0001 0102", want: "95 03"},
		{name: "fail/illegal-function-7", unit: unit, req: "07", want: "87 01"},
		{name: "fail/illegal-function-umas", unit: unit, req: "5a 00 10", want: "da 01"},
		{name: "fail/exception-bit-in-request", unit: unit, req: "83 0000 0001", want: "83 01"},
		{name: "fail/read-holding-out-of-range", unit: unit, req: "03 0078 0010", want: "83 02"},
		{name: "fail/read-holding-wraps", unit: unit, req: "03 ffff 0002", want: "83 02"},
		{name: "fail/read-holding-zero", unit: unit, req: "03 0000 0000", want: "83 03"},
		{name: "fail/read-holding-126", unit: unit, req: "03 0000 007e", want: "83 03"},
		{name: "fail/read-holding-extra-byte", unit: unit, req: "03 0000 0001 00", want: "83 03"},
		{name: "fail/read-input-out-of-range", unit: unit, req: "04 001f 0002", want: "84 02"},
		{name: "fail/read-coils-out-of-range", unit: unit, req: "01 0010 0001", want: "81 02"},
		{name: "fail/read-coils-2001", unit: unit, req: "01 0000 07d1", want: "81 03"},
		{name: "fail/read-discrete-out-of-range", unit: unit, req: "02 0000 0011", want: "82 02"},
		{name: "fail/write-coil-bad-value", unit: unit, req: "05 0000 1234", want: "85 03"},
		{name: "fail/write-coil-out-of-range", unit: unit, req: "05 0010 ff00", want: "85 02"},
		{name: "fail/write-register-out-of-range", unit: unit, req: "06 0080 0001", want: "86 02"},
		{name: "fail/write-coils-byte-count", unit: unit, req: "0f 0000 0009 01 ff", want: "8f 03"},
		{name: "fail/write-coils-out-of-range", unit: unit, req: "0f 000f 0002 01 03", want: "8f 02"},
		{name: "fail/write-registers-byte-count", unit: unit, req: "10 0064 0002 03 0001 00", want: "90 03"},
		{name: "fail/write-registers-out-of-range", unit: unit, req: "10 007f 0002 04 0001 0002", want: "90 02"},
		{name: "fail/mask-write-out-of-range", unit: unit, req: "16 0080 0000 0000", want: "96 02"},
		{name: "fail/read-write-quantity", unit: unit, req: "17 0000 0000 0064 0001 02 0000", want: "97 03"},
		{name: "fail/read-write-out-of-range", unit: unit, req: "17 0000 0001 007f 0002 04 0000 0000", want: "97 02"},
	}
}

func feederCases() []fcCase {
	return []fcCase{
		{name: "ok/read-coils", unit: 1, req: "01 0000 0010", want: "01 02 0000"},
		{name: "ok/read-discrete-breaker-open", unit: 1, req: "02 0000 0008", want: "02 01 02"},
		{name: "ok/read-holding-protection", unit: 1, req: "03 0000 0004", want: "03 08 0190 01f4 0014 012c"},
		{name: "ok/read-holding-sim", unit: 1, req: "03 000a 0003", want: "03 06 00c8 03b6 0000"},
		{name: "ok/read-input-dead", unit: 1, req: "04 0000 0009", want: "04 12 0000 0000 0000 0000 0000 0000 0000 0000 0000"},
		{name: "ok/write-coil-close", unit: 1, req: "05 0000 ff00", want: "05 0000 ff00",
			check: func(t *testing.T, p *PLC) {
				d := p.Unit(1)
				if !d.Coil(0) || !d.DiscreteInput(fdDIClosed) || d.DiscreteInput(fdDIOpen) {
					t.Error("breaker did not close")
				}
				if d.InputRegister(fdIRVoltage) != 2200 || d.InputRegister(fdIRFreq) != 50000 {
					t.Errorf("U %d f %d after close", d.InputRegister(fdIRVoltage), d.InputRegister(fdIRFreq))
				}
			}},
		{name: "ok/write-coils-close-and-earth", unit: 1, req: "0f 0000 0002 01 03", want: "0f 0000 0002",
			check: func(t *testing.T, p *PLC) {
				// Breaker first, then the earth switch, which the closed breaker blocks.
				if d := p.Unit(1); !d.Coil(0) || d.Coil(1) || d.DiscreteInput(fdDIEarthed) {
					t.Error("earth switch closed onto a closed breaker")
				}
			}},
		{name: "ok/write-register-pickup", unit: 1, req: "06 0000 012c", want: "06 0000 012c", check: wantHolding(1, 0, 300)},
		{name: "fail/write-register-pickup-zero", unit: 1, req: "06 0000 0000", want: "86 03", check: wantHolding(1, 0, 400)},
		{name: "fail/write-registers-one-bad", unit: 1, req: "10 0000 0002 04 0064 ffff", want: "90 03", check: wantHolding(1, 0, 400)},
		{name: "ok/mask-write-pickup", unit: 1, req: "16 0000 00f2 0025", want: "16 0000 00f2 0025", check: wantHolding(1, 0, 0x0095)},
		{name: "fail/mask-write-pickup-zero", unit: 1, req: "16 0000 0000 0000", want: "96 03", check: wantHolding(1, 0, 400)},
		{name: "ok/read-write-pickup", unit: 1, req: "17 0000 0002 0000 0001 02 0064", want: "17 04 0064 01f4"},
	}
}

func pumpCases() []fcCase {
	return []fcCase{
		{name: "ok/read-coils-auto", unit: 2, req: "01 0000 0010", want: "01 02 0400"},
		{name: "ok/read-discrete", unit: 2, req: "02 0000 0006", want: "02 01 00"},
		{name: "ok/read-holding", unit: 2, req: "03 0000 0005", want: "03 0a 09c4 03e8 0050 0dac 012c"},
		{name: "ok/read-input", unit: 2, req: "04 0000 0006", want: "04 0c 05dc 0000 0320 0000 0000 0096"},
		{name: "ok/write-coil-run-pump-1", unit: 2, req: "05 0000 ff00", want: "05 0000 ff00",
			check: func(t *testing.T, p *PLC) {
				if d := p.Unit(2); !d.DiscreteInput(pmDIRunning1) || d.InputRegister(pmIRStarts1) != 1 {
					t.Error("pump 1 did not start")
				}
			}},
		{name: "ok/write-coils-manual-both", unit: 2, req: "0f 0000 0003 01 03", want: "0f 0000 0003",
			check: func(t *testing.T, p *PLC) {
				if d := p.Unit(2); !d.DiscreteInput(0) || !d.DiscreteInput(1) || d.Coil(pmCoilAuto) {
					t.Error("pumps not running in manual")
				}
			}},
		{name: "ok/write-register-speed", unit: 2, req: "06 0002 0064", want: "06 0002 0064", check: wantHolding(2, 2, 100)},
		{name: "fail/write-register-speed-101", unit: 2, req: "06 0002 0065", want: "86 03", check: wantHolding(2, 2, 80)},
		{name: "fail/write-registers-all-or-nothing", unit: 2, req: "10 0001 0002 04 0064 0065", want: "90 03", check: wantHolding(2, 1, 1000)},
	}
}

func pointsCases() []fcCase {
	return []fcCase{
		{name: "ok/read-coils", unit: 3, req: "01 0000 0002", want: "01 01 00"},
		{name: "ok/read-discrete-normal", unit: 3, req: "02 0000 0005", want: "02 01 01"},
		{name: "ok/read-holding", unit: 3, req: "03 0000 0003", want: "03 06 0bb8 0000 1f40"},
		{name: "ok/read-input", unit: 3, req: "04 0000 0004", want: "04 08 0000 0000 0000 0001"},
		{name: "ok/write-coil-throw-reverse", unit: 3, req: "05 0001 ff00", want: "05 0001 ff00",
			check: func(t *testing.T, p *PLC) {
				if d := p.Unit(3); !d.Coil(1) || !d.DiscreteInput(ptDIMoving) || d.DiscreteInput(ptDINormal) {
					t.Error("throw did not start")
				}
			}},
		{name: "ok/write-coils-both-rejected", unit: 3, req: "0f 0000 0002 01 03", want: "0f 0000 0002",
			check: func(t *testing.T, p *PLC) {
				if d := p.Unit(3); !d.DiscreteInput(ptDIRejected) || d.DiscreteInput(ptDIMoving) || d.Coil(0) || d.Coil(1) {
					t.Error("conflicting command not rejected")
				}
			}},
		{name: "ok/write-register-obstruction", unit: 3, req: "06 0001 0001", want: "06 0001 0001", check: wantHolding(3, 1, 1)},
		{name: "fail/write-register-obstruction-2", unit: 3, req: "06 0001 0002", want: "86 03"},
		{name: "fail/write-register-throw-time-short", unit: 3, req: "06 0000 0063", want: "86 03"},
	}
}

func wantHolding(unit byte, addr, want uint16) func(*testing.T, *PLC) {
	return func(t *testing.T, p *PLC) {
		t.Helper()
		if got := p.Unit(unit).HoldingRegister(addr); got != want {
			t.Errorf("unit %d holding %d = %d, want %d", unit, addr, got, want)
		}
	}
}

// TestFunctionCodes sends every supported function code (and the ways to get
// each exception) to each model over Modbus TCP, on a fresh PLC per case.
func TestFunctionCodes(t *testing.T) {
	groups := map[string][]fcCase{
		"feeder": append(feederCases(), genericCases(1, "feeder", "22 kV feeder bay")...),
		"pump":   append(pumpCases(), genericCases(2, "pump", "water pumping station")...),
		"points": append(pointsCases(), genericCases(3, "points", "railway point machine")...),
	}
	for model, cases := range groups {
		for _, tc := range cases {
			t.Run(model+"/"+tc.name, func(t *testing.T) {
				p := newPLC(t, allModels)
				c := dial(t, serveTCP(t, p))
				got := roundTrip(t, c, tc.unit, unhex(t, tc.req))
				if want := unhex(t, tc.want); !bytes.Equal(got, want) {
					t.Fatalf("response\n got % x\nwant % x", got, want)
				}
				if tc.check != nil {
					tc.check(t, p)
				}
			})
		}
	}
}

// TestListenOnly: FC 8 sub 4 silences the unit until sub 1 restarts it.
func TestListenOnly(t *testing.T) {
	p := newPLC(t, allModels)
	resp := make([]byte, maxPDU)
	ctx := t.Context()
	if out := p.request(ctx, 1, unhex(t, "08 0004 0000"), resp, viaTCP); out.reply {
		t.Fatal("force listen-only was answered")
	}
	if out := p.request(ctx, 1, unhex(t, "03 0000 0001"), resp, viaTCP); out.reply {
		t.Fatal("answered in listen-only mode")
	}
	if out := p.request(ctx, 2, unhex(t, "03 0000 0001"), resp, viaTCP); !out.reply {
		t.Fatal("other unit silenced too")
	}
	if out := p.request(ctx, 1, unhex(t, "08 0001 0000"), resp, viaTCP); out.reply {
		t.Fatal("restart from listen-only was answered")
	}
	if out := p.request(ctx, 1, unhex(t, "08 000f 0000"), resp, viaTCP); !out.reply || !bytes.Equal(resp[:out.n], unhex(t, "08 000f 0003")) {
		t.Fatalf("no-response count: % x", resp[:out.n])
	}
}
