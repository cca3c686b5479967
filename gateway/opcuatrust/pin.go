package opcuatrust

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"
)

// ParseCertificate reads a certificate the way files and OPC UA messages
// carry one: DER, a chain of DER certificates one after the other (the
// first is returned), or PEM with the certificate in the first
// CERTIFICATE block.
func ParseCertificate(b []byte) (*x509.Certificate, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: a PEM %s block", ErrMalformed, blk.Type)
		}
		b = blk.Bytes
	}
	return Leaf(b)
}

// Fingerprint is the SHA-256 of a DER certificate in lower-case hex: what
// `openssl x509 -noout -fingerprint -sha256` prints, without the colons,
// and what an OPC UA target's server_certificate pins. Of a chain it is the
// first certificate's.
func Fingerprint(der []byte) string {
	var first asn1.RawValue
	if _, err := asn1.Unmarshal(der, &first); err == nil {
		der = first.FullBytes
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// FingerprintPrefix starts a fingerprint written in a config file.
const FingerprintPrefix = "sha256:"

// ParseFingerprint reads a SHA-256 fingerprint written "sha256:" and 64 hex
// digits, in either case and with or without colons between them, as
// UaExpert and openssl print it. It returns the digits in lower case.
func ParseFingerprint(s string) (string, error) {
	if !IsFingerprint(s) {
		return "", fmt.Errorf("%q does not start with %s", s, FingerprintPrefix)
	}
	h := strings.ToLower(strings.ReplaceAll(s[len(FingerprintPrefix):], ":", ""))
	if _, err := hex.DecodeString(h); err != nil || len(h) != 2*sha256.Size {
		return "", fmt.Errorf("%q is not %s and %d hex digits (colons between them are allowed)", s, FingerprintPrefix, 2*sha256.Size)
	}
	return h, nil
}

// IsFingerprint reports whether s is written as a fingerprint (starts with
// "sha256:", in either case) rather than as a file name.
func IsFingerprint(s string) bool {
	return len(s) >= len(FingerprintPrefix) && strings.EqualFold(s[:len(FingerprintPrefix)], FingerprintPrefix)
}
