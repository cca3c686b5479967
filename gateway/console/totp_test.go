package console

import (
	"testing"
	"time"
)

// RFC 6238 appendix B, SHA-1 rows: the 8-digit codes for the ASCII key
// "12345678901234567890". The last six digits are the 6-digit codes.
func TestTOTPVectors(t *testing.T) {
	key := []byte("12345678901234567890")
	for _, tc := range []struct {
		unix int64
		want string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	} {
		at := time.Unix(tc.unix, 0)
		if got := hotp(key, totpStepAt(at), 8); got != tc.want {
			t.Errorf("8 digits at %d = %s, want %s", tc.unix, got, tc.want)
		}
		if got := totpCode(key, at); got != tc.want[2:] {
			t.Errorf("6 digits at %d = %s, want %s", tc.unix, got, tc.want[2:])
		}
	}
}

// RFC 4226 appendix D: HOTP values for counters 0..9.
func TestHOTPVectors(t *testing.T) {
	key := []byte("12345678901234567890")
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for i, w := range want {
		if got := hotp(key, uint64(i), 6); got != w {
			t.Errorf("counter %d = %s, want %s", i, got, w)
		}
	}
}

func TestTOTPVerify(t *testing.T) {
	key := []byte("12345678901234567890")
	now := time.Unix(1234567890, 0)
	cur := totpStepAt(now)
	for _, tc := range []struct {
		name string
		code string
		last uint64
		ok   bool
	}{
		{"ok/now", totpCode(key, now), 0, true},
		{"ok/previous-step", totpCode(key, now.Add(-30*time.Second)), 0, true},
		{"ok/next-step", totpCode(key, now.Add(30*time.Second)), 0, true},
		{"fail/two-steps-ago", totpCode(key, now.Add(-60*time.Second)), 0, false},
		{"fail/replayed", totpCode(key, now), cur, false},
		{"fail/short", "12345", 0, false},
		{"fail/wrong", "000000", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := totpVerify(key, tc.code, now, tc.last); ok != tc.ok {
				t.Fatalf("totpVerify(%q) = %v, want %v", tc.code, ok, tc.ok)
			}
		})
	}
}
