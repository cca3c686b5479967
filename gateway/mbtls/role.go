package mbtls

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"unicode/utf8"
)

// OIDRole is the X.509v3 extension that carries a Modbus/TCP Security role.
var OIDRole = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 50316, 802, 1}

// ErrBadRole is the error Role wraps for a malformed role extension.
var ErrBadRole = errors.New("mbtls: malformed Modbus role extension")

// Role returns the Modbus/TCP Security role of cert: the ASN.1 UTF8String
// in its extension OIDRole. A certificate without the extension has no role
// (""). A value that is not exactly one non-empty, valid DER UTF8String, or
// the extension given twice, is an error wrapping ErrBadRole.
func Role(cert *x509.Certificate) (string, error) {
	var (
		role  string
		found bool
	)
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(OIDRole) {
			continue
		}
		if found {
			return "", fmt.Errorf("%w: given twice", ErrBadRole)
		}
		found = true
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(ext.Value, &v)
		switch {
		case err != nil:
			return "", fmt.Errorf("%w: %v", ErrBadRole, err)
		case len(rest) > 0:
			return "", fmt.Errorf("%w: %d bytes after the value", ErrBadRole, len(rest))
		case v.Class != asn1.ClassUniversal || v.Tag != asn1.TagUTF8String || v.IsCompound:
			return "", fmt.Errorf("%w: not a UTF8String (class %d, tag %d)", ErrBadRole, v.Class, v.Tag)
		case len(v.Bytes) == 0:
			return "", fmt.Errorf("%w: empty role", ErrBadRole)
		case !utf8.Valid(v.Bytes):
			return "", fmt.Errorf("%w: not valid UTF-8", ErrBadRole)
		}
		role = string(v.Bytes)
	}
	return role, nil
}
