package gateway

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ClockBehind and checkClock: a clock more than a minute before the
// last-seen time is not trusted, and last-seen is then left as it was; a
// trusted clock moves it on. (testbench/scenario TestClockWentBack shows
// that sessions then need approval.)
func TestClockBehind(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	for _, tc := range []struct {
		name     string
		lastSeen string // "" : no file
		behind   bool
	}{
		{"ok/no-file", "", false},
		{"ok/unreadable", "yesterday", false},
		{"ok/earlier", now.Add(-time.Hour).Format(time.RFC3339), false},
		{"ok/within-a-minute", now.Add(50 * time.Second).Format(time.RFC3339), false},
		{"fail/a-day-ahead", now.Add(24 * time.Hour).Format(time.RFC3339), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "last-seen")
			if tc.lastSeen != "" {
				os.WriteFile(path, []byte(tc.lastSeen+"\n"), 0o640)
			}
			last, behind := ClockBehind(dir, now)
			if behind != tc.behind {
				t.Fatalf("ClockBehind = %v, %v; want behind %v", last, behind, tc.behind)
			}
			if tc.behind && last.Format(time.RFC3339) != tc.lastSeen {
				t.Errorf("last seen %v; want %s", last, tc.lastSeen)
			}
			if trusted := checkClock(dir, slog.New(slog.DiscardHandler)); trusted == tc.behind {
				t.Errorf("checkClock = %v; want %v", trusted, !tc.behind)
			}
			b, _ := os.ReadFile(path)
			if tc.behind && string(b) != tc.lastSeen+"\n" {
				t.Errorf("an untrusted clock rewrote last-seen: %q", b)
			}
			if !tc.behind {
				if seen, err := time.Parse(time.RFC3339, string(b[:len(b)-1])); err != nil || seen.Before(now) {
					t.Errorf("a trusted clock left last-seen at %q", b)
				}
			}
		})
	}
}
