package modbussim

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
)

func TestCRC16(t *testing.T) {
	// Reference frame from the Modbus serial line guide: read holding
	// registers of unit 1, address 0, count 1 → CRC 0x0A84 (84 0A on the wire).
	if got := rtuADU(1, unhex(t, "03 0000 0001")); !bytes.Equal(got, unhex(t, "01 03 0000 0001 840a")) {
		t.Fatalf("% x", got)
	}
}

func TestRequestLen(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		want  int
	}{
		{"ok/read-holding", "01 03", 8},
		{"ok/write-multiple-needs-byte-count", "01 10 0000 0002", 0},
		{"ok/write-multiple", "01 10 0000 0002 04", 13},
		{"ok/read-write", "01 17 0000 0001 0000 0001 02", 15},
		{"ok/file-record", "01 15 0d", 18},
		{"ok/diag-echo-by-silence", "01 08 0000", 0},
		{"ok/diag-counter", "01 08 000b", 8},
		{"ok/device-id", "01 2b 0e", 7},
		{"ok/unknown-by-silence", "01 41", 0},
		{"ok/report-server-id", "01 11", 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := requestLen(unhex(t, tc.frame)); got != tc.want {
				t.Fatalf("requestLen = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestRTUGap(t *testing.T) {
	tests := []struct {
		name string
		opts RTUOptions
		want time.Duration
	}{
		{"ok/default-19200", RTUOptions{}, 2005208 * time.Nanosecond},
		{"ok/38400-fixed-floor", RTUOptions{Baud: 38400}, 2 * time.Millisecond},
		{"ok/9600", RTUOptions{Baud: 9600}, 4010416 * time.Nanosecond},
		{"ok/115200-fixed-floor", RTUOptions{Baud: 115200}, 2 * time.Millisecond},
		{"ok/override", RTUOptions{Gap: 10 * time.Millisecond}, 10 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.opts.gap(); got != tc.want {
				t.Fatalf("gap = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRTUIndependentClient drives the RTU slave over a socat pty pair with
// simonvetter/modbus's RTU client.
func TestRTUIndependentClient(t *testing.T) {
	a, b := ptyPair(t)
	p := newPLC(t, allModels)
	serveRTU(t, p, a)
	c := client(t, "rtu://"+b, 500*time.Millisecond)
	independentClientChecks(t, p, c)

	faults := []struct {
		name    string
		fault   Fault
		wantErr error
	}{
		{"fail/bad-crc", Fault{BadCRC: true}, modbus.ErrBadCRC},
		{"fail/silent", Fault{Silent: true}, modbus.ErrRequestTimedOut},
		{"fail/exception", Fault{Exception: 0x06}, modbus.ErrServerDeviceBusy},
		{"fail/delay-past-timeout", Fault{Delay: 700 * time.Millisecond}, modbus.ErrRequestTimedOut},
	}
	for _, tc := range faults {
		t.Run(tc.name, func(t *testing.T) {
			p.SetFault(1, tc.fault)
			c.SetUnitId(1)
			_, err := c.ReadRegisters(0, 1, modbus.HOLDING_REGISTER)
			p.ClearFault(1)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			time.Sleep(tc.fault.Delay) // let a late answer pass before the next case
			c.SetUnitId(2)
			if _, err := c.ReadRegisters(0, 1, modbus.HOLDING_REGISTER); err != nil && !errors.Is(err, modbus.ErrBadCRC) {
				// A late answer can still collide once; the line must recover by the next request.
				t.Logf("first request after the fault: %v", err)
			}
			if v, err := c.ReadRegisters(0, 1, modbus.HOLDING_REGISTER); err != nil || v[0] != 2500 {
				t.Fatalf("line did not recover: %v %v", v, err)
			}
		})
	}
}

// TestRTURaw sends hand-made frames to check what a real slave does on the line.
func TestRTURaw(t *testing.T) {
	badCRC := func(f []byte) []byte { f[len(f)-1] ^= 0xFF; return f }
	tests := []struct {
		name  string
		fault Fault
		send  [][]byte // written one after another with a 1 ms pause
		want  []byte   // exact answer; nil: none
		check func(t *testing.T, p *PLC, got []byte)
	}{
		{name: "ok/read-holding", send: [][]byte{rtuADU(1, unhex(t, "03 0000 0002"))},
			want: rtuADU(1, unhex(t, "03 04 0190 01f4"))},
		{name: "ok/split-frame", send: func() [][]byte {
			f := rtuADU(2, unhex(t, "04 0000 0001"))
			return [][]byte{f[:2], f[2:5], f[5:]}
		}(), want: rtuADU(2, unhex(t, "04 02 05dc"))},
		{name: "ok/back-to-back", send: [][]byte{append(rtuADU(1, unhex(t, "03 0000 0001")), rtuADU(3, unhex(t, "03 0000 0001"))...)},
			want: append(rtuADU(1, unhex(t, "03 02 0190")), rtuADU(3, unhex(t, "03 02 0bb8"))...)},
		{name: "ok/write-multiple", send: [][]byte{rtuADU(1, unhex(t, "10 0064 0002 04 0001 0002"))},
			want: rtuADU(1, unhex(t, "10 0064 0002"))},
		{name: "ok/diag-echo-ends-by-silence", send: [][]byte{rtuADU(1, unhex(t, "08 0000 0102030405"))},
			want: rtuADU(1, unhex(t, "08 0000 0102030405"))},
		{name: "ok/unknown-function-ends-by-silence", send: [][]byte{rtuADU(1, unhex(t, "41 0102"))},
			want: rtuADU(1, unhex(t, "c1 01"))},
		{name: "ok/device-id", send: [][]byte{rtuADU(3, unhex(t, "2b 0e 04 01"))},
			want: rtuADU(3, unhex(t, "2b 0e 04 82 00 00 01 01 06"+" 706f696e7473"))},
		{name: "fail/bad-crc-no-answer", send: [][]byte{badCRC(rtuADU(1, unhex(t, "06 0064 0001")))},
			check: func(t *testing.T, p *PLC, _ []byte) {
				if p.Unit(1).HoldingRegister(100) != 0 || p.Counters().Total() != 0 {
					t.Error("frame with a bad CRC was executed or counted")
				}
			}},
		{name: "fail/bad-crc-then-good-frame", send: [][]byte{badCRC(rtuADU(1, unhex(t, "03 0000 0001"))), nil, rtuADU(1, unhex(t, "08 000c 0000"))},
			want: rtuADU(1, unhex(t, "08 000c 0001"))}, // the bus communication error count
		{name: "fail/truncated-then-good-frame", send: [][]byte{rtuADU(1, unhex(t, "03 0000 0001"))[:5], nil, rtuADU(1, unhex(t, "03 0000 0001"))},
			want: rtuADU(1, unhex(t, "03 02 0190"))},
		{name: "ok/unknown-unit-no-answer", send: [][]byte{rtuADU(9, unhex(t, "03 0000 0001"))}},
		{name: "ok/broadcast-no-answer", send: [][]byte{rtuADU(0, unhex(t, "06 0064 0777"))},
			check: func(t *testing.T, p *PLC, _ []byte) {
				for _, id := range p.Units() {
					if v := p.Unit(id).HoldingRegister(100); v != 0x777 {
						t.Errorf("unit %d holding 100 = %#x", id, v)
					}
				}
			}},
		{name: "fail/silent-unit", fault: Fault{Silent: true}, send: [][]byte{rtuADU(1, unhex(t, "03 0000 0001"))},
			check: func(t *testing.T, p *PLC, _ []byte) {
				if p.Counters().Requests(1, 3) != 1 {
					t.Error("request to a silent unit not counted")
				}
			}},
		{name: "fail/disconnect-is-silent", fault: Fault{Disconnect: true}, send: [][]byte{rtuADU(1, unhex(t, "03 0000 0001"))}},
		{name: "fail/exception-fault", fault: Fault{Exception: 0x04}, send: [][]byte{rtuADU(1, unhex(t, "03 0000 0001"))},
			want: rtuADU(1, unhex(t, "83 04"))},
		{name: "fail/bad-crc-fault", fault: Fault{BadCRC: true}, send: [][]byte{rtuADU(1, unhex(t, "06 0064 0001"))},
			check: func(t *testing.T, p *PLC, got []byte) {
				want := rtuADU(1, unhex(t, "06 0064 0001"))
				if len(got) != len(want) || !bytes.Equal(got[:len(got)-2], want[:len(want)-2]) || crcOK(got) {
					t.Errorf("answer % x, want the echo with a broken CRC", got)
				}
				if p.Unit(1).HoldingRegister(100) != 1 {
					t.Error("write not applied")
				}
			}},
		{name: "fail/garbage-fault", fault: Fault{Garbage: true}, send: [][]byte{rtuADU(1, unhex(t, "03 0000 0001"))},
			check: func(t *testing.T, p *PLC, got []byte) {
				if len(got) == 0 || crcOK(got) {
					t.Errorf("garbage % x has a good CRC or is empty", got)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := ptyPair(t)
			p := newPLC(t, allModels)
			p.SetFault(1, tc.fault)
			serveRTU(t, p, a)
			f, err := OpenSerial(b)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, chunk := range tc.send {
				if chunk == nil {
					time.Sleep(60 * time.Millisecond) // a silence longer than any frame timeout
					continue
				}
				if _, err := f.Write(chunk); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Millisecond)
			}
			var got []byte
			if tc.want != nil {
				got = readRTU(t, f, len(tc.want), 2*time.Second)
				if !bytes.Equal(got, tc.want) {
					t.Fatalf("answer\n got % x\nwant % x", got, tc.want)
				}
			}
			// Nothing else may follow.
			extra := readFor(t, f, 250*time.Millisecond)
			if tc.want == nil && tc.check != nil {
				got = extra
			} else if len(extra) > 0 {
				t.Fatalf("unexpected bytes % x", extra)
			}
			if tc.check != nil {
				tc.check(t, p, got)
			}
		})
	}
}

// TestMbpollRTU polls the RTU slave with mbpoll (libmodbus) over the pty pair.
func TestMbpollRTU(t *testing.T) {
	if _, err := os.Stat(mbpollPath); err != nil {
		t.Skip("mbpoll not installed")
	}
	a, b := ptyPair(t)
	p := newPLC(t, allModels)
	serveRTU(t, p, a)
	out, err := exec.Command(mbpollPath, "-m", "rtu", "-b", "19200", "-P", "none", "-a", "2", "-r", "1", "-c", "3", "-1", b).CombinedOutput()
	if err != nil {
		t.Fatalf("mbpoll: %v\n%s", err, out)
	}
	for _, want := range []string{"[1]: \t2500", "[2]: \t1000", "[3]: \t80"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

func TestOpenSerialNotATTY(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if f, err := OpenSerial(path); err == nil {
		f.Close()
		t.Fatal("OpenSerial accepted a regular file")
	}
}
