package modbusrelay

import (
	"testing"

	"github.com/brana-ot/brana/firmware"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/protocols/modbus"
	"github.com/brana-ot/brana/protocols/opclass"
)

// Writes into the image window and onto the commit address are class
// program, like FC 21; other writes keep their class.
func TestProgramClassify(t *testing.T) {
	addr := 9000
	p := newProgram(&config.Program{File: 1, Window: &config.Window{Table: "holding", Start: 2000, Count: 100},
		Commit: &config.Commit{Table: "holding", Address: &addr}})
	tests := []struct {
		name   string
		pdu    []byte
		class  opclass.Class
		commit bool
	}{
		{"ok/commit-fc6", []byte{6, 0x23, 0x28, 0xc0, 0xde}, opclass.Program, true},
		{"ok/commit-fc16-spanning", []byte{16, 0x23, 0x27, 0, 2, 4, 0, 0, 0xc0, 0xde}, opclass.Program, true},
		{"ok/window-fc16", []byte{16, 0x07, 0xd0, 0, 2, 4, 1, 2, 3, 4}, opclass.Program, false},
		{"ok/window-edge", []byte{6, 0x07, 0xcf, 0, 1}, opclass.Write, false},
		{"ok/setpoint", []byte{6, 0, 100, 0, 1}, opclass.Write, false},
		{"ok/read-commit-register", []byte{3, 0x23, 0x28, 0, 1}, opclass.Read, false},
		{"ok/fc21", []byte{21, 9, 6, 0, 1, 0, 0, 0, 1, 0xab, 0xcd}, opclass.Program, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req modbus.Request
			if err := modbus.ParseRequest(1, tt.pdu, &req); err != nil {
				t.Fatal(err)
			}
			if commit := p.classify(&req); commit != tt.commit || req.Class != tt.class {
				t.Fatalf("classify = %v, class %v; want %v, %v", commit, req.Class, tt.commit, tt.class)
			}
		})
	}
	if newProgram(nil) != nil {
		t.Error("no profile should compile to nil")
	}
}

// Only data written where the device takes its image counts for its commit.
func TestProgramCarries(t *testing.T) {
	addr := 1
	p := newProgram(&config.Program{File: 1, Window: &config.Window{Start: 2000, Count: 100},
		Commit: &config.Commit{Table: "coils", Address: &addr}})
	if p.commit.Table != modbus.Coils {
		t.Fatalf("commit table %v", p.commit.Table)
	}
	for _, tt := range []struct {
		k    firmware.Key
		want bool
	}{
		{firmware.Key{Kind: firmware.KindFileRecords, Unit: 1, File: 1}, true},
		{firmware.Key{Kind: firmware.KindFileRecords, Unit: 1, File: 2}, false},
		{firmware.Key{Kind: firmware.KindFileRecords, Unit: 2, File: 1}, false},
		{firmware.Key{Kind: firmware.KindWindow, Unit: 1, File: 2000}, true},
		{firmware.Key{Kind: firmware.KindFile, Unit: 1}, false},
	} {
		if got := p.carries(tt.k, 1); got != tt.want {
			t.Errorf("carries(%s) = %v; want %v", tt.k, got, tt.want)
		}
	}
}
