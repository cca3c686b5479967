package console

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"time"
)

// TOTP parameters (RFC 6238 defaults, which authenticator apps assume).
const (
	totpStep   = 30 * time.Second
	totpDigits = 6
	totpSkew   = 1 // steps accepted either side of now, for clock drift and typing time
)

// hotp is RFC 4226 section 5.3: HMAC-SHA-1 of the counter, dynamic
// truncation, the low digits in decimal.
func hotp(key []byte, counter uint64, digits int) string {
	mac := hmac.New(sha1.New, key)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	out := make([]byte, digits)
	for i := digits - 1; i >= 0; i-- {
		out[i] = byte('0' + v%10)
		v /= 10
	}
	return string(out)
}

// totpStepAt is the RFC 6238 time counter T for t (T0 = 0).
func totpStepAt(t time.Time) uint64 { return uint64(t.Unix()) / uint64(totpStep/time.Second) }

// totpCode is the code for t.
func totpCode(key []byte, t time.Time) string { return hotp(key, totpStepAt(t), totpDigits) }

// totpVerify checks code against the steps around now and returns the step
// it matched. Steps at or before last are refused, so that a code seen over
// someone's shoulder cannot be used a second time.
func totpVerify(key []byte, code string, now time.Time, last uint64) (uint64, bool) {
	if len(code) != totpDigits {
		return 0, false
	}
	cur := totpStepAt(now)
	var hit uint64
	ok := 0
	// Every candidate is computed and compared, so that timing does not say which matched.
	for d := -totpSkew; d <= totpSkew; d++ {
		step := uint64(int64(cur) + int64(d))
		m := subtle.ConstantTimeCompare([]byte(hotp(key, step, totpDigits)), []byte(code))
		if m == 1 && step > last && ok == 0 {
			hit, ok = step, 1
		}
	}
	return hit, ok == 1
}
