//go:build linux

package scenario

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brana-ot/brana/gateway/audit"
	"github.com/brana-ot/brana/testbench/gwtest"
	"github.com/brana-ot/brana/testbench/modbussim"
)

// When the file system under the audit log fills up, the gateway refuses
// every command with exception 04 and none reaches the PLC unlogged; once
// space is back it resumes within a second or two, and the log verifies
// with a gap record that says what was lost and that those commands were
// refused.
func TestDiskFullRefusesCommandsThenRecovers(t *testing.T) {
	mnt := mountTmpfs(t, "2m")
	auditDir := filepath.Join(mnt, "audit")
	plc, err := modbussim.New(map[byte]string{1: "feeder"})
	if err != nil {
		t.Fatal(err)
	}
	plcAddr, tap := serveTappedPLC(t, plc)
	gw := gwtest.Start(t, diskConfig(plcAddr, auditDir, "1KiB"))
	rc := dialFrom(t, gw.ModbusAddr("scada"), engineeringIP)

	// Each write has its own value, so the log and the PLC can be matched.
	next := uint16(1)
	write := func() (uint16, []byte) {
		v := next
		next++
		return v, rc.call(1, pduWriteSingle(100, v))
	}
	isOK := func(v uint16, resp []byte) bool { return slices.Equal(resp, pduWriteSingle(100, v)) }
	refusedVals := map[uint16]bool{}

	for range 5 {
		if v, resp := write(); !isOK(v, resp) {
			t.Fatalf("write %d before the disk filled: answer % x", v, resp)
		}
	}
	if n := plc.Counters().Writes(1); n != 5 {
		t.Fatalf("PLC counted %d writes, want 5", n)
	}

	filler := fillFS(t, mnt)
	// The active segment's last page may still take a record or two; past
	// that, the log cannot take a record and the command is refused.
	slack := 0
	for {
		v, resp := write()
		if isOK(v, resp) {
			if slack++; slack > 20 {
				t.Fatalf("%d writes succeeded on a full file system", slack)
			}
			continue
		}
		expectException(t, resp, 6, 4)
		refusedVals[v] = true
		break
	}
	t.Logf("%d writes fitted in the page left in the segment", slack)

	before := plc.Counters().Writes(1)
	for i := range 10 {
		v, resp := write()
		expectException(t, resp, 6, 4)
		refusedVals[v] = true
		if i == 4 {
			time.Sleep(300 * time.Millisecond) // let the log retry (and fail) its repair a few times
		}
	}
	// FC 16 is refused the same way.
	v := next
	next++
	expectException(t, rc.call(1, pduWriteMultiple(100, v)), 16, 4)
	refusedVals[v] = true
	if after := plc.Counters().Writes(1); after != before {
		t.Fatalf("the PLC counted %d writes while the audit log could not take records, want %d: a write reached the plant unlogged", after, before)
	}

	// A new session is refused while the disk is full (below audit.min_free).
	late := dialFrom(t, gw.ModbusAddr("scada"), engineeringIP)
	late.expectClosed(3 * time.Second)

	// Space is back: writes succeed again within a second or two.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	for {
		v, resp := write()
		if isOK(v, resp) {
			break
		}
		expectException(t, resp, 6, 4)
		refusedVals[v] = true
		if time.Since(freed) > 2*time.Second {
			t.Fatalf("writes still refused %v after the disk was freed", time.Since(freed))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("writes accepted again %v after the disk was freed", time.Since(freed).Round(time.Millisecond))
	resumed := plc.Counters().Writes(1)
	for range 5 {
		if v, resp := write(); !isOK(v, resp) {
			t.Fatalf("write %d after recovery: answer % x", v, resp)
		}
	}
	if n := plc.Counters().Writes(1); n != resumed+5 {
		t.Errorf("PLC counted %d writes after recovery, want %d", n, resumed+5)
	}
	if got := plc.Unit(1).HoldingRegister(100); got != next-1 {
		t.Errorf("holding 100 = %d, want the last value written, %d", got, next-1)
	}

	rc.c.Close()
	gw.Stop(t)
	rep, err := audit.Verify(auditDir, readPub(t, gw))
	if err != nil {
		t.Fatalf("audit.Verify after the outage: %v", err)
	}
	if rep.Gaps < 1 {
		t.Errorf("audit.Verify reports %d gap records, want at least 1 (the repair after the failed write)", rep.Gaps)
	}
	t.Logf("verify: %d records, %d checkpoints, %d gaps, notes %v", rep.Records, rep.Checkpoints, rep.Gaps, rep.Notes)

	recs := scanAudit(t, auditDir)
	allowed := map[uint16]bool{}
	var gap *auditRec
	for i := range recs {
		r := &recs[i]
		switch {
		case r.Type == "command" && r.Decision == "allow" && len(r.Values) == 1:
			allowed[r.Values[0]] = true
		case r.Type == "gap" && gap == nil:
			gap = r
		}
	}
	if gap == nil || !strings.Contains(gap.Detail, "refused") {
		t.Errorf("gap record: %v", gap)
	}
	// Every write that reached the PLC is logged; no refused write is.
	for _, w := range tap.snapshot() {
		if len(w.vals) != 1 || !allowed[w.vals[0]] {
			t.Errorf("write %+v reached the PLC without an allowed command record", w)
		}
		if len(w.vals) == 1 && refusedVals[w.vals[0]] {
			t.Errorf("write %+v was refused with exception 04 but reached the PLC", w)
		}
	}
	for v := range refusedVals {
		if allowed[v] {
			t.Errorf("write of %d was refused with exception 04 but the log has it as allowed", v)
		}
	}
}

// The audit.min_free floor: with less free space under the log than the
// floor, a new session is refused (connection closed) and a session.refused
// record with reason audit-disk-low is written; an open session goes on, and
// once space is back new sessions are let in again.
func TestDiskFullFloorRefusesNewSessions(t *testing.T) {
	t.Run("from-start", func(t *testing.T) {
		mnt := mountTmpfs(t, "2m")
		plc, err := modbussim.New(map[byte]string{1: "feeder"})
		if err != nil {
			t.Fatal(err)
		}
		plcAddr, _ := serveTappedPLC(t, plc)
		gw := gwtest.Start(t, diskConfig(plcAddr, filepath.Join(mnt, "audit"), "4MiB"))
		rc := dialFrom(t, gw.ModbusAddr("scada"), engineeringIP)
		rc.expectClosed(3 * time.Second)
		expectDiskLowRefusal(t, gw, rc)
		if n := plc.Counters().Total(); n != 0 {
			t.Errorf("PLC saw %d requests", n)
		}
	})

	t.Run("falls-below", func(t *testing.T) {
		mnt := mountTmpfs(t, "2m")
		plc, err := modbussim.New(map[byte]string{1: "feeder"})
		if err != nil {
			t.Fatal(err)
		}
		plcAddr, _ := serveTappedPLC(t, plc)
		gw := gwtest.Start(t, diskConfig(plcAddr, filepath.Join(mnt, "audit"), "1MiB"))
		addr := gw.ModbusAddr("scada")
		open := dialFrom(t, addr, engineeringIP)
		if resp := open.call(1, pduWriteSingle(100, 1)); !slices.Equal(resp, pduWriteSingle(100, 1)) {
			t.Fatalf("write with space: answer % x", resp)
		}

		// Leave about 256 KiB: below the floor, plenty for records.
		free := freeBytes(t, mnt)
		filler := filepath.Join(mnt, "filler")
		if err := os.WriteFile(filler, make([]byte, free-256<<10), 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // the log looks at free space every sync interval

		late := dialFrom(t, addr, engineeringIP)
		late.expectClosed(3 * time.Second)
		expectDiskLowRefusal(t, gw, late)

		// The open session goes on: its records can still be kept.
		if resp := open.call(1, pduWriteSingle(100, 2)); !slices.Equal(resp, pduWriteSingle(100, 2)) {
			t.Fatalf("write in the open session below the floor: answer % x", resp)
		}

		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		again := dialFrom(t, addr, engineeringIP)
		if resp := again.call(1, pduWriteSingle(100, 3)); !slices.Equal(resp, pduWriteSingle(100, 3)) {
			t.Fatalf("write in a new session once space is back: answer % x", resp)
		}
		if n := plc.Counters().Writes(1); n != 3 {
			t.Errorf("PLC counted %d writes, want 3", n)
		}
		gw.Stop(t)
		if _, err := audit.Verify(filepath.Join(mnt, "audit"), readPub(t, gw)); err != nil {
			t.Errorf("audit.Verify: %v", err)
		}
	})
}

// expectDiskLowRefusal finds the session.refused record of rc's connection.
func expectDiskLowRefusal(t *testing.T, gw *gwtest.Gateway, rc *rawConn) {
	t.Helper()
	r := waitAudit(t, gw, "the refused session", func(r *auditRec) bool {
		return r.Type == "session.refused" && r.Source == rc.source()
	})
	if r.Reason != "audit-disk-low" || r.Decision != "deny" || r.Party != "engineering" {
		t.Errorf("session.refused record: %s", r.String())
	}
}

// diskConfig is a gateway with its audit log in auditDir, the given
// audit.min_free, a short append timeout and sync interval.
func diskConfig(plcAddr, auditDir, minFree string) string {
	return `version: 1
gateway:
  name: "disk full test gateway"
  data_dir: data
audit:
  dir: ` + auditDir + `
  durability: batch
  sync_interval: 50ms
  append_timeout: 500ms
  min_free: ` + minFree + `

listeners:
  - name: scada
    address: 127.0.0.1:0
    routes:
      - target: plc

targets:
  - name: plc
    transport: tcp
    address: ` + plcAddr + `
    timeout: 1s
` + partiesYAML + `
rules:
  - name: setpoints
    parties: [engineering]
    targets: [plc]
    classes: [write]
    units: [1]
    ranges:
      holding: ["100-119"]
`
}

// mountTmpfs mounts a tmpfs of the given size on a temporary directory and
// unmounts it when the test ends. Without the privilege to mount, the test
// skips, or fails when the environment variable CI is set.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		msg := "mounting a tmpfs (needs root or CAP_SYS_ADMIN): " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// fillFS writes a filler file in dir until the file system is full and
// returns its path.
func fillFS(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for chunk := len(buf); chunk > 0; {
		n, err := f.Write(buf[:chunk])
		switch {
		case err == nil:
		case errors.Is(err, syscall.ENOSPC):
			if n == 0 {
				chunk /= 2
			}
		default:
			t.Fatalf("filling %s: %v", dir, err)
		}
	}
	if free := freeBytes(t, dir); free != 0 {
		t.Fatalf("%d bytes still free after filling %s", free, dir)
	}
	return path
}

func freeBytes(t *testing.T, dir string) int {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int(st.Bavail) * int(st.Bsize)
}

// readPub reads the audit public key the gateway wrote at first start.
func readPub(t *testing.T, gw *gwtest.Gateway) ed25519.PublicKey {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(gw.Dir, "data", "keys", "audit-signing.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := audit.ParsePublicKeyPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}
