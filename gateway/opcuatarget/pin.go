package opcuatarget

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/gateway/opcuatrust"
)

// Pinning the PLC's application certificate (server_certificate).
//
// GetEndpoints travels without security, so whoever sits on the path can
// answer it with any certificate, the pinned one included (a certificate is
// public). Choosing the endpoint whose certificate is the pinned one binds
// the connection only because of what follows: SecurityFromEndpoint makes
// that certificate the channel's remote certificate, and gopcua encrypts the
// OpenSecureChannel request to its public key (asymmetric chunks are
// encrypted in Sign mode too) and signs it with brana's key. The request
// carries brana's fresh client nonce; the channel's keys are derived from
// both nonces (P_SHA256), and every later message (CreateSession,
// ActivateSession with the target's password, each service) is signed with
// them and, in SignAndEncrypt, encrypted. Only the holder of the pinned
// certificate's private key reads the client nonce, so a PLC without it
// cannot answer a single message brana accepts. That is why a pin never
// picks a None endpoint, even with security_policy auto.
//
// gopcua v0.8.0 does not check the signature of the OpenSecureChannel
// response against the endpoint's certificate: it takes the certificate the
// response carries (its SenderCertificate) as the channel's remote
// certificate and checks the signature against that one (uasc
// SecureChannel.readChunk), and encrypts later renewals to it. An impostor
// can so complete the OpenSecureChannel exchange, though not the first
// message after it. brana therefore also compares the certificate of the
// response with the pin (checkChannel): before it re-activates a session on
// a new connection, and right after a new session is made (gopcua's Connect
// opens the channel and makes and activates the session in one call). The
// renewals so stay bound to the pinned key, and a PLC that presents one
// certificate in GetEndpoints and another on the channel is refused rather
// than half trusted.

// CertificateMismatchError is a PLC whose application certificate is not
// the one its target's server_certificate pins. Nothing but discovery
// (GetEndpoints) or an OpenSecureChannel has reached the PLC.
type CertificateMismatchError struct {
	Target    string
	Pinned    string   // SHA-256, lower-case hex
	Presented []string // the SHA-256 of each certificate the PLC presented
	Where     string   // "GetEndpoints" or "OpenSecureChannel"
}

func (e *CertificateMismatchError) Error() string {
	got := "no certificate on a secured endpoint"
	if len(e.Presented) > 0 {
		got = "sha256:" + strings.Join(e.Presented, ", sha256:")
	}
	return fmt.Sprintf("target %s: the PLC's certificate is not the pinned one: server_certificate pins sha256:%s, "+
		"the PLC presents %s in %s", e.Target, e.Pinned, got, e.Where)
}

// pin keeps the endpoints whose certificate is the pinned one and whose
// policy is not None; without a pin it returns eps as they are. A PLC that
// presents the pinned certificate on no secure endpoint is refused.
func (t *Target) pin(eps []*ua.EndpointDescription) ([]*ua.EndpointDescription, error) {
	want := t.cfg.ServerCertificateSHA256
	if want == "" {
		return eps, nil
	}
	var kept []*ua.EndpointDescription
	var presented []string
	for _, ep := range eps {
		if ep.SecurityPolicyURI == ua.SecurityPolicyURINone || ep.SecurityMode == ua.MessageSecurityModeNone ||
			len(ep.ServerCertificate) == 0 {
			continue
		}
		fp := opcuatrust.Fingerprint(ep.ServerCertificate)
		if fp == want {
			kept = append(kept, ep)
		} else if !slices.Contains(presented, fp) {
			presented = append(presented, fp)
		}
	}
	if len(kept) == 0 {
		return nil, &CertificateMismatchError{Target: t.cfg.Name, Pinned: want, Presented: presented, Where: "GetEndpoints"}
	}
	return kept, nil
}

// checkChannel compares the certificate the PLC sent in its
// OpenSecureChannel response with the pin. A certificate brana cannot read
// (a gopcua that keeps it elsewhere) fails the check: a pin that cannot be
// checked is not taken as kept.
func (t *Target) checkChannel(c *opcua.Client) error {
	want := t.cfg.ServerCertificateSHA256
	if want == "" {
		return nil
	}
	der := channelCertificate(c)
	if der == nil {
		return fmt.Errorf("target %s: cannot read the certificate of the secure channel to compare it with server_certificate", t.cfg.Name)
	}
	if fp := opcuatrust.Fingerprint(der); fp != want {
		return &CertificateMismatchError{Target: t.cfg.Name, Pinned: want, Presented: []string{fp}, Where: "OpenSecureChannel"}
	}
	return nil
}

// channelCertificate is the certificate the server sent in the
// OpenSecureChannel response of c's secure channel. gopcua v0.8.0 keeps it
// unexported (SecureChannel.cfg.RemoteCertificate) and its uacp dialer
// takes only a *net.TCPConn, so the bytes cannot be watched on the way
// either: it is read by reflection, read-only, right after the channel
// opened and before a renewal can write it again. TestChannelCertificate
// fails if a gopcua upgrade moves it.
func channelCertificate(c *opcua.Client) []byte {
	sc := c.SecureChannel()
	if sc == nil {
		return nil
	}
	cfg := reflect.ValueOf(sc).Elem().FieldByName("cfg")
	if cfg.Kind() != reflect.Pointer || cfg.IsNil() {
		return nil
	}
	rc := cfg.Elem().FieldByName("RemoteCertificate")
	if rc.Kind() != reflect.Slice || rc.Type().Elem().Kind() != reflect.Uint8 || rc.Len() == 0 {
		return nil
	}
	return slices.Clone(rc.Bytes())
}

// recheckPin asks the PLC for its endpoints again before a session is
// restored on a new connection, so that a PLC whose certificate changed
// since the session opened is refused by name rather than retried for the
// session's lifetime.
func (t *Target) recheckPin(ctx context.Context) error {
	if t.cfg.ServerCertificateSHA256 == "" {
		return nil
	}
	eps, err := opcua.GetEndpoints(ctx, t.cfg.Endpoint, t.baseOptions()...)
	if err != nil {
		return fmt.Errorf("GetEndpoints at %s: %w", t.cfg.Endpoint, err)
	}
	_, err = t.pin(eps)
	return err
}

// notePin logs, once per target, the fingerprint of an unpinned PLC's
// certificate, so that the operator can pin what brana sees.
func (t *Target) notePin(ep *ua.EndpointDescription) {
	if t.cfg.ServerCertificateSHA256 != "" || len(ep.ServerCertificate) == 0 || !t.pinNoted.CompareAndSwap(false, true) {
		return
	}
	fp := opcuatrust.Fingerprint(ep.ServerCertificate)
	subject := ""
	if c, err := opcuatrust.ParseCertificate(ep.ServerCertificate); err == nil {
		subject = c.Subject.String()
	}
	t.log.Info("opc ua PLC certificate is not pinned; pin it with server_certificate", "endpoint", t.cfg.Endpoint,
		"server_certificate", opcuatrust.FingerprintPrefix+fp, "subject", subject)
}

// mismatch reports whether err is a pinned certificate the PLC no longer
// presents.
func mismatch(err error) bool {
	var m *CertificateMismatchError
	return errors.As(err, &m)
}
