package modbusrelay

import (
	"testing"

	"github.com/brana-ot/brana/policy"
	"github.com/brana-ot/brana/protocols/modbus"
)

// The inline path's decode, classify and decide must not allocate: a gateway
// on a Pi-class board serving many sessions cannot afford garbage per request.
func TestDecodeClassifyDecideAllocs(t *testing.T) {
	pol, err := policy.Compile(policy.Spec{
		Parties: []policy.PartySpec{{ID: "eng", Name: "Engineer", Networks: []string{"127.0.0.2/32"}}},
		Rules: []policy.RuleSpec{
			{Name: "read", Parties: []string{"eng"}, Targets: []string{"plc"}, Classes: []string{"read"}},
			{Name: "setpoints", Parties: []string{"eng"}, Targets: []string{"plc"}, Classes: []string{"write"},
				Ranges: map[string][]string{"holding": {"100-119"}}, Values: &policy.Bounds{Min: 0, Max: 5000}},
		},
	}, []string{"plc"})
	if err != nil {
		t.Fatal(err)
	}
	party := pol.Party("eng")
	var stream []byte
	stream = modbus.AppendADU(stream, 1, 1, []byte{3, 0, 0, 0, 10})                        // allowed read
	stream = modbus.AppendADU(stream, 2, 1, []byte{16, 0, 100, 0, 2, 4, 0, 1, 0, 2})       // allowed write
	stream = modbus.AppendADU(stream, 3, 1, []byte{6, 0, 100, 0x27, 0x10})                 // value 10000: denied
	stream = modbus.AppendADU(stream, 4, 1, []byte{6, 0, 5, 0, 1})                         // address: denied
	stream = modbus.AppendADU(stream, 5, 1, []byte{23, 0, 0, 0, 2, 0, 100, 0, 1, 2, 0, 7}) // read + write
	var req modbus.Request
	outcomes := 0
	allocs := testing.AllocsPerRun(1000, func() {
		outcomes = 0
		buf := stream
		for len(buf) > 0 {
			frame, n, err := modbus.SplitFrame(buf)
			if err != nil || frame == nil {
				t.Fatalf("SplitFrame: %v", err)
			}
			if err := modbus.ParseRequest(frame.Unit(), frame.PDU(), &req); err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if _, err := pol.DecideModbus(party, "plc", &req); err == nil {
				outcomes++
			}
			buf = buf[n:]
		}
	})
	if allocs != 0 {
		t.Fatalf("decode + classify + decide allocates %.1f times per run of 5 requests; want 0", allocs)
	}
	if outcomes != 3 {
		t.Fatalf("%d requests allowed; want 3 (read, write in range, FC 23)", outcomes)
	}
}
