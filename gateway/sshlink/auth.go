package sshlink

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/ssh"
)

// authKey keys the authResult in ssh.Permissions.ExtraData.
type authKey struct{}

// authResult carries what publicKey learnt to the connection.
type authResult struct {
	ident          Identity
	portForwarding bool
}

// authError is a refused authentication attempt. count says whether it
// is a failed credential (limits themselves are not).
type authError struct {
	reason string
	count  bool
}

func (e *authError) Error() string { return "sshlink: " + e.reason }

// pendingRefusal is a refused credential whose record waits for the end of
// authentication: OpenSSH offers a plain key before its certificate, and
// clients offer several keys, so a refused key followed by a good one is
// noted in the ssh.open event instead of being a refusal of its own.
type pendingRefusal struct {
	what, reason string
}

// refuseAuth refuses one credential. Failed credentials are recorded when
// authentication ends; limits at once. A non-empty vendor message is sent
// as a banner before the failure.
func (c *conn) refuseAuth(count bool, audit, vendor string) error {
	if count {
		c.pending = append(c.pending, pendingRefusal{"auth publickey", audit})
	} else {
		c.authRefused = true
		c.s.b.Refused(c.src, nil, "auth publickey", audit)
	}
	err := &authError{reason: audit, count: count}
	if vendor == "" {
		return err
	}
	return &ssh.BannerError{Err: err, Message: "brana: " + vendor + "\n"}
}

// publicKey is the only authentication method: plain keys and user
// certificates from the trusted CAs, each bound to a party by the backend.
func (c *conn) publicKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	s := c.s
	now := s.now()
	user := meta.User()
	if left := s.limiter.blocked(c.key, now); left > 0 {
		return nil, c.refuseAuth(false,
			fmt.Sprintf("too many failed authentication attempts from %s (user %.64q); refused for %s more", c.key, user, left.Round(time.Second)),
			fmt.Sprintf("too many failed authentication attempts from %s; try again in %s", c.src.Addr(), left.Round(time.Second)))
	}

	var (
		ident = Identity{User: user}
		crit  map[string]string
		pf    = true
	)
	cert, isCert := key.(*ssh.Certificate)
	if isCert {
		fp := ssh.FingerprintSHA256(cert.Key)
		desc := fmt.Sprintf("certificate %.128q serial %d key %s user %.64q", cert.KeyId, cert.Serial, fp, user)
		if cert.CertType != ssh.UserCert {
			return nil, c.refuseAuth(true, desc+": not a user certificate", "certificate not accepted: not a user certificate")
		}
		if !s.cas[string(cert.SignatureKey.Marshal())] {
			return nil, c.refuseAuth(true,
				fmt.Sprintf("%s: signed by untrusted CA %s", desc, ssh.FingerprintSHA256(cert.SignatureKey)),
				"certificate not accepted: its CA is not trusted here")
		}
		if !slices.Contains(cert.ValidPrincipals, user) {
			return nil, c.refuseAuth(true,
				fmt.Sprintf("%s: user is not among the principals %q", desc, cert.ValidPrincipals),
				fmt.Sprintf("certificate %q is not valid for user %.64q", cert.KeyId, user))
		}
		if after := int64(cert.ValidAfter); after < 0 || now.Unix() < after {
			at := certTime(cert.ValidAfter)
			return nil, c.refuseAuth(true,
				fmt.Sprintf("%s: not valid before %s", desc, at.UTC().Format(time.RFC3339)),
				fmt.Sprintf("certificate %q is not valid before %s", cert.KeyId, at.UTC().Format(time.RFC3339)))
		}
		if cert.ValidBefore != ssh.CertTimeInfinity {
			if before := int64(cert.ValidBefore); before < 0 || now.Unix() >= before {
				at := certTime(cert.ValidBefore)
				return nil, c.refuseAuth(true,
					fmt.Sprintf("%s: expired at %s", desc, at.UTC().Format(time.RFC3339)),
					fmt.Sprintf("certificate %q expired at %s", cert.KeyId, at.UTC().Format(time.RFC3339)))
			}
			ident.ValidBefore = certTime(cert.ValidBefore)
		}
		// Signature, critical options (source-address only; force-command
		// and the unknown are refused) and the checks above once more.
		checker := ssh.CertChecker{SupportedCriticalOptions: []string{"source-address"}, Clock: s.now}
		if err := checker.CheckCert(user, cert); err != nil {
			return nil, c.refuseAuth(true, fmt.Sprintf("%s: %v", desc, err), "certificate not accepted")
		}
		party, ok := s.b.Identify(user, cert.Key, cert)
		if !ok {
			return nil, c.refuseAuth(true, desc+": not enrolled",
				fmt.Sprintf("certificate %q is not enrolled here; ask the operator", cert.KeyId))
		}
		_, pf = cert.Permissions.Extensions["permit-port-forwarding"]
		crit = cert.CriticalOptions
		ident.Party = party
		ident.Principal = user
		ident.KeyFingerprint = fp
		ident.CertID = cert.KeyId
		ident.CertSerial = cert.Serial
	} else {
		fp := ssh.FingerprintSHA256(key)
		party, ok := s.b.Identify(user, key, nil)
		if !ok {
			// No banner: a certificate for this key may come next.
			return nil, c.refuseAuth(true, fmt.Sprintf("key %s (%s) for user %.64q is not enrolled", fp, key.Type(), user), "")
		}
		ident.Party = party
		ident.KeyFingerprint = fp
	}
	if s.partyFull(ident.Party) {
		return nil, c.refuseAuth(false,
			fmt.Sprintf("too many connections for party %s (max %d)", ident.Party, s.cfg.MaxConnsPerParty),
			fmt.Sprintf("%s already has %d connections open; close one and try again", ident.Party, s.cfg.MaxConnsPerParty))
	}
	ext := map[string]string{"brana-fingerprint": ident.KeyFingerprint}
	if isCert {
		ext["brana-cert-id"] = ident.CertID
	}
	return &ssh.Permissions{
		CriticalOptions: crit, // the library enforces source-address
		Extensions:      ext,
		ExtraData:       map[any]any{authKey{}: &authResult{ident: ident, portForwarding: pf}},
	}, nil
}

func certTime(t uint64) time.Time {
	if t > 1<<62 {
		return time.Unix(1<<62, 0)
	}
	return time.Unix(int64(t), 0)
}

// authLog sees every attempt, just before the library answers it. Each
// failure is answered after a delay that grows with the failed logins of
// the source in the last minute and the failures in this connection.
func (c *conn) authLog(meta ssh.ConnMetadata, method string, err error) {
	switch method {
	case "none", "publickey", "password", "keyboard-interactive", "hostbased", "gssapi-with-mic":
	default:
		method = "other"
	}
	if !slices.Contains(c.authTried, method) {
		c.authTried = append(c.authTried, method)
	}
	if err == nil || method == "none" {
		return
	}
	var ae *authError
	if errors.As(err, &ae) {
		if !ae.count {
			return
		}
	} else {
		reason := fmt.Sprintf("%s authentication is not offered (user %.64q)", method, meta.User())
		if method == "publickey" {
			reason = fmt.Sprintf("public key refused (user %.64q): %v", meta.User(), err)
		}
		c.pending = append(c.pending, pendingRefusal{"auth " + method, reason})
	}
	n := c.s.limiter.failures(c.key, c.s.now()) + c.authFails
	c.authFails++
	t := time.NewTimer(slowFor(n))
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.ctx.Done():
	}
}
