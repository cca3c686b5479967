package policy

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/brana-ot/brana/protocols/modbus"
)

// TestDecideModbusAllocs proves the budget in DESIGN.md: a decision costs no
// allocation, allowed or denied, for every reason.
func TestDecideModbusAllocs(t *testing.T) {
	p := mustCompile(t, testSpec())
	wrapped := &modbus.Request{Unit: 5, Func: 3, Class: 1, Read: modbus.Range{Table: modbus.HoldingRegisters, Start: 65535, Count: 2}}
	tests := []struct {
		name   string
		party  *Party
		target string
		req    *modbus.Request
		reason Reason // checked on deny paths
	}{
		{"ok/read", p.Party("vendor"), "plc1", opReq(t, "read:holding:0-9@1"), 0},
		{"ok/write-values", p.Party("vendor"), "plc1", opReq(t, "write:holding:100-109=10,11,12,13,14,15,16,17,18,50@1"), 0},
		{"ok/coils", p.Party("scada"), "plc1", opReq(t, "write:coils:0-15=1,0,1,0,1,0,1,0,1,0,1,0,1,0,1,0@1"), 0},
		{"ok/fc23-two-rules", p.Party("eng"), "plc2", readWrite(t, 0, 10, 100, 1, 2), 0},
		{"ok/party-from-other-policy", mustCompile(t, testSpec()).Party("vendor"), "plc1", opReq(t, "read:holding:0@1"), 0},
		{"fail/unidentified", nil, "plc1", opReq(t, "read:holding:0@1"), Unidentified},
		{"fail/unknown-party", &Party{ID: "ghost"}, "plc1", opReq(t, "read:holding:0@1"), Unidentified},
		{"fail/no-rule", p.Party("vendor"), "rtu", opReq(t, "read:holding:0@1"), NoRule},
		{"fail/no-rule-unknown-target", p.Party("vendor"), "nosuch", opReq(t, "read:holding:0@1"), NoRule},
		{"fail/class", p.Party("vendor"), "plc1", opReq(t, "control@1"), ClassDenied},
		{"fail/function", p.Party("vendor"), "plc1", opReq(t, "read:coils:0@1"), FunctionDenied},
		{"fail/unit", p.Party("vendor"), "plc1", opReq(t, "read:holding:0@9"), UnitDenied},
		{"fail/address", p.Party("vendor"), "plc1", opReq(t, "read:holding:95-104@1"), AddressDenied},
		{"fail/address-wrapped", p.Party("integ"), "rtu", wrapped, AddressDenied},
		{"fail/value", p.Party("vendor"), "plc1", opReq(t, "write:holding:100-102=20,30,51@1"), ValueDenied},
		{"fail/masked-write", p.Party("vendor"), "plc1", opReq(t, "fc:22:holding:100=0xFF00,0x0012@1"), MaskedWrite},
		{"fail/fc23-read-part", p.Party("eng"), "plc2", readWrite(t, 150, 2, 100, 1), AddressDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule, err := p.DecideModbus(tt.party, tt.target, tt.req)
			var d *Denial
			switch {
			case tt.name[:3] == "ok/" && (err != nil || rule == nil):
				t.Fatalf("want allow, got %v", err)
			case tt.name[:3] != "ok/" && (!errors.As(err, &d) || d.Reason != tt.reason):
				t.Fatalf("want %s denial, got %v, %v", tt.reason, ruleName(rule), err)
			}
			allocs := testing.AllocsPerRun(1000, func() {
				_, _ = p.DecideModbus(tt.party, tt.target, tt.req)
			})
			if allocs != 0 {
				t.Fatalf("DecideModbus allocates %.1f times per request; want 0", allocs)
			}
		})
	}
}

// TestDecideModbusConcurrent runs decisions from many goroutines at once; with
// -race it shows that deciding writes nothing shared.
func TestDecideModbusConcurrent(t *testing.T) {
	p := mustCompile(t, testSpec())
	reqs := []*modbus.Request{opReq(t, "read:holding:0-9@1"), opReq(t, "write:holding:100=51@1"), opReq(t, "control")}
	vendor := p.Party("vendor")
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				_, _ = p.DecideModbus(vendor, "plc1", reqs[i%len(reqs)])
			}
		}()
	}
	wg.Wait()
}

func BenchmarkDecideModbus(b *testing.B) {
	p := mustCompile(b, testSpec())
	for _, bm := range []struct {
		name  string
		party string
		op    string
	}{
		{"allow-read", "vendor", "read:holding:0-9@1"},
		{"allow-write-10-values", "vendor", "write:holding:100-109=10,11,12,13,14,15,16,17,18,50@1"},
		{"deny-value", "vendor", "write:holding:100=51@1"},
		{"deny-class", "vendor", "program"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			party, req := p.Party(bm.party), opReq(b, bm.op)
			b.ReportAllocs()
			for b.Loop() {
				_, _ = p.DecideModbus(party, "plc1", req)
			}
		})
	}
}

// FuzzDecideModbus decides arbitrary request PDUs for every party and checks
// the decision against the explanation: an allowing rule applies and allows,
// a closest rule applies and denies, and nothing panics.
func FuzzDecideModbus(f *testing.F) {
	for _, op := range []string{
		"read:holding:0-9@1", "write:holding:100-101=20,30@1", "write:coils:0-15=1,0,1,0,1,0,1,0,1,0,1,0,1,0,1,0@1",
		"fc:22:holding:5=1,2", "diagnose", "control", "program", "fc:65", "fc:17", "fc:43/14", "read:holding:65530-65535@5",
	} {
		unit, pdu, err := ParseModbusOp(op)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(unit, pdu)
	}
	f.Add(byte(1), []byte{23, 0, 0, 0, 2, 0, 100, 0, 1, 2, 0, 1})
	p := mustCompile(f, testSpec())
	parties := append(p.Parties(), nil)
	f.Fuzz(func(t *testing.T, unit byte, pdu []byte) {
		var req modbus.Request
		if modbus.ParseRequest(unit, pdu, &req) != nil {
			return
		}
		for _, party := range parties {
			for _, target := range testTargets {
				rule, err := p.DecideModbus(party, target, &req)
				e := p.ExplainModbus(party, target, &req)
				if e.Rule != rule || e.Err != err {
					t.Fatalf("explain and decide disagree")
				}
				var d *Denial
				switch {
				case err == nil:
					// FC 23: the rule returned allows the write part; the read
					// part may be another rule's.
					s := stepFor(e, rule)
					if !s.Applies || s.Verdict != "allows" && !strings.HasPrefix(s.Verdict, "write part allows;") {
						t.Fatalf("allowed by %s: %+v", ruleName(rule), s)
					}
				case !errors.As(err, &d):
					t.Fatalf("error %T", err)
				case d.Rule != nil && !stepFor(e, d.Rule).Applies:
					t.Fatalf("denied by %s, which does not apply", d.Rule.Name)
				}
			}
		}
	})
}

func stepFor(e Explanation, r *Rule) Step {
	for _, s := range e.Steps {
		if s.Rule == r.Name {
			return s
		}
	}
	return Step{}
}
