package opcuarelay

import (
	"bytes"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"fmt"

	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uapolicy"
)

// Session-level security of OPC 10000-4: the signatures of CreateSession
// and ActivateSession (5.6.2, 5.6.3, 7.36 SignatureData) and the user
// identity tokens (7.41). The functions here only decode and prove; which
// user or certificate is acceptable is the caller's decision.

// minNonce is the shortest nonce accepted on a secure channel: all of
// brana's policies ask for 32 bytes (OPC 10000-7), and a short nonce would
// make a captured signature easier to replay.
const minNonce = 32

// tokenPolicyNone is the user token policy brana asks for when the
// channel itself is None: a password or a certificate proof then still
// needs real cryptography, done with brana's own key pair.
const tokenPolicyNone = ua.SecurityPolicyURIBasic256Sha256

// sessionSecurity is what the session services need of the secure channel.
type sessionSecurity struct {
	Policy     string // security policy URI of the channel (ua.SecurityPolicyURINone for None)
	Mode       ua.MessageSecurityMode
	ServerCert []byte // brana's DER certificate (leaf), as sent in CreateSessionResponse.ServerCertificate
	ServerKey  *rsa.PrivateKey
	ClientCert []byte // the client's DER certificate from OpenSecureChannel (leaf); nil under None
}

// userTokenPolicy is one user token policy brana offered on the endpoint
// the session was created on.
type userTokenPolicy struct {
	ID     string
	Type   ua.UserTokenType
	Policy string // token security policy URI; "" = the channel's
}

// userIdentity is the user a session was activated as.
type userIdentity struct {
	Kind     string // "anonymous", "username", "x509"
	User     string // username
	Password string // username: the decrypted password, for the caller to check against its hashes (never log it)
	Cert     []byte // x509: the user's DER certificate, proven held by the client but not checked for trust
}

// identityError is a refused session signature or identity token. Reason
// goes to the audit log, so it never holds a password.
type identityError struct {
	Status ua.StatusCode
	Reason string
}

func (e *identityError) Error() string { return e.Reason + " (" + e.Status.Error() + ")" }
func (e *identityError) Unwrap() error { return e.Status }

func refuse(status ua.StatusCode, format string, args ...any) error {
	return &identityError{Status: status, Reason: fmt.Sprintf(format, args...)}
}

// supportedPolicy reports the policies brana accepts for channels and user
// tokens; Basic128Rsa15 and Basic256 are deprecated (SHA-1 signatures) and
// refused even though gopcua implements them.
func supportedPolicy(uri string) bool {
	switch uri {
	case ua.SecurityPolicyURINone, ua.SecurityPolicyURIBasic256Sha256,
		ua.SecurityPolicyURIAes128Sha256RsaOaep, ua.SecurityPolicyURIAes256Sha256RsaPss:
		return true
	}
	return false
}

// secure reports whether the channel has a security policy; it fails on
// a policy brana does not implement, so that an unset Policy never counts
// as None.
func (s *sessionSecurity) secure() (bool, error) {
	if !supportedPolicy(s.Policy) {
		return false, refuse(ua.StatusBadSecurityPolicyRejected, "channel security policy %q is not supported", s.Policy)
	}
	return s.Policy != ua.SecurityPolicyURINone, nil
}

// concat joins certificate and nonce in a new slice: appending to the
// certificate could write into the caller's backing array.
func concat(cert, nonce []byte) []byte {
	b := make([]byte, 0, len(cert)+len(nonce))
	return append(append(b, cert...), nonce...)
}

func rsaKey(der []byte) (*rsa.PublicKey, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	k, ok := c.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("certificate key is %T, not RSA", c.PublicKey)
	}
	return k, nil
}

// serverSignature signs clientCert+clientNonce for
// CreateSessionResponse.ServerSignature (empty SignatureData under None).
func (s *sessionSecurity) serverSignature(clientNonce []byte) (*ua.SignatureData, error) {
	sec, err := s.secure()
	if err != nil {
		return nil, err
	}
	if !sec {
		return &ua.SignatureData{}, nil
	}
	if len(clientNonce) < minNonce {
		return nil, refuse(ua.StatusBadNonceInvalid, "client nonce is %d bytes, at least %d are required", len(clientNonce), minNonce)
	}
	if len(s.ClientCert) == 0 {
		return nil, refuse(ua.StatusBadCertificateInvalid, "secure channel has no client certificate to sign")
	}
	if s.ServerKey == nil {
		return nil, refuse(ua.StatusBadInternalError, "no server key to sign the session with")
	}
	enc, err := uapolicy.Asymmetric(s.Policy, s.ServerKey, nil)
	if err != nil {
		return nil, refuse(ua.StatusBadInternalError, "server key unusable with %s: %v", s.Policy, err)
	}
	sig, err := enc.Signature(concat(s.ClientCert, clientNonce))
	if err != nil {
		return nil, refuse(ua.StatusBadInternalError, "signing the session failed: %v", err)
	}
	return &ua.SignatureData{Algorithm: enc.SignatureURI(), Signature: sig}, nil
}

// checkClientSignature verifies ActivateSessionRequest.ClientSignature over
// serverCert+serverNonce (the nonce brana sent in CreateSession or the last
// ActivateSession). Under None it accepts anything: there is no client key.
func (s *sessionSecurity) checkClientSignature(sig *ua.SignatureData, serverNonce []byte) error {
	sec, err := s.secure()
	if err != nil || !sec {
		return err
	}
	if len(serverNonce) == 0 || len(s.ServerCert) == 0 {
		return refuse(ua.StatusBadInternalError, "no server nonce or certificate to check the client signature against")
	}
	key, err := rsaKey(s.ClientCert)
	if err != nil {
		return refuse(ua.StatusBadCertificateInvalid, "client certificate of the secure channel is unusable: %v", err)
	}
	enc, err := uapolicy.Asymmetric(s.Policy, nil, key)
	if err != nil {
		return refuse(ua.StatusBadCertificateInvalid, "client key is not allowed by %s: %v", s.Policy, err)
	}
	if sig == nil || len(sig.Signature) == 0 {
		return refuse(ua.StatusBadApplicationSignatureInvalid, "client did not sign the session")
	}
	if sig.Algorithm != "" && sig.Algorithm != enc.SignatureURI() {
		return refuse(ua.StatusBadApplicationSignatureInvalid, "client signed the session with %q, the channel policy requires %q", sig.Algorithm, enc.SignatureURI())
	}
	if err := enc.VerifySignature(concat(s.ServerCert, serverNonce), sig.Signature); err != nil {
		return refuse(ua.StatusBadApplicationSignatureInvalid, "client session signature does not verify with the channel's client certificate (stale nonce or wrong key)")
	}
	return nil
}

// userIdentity decodes and checks ActivateSessionRequest.UserIdentityToken
// (and UserTokenSignature) against the token policies offered. A missing
// token counts as anonymous (OPC 10000-4, 5.6.3.2).
func (s *sessionSecurity) userIdentity(tok *ua.ExtensionObject, userSig *ua.SignatureData, serverNonce []byte, offered []userTokenPolicy) (userIdentity, error) {
	if _, err := s.secure(); err != nil {
		return userIdentity{}, err
	}
	if tok == nil || tok.EncodingMask == ua.ExtensionObjectEmpty {
		for _, p := range offered {
			if p.Type == ua.UserTokenTypeAnonymous {
				return userIdentity{Kind: "anonymous"}, nil
			}
		}
		return userIdentity{}, refuse(ua.StatusBadIdentityTokenInvalid, "no user identity given and anonymous access is not offered")
	}
	switch t := tok.Value.(type) {
	case *ua.AnonymousIdentityToken:
		if _, err := findPolicy(offered, t.PolicyID, ua.UserTokenTypeAnonymous); err != nil {
			return userIdentity{}, err
		}
		return userIdentity{Kind: "anonymous"}, nil
	case *ua.UserNameIdentityToken:
		p, err := findPolicy(offered, t.PolicyID, ua.UserTokenTypeUserName)
		if err != nil {
			return userIdentity{}, err
		}
		return s.userName(t, s.tokenPolicy(p), serverNonce)
	case *ua.X509IdentityToken:
		p, err := findPolicy(offered, t.PolicyID, ua.UserTokenTypeCertificate)
		if err != nil {
			return userIdentity{}, err
		}
		return s.x509User(t, s.tokenPolicy(p), userSig, serverNonce)
	case *ua.IssuedIdentityToken:
		return userIdentity{}, refuse(ua.StatusBadIdentityTokenRejected, "issued identity tokens (Kerberos, JWT) are not supported")
	case nil:
		return userIdentity{}, refuse(ua.StatusBadIdentityTokenInvalid, "user identity token of unknown type %v", tok.TypeID)
	default:
		return userIdentity{}, refuse(ua.StatusBadIdentityTokenRejected, "user identity token %T is not supported", t)
	}
}

func findPolicy(offered []userTokenPolicy, id string, typ ua.UserTokenType) (userTokenPolicy, error) {
	for _, p := range offered {
		if p.ID != id {
			continue
		}
		if p.Type != typ {
			return p, refuse(ua.StatusBadIdentityTokenInvalid, "user token policy %q is for %v tokens, the client sent a %v token", id, p.Type, typ)
		}
		return p, nil
	}
	return userTokenPolicy{}, refuse(ua.StatusBadIdentityTokenInvalid, "user token policy %q was not offered on this endpoint", id)
}

// tokenPolicy is the security policy a user token is protected with: its
// own, or the channel's when it names none.
func (s *sessionSecurity) tokenPolicy(p userTokenPolicy) string {
	if p.Policy == "" {
		return s.Policy
	}
	return p.Policy
}

// userName recovers the password of a UserNameIdentityToken. Only the
// legacy secret format (OPC 10000-4, 7.41.2.2) is accepted; it is what
// RSA-policy clients send.
func (s *sessionSecurity) userName(t *ua.UserNameIdentityToken, pol string, serverNonce []byte) (userIdentity, error) {
	if t.UserName == "" {
		return userIdentity{}, refuse(ua.StatusBadIdentityTokenInvalid, "user name token with an empty user name")
	}
	if !supportedPolicy(pol) {
		return userIdentity{}, refuse(ua.StatusBadIdentityTokenRejected, "user token security policy %q is not supported", pol)
	}
	if pol == ua.SecurityPolicyURINone {
		// A plain password is only acceptable inside an encrypted channel.
		if s.Policy == ua.SecurityPolicyURINone || s.Mode != ua.MessageSecurityModeSignAndEncrypt {
			return userIdentity{}, refuse(ua.StatusBadIdentityTokenRejected, "password for %q would cross the network unencrypted", t.UserName)
		}
		if t.EncryptionAlgorithm != "" {
			return userIdentity{}, refuse(ua.StatusBadIdentityTokenInvalid, "password encrypted with %q but the token policy is None", t.EncryptionAlgorithm)
		}
		return userIdentity{Kind: "username", User: t.UserName, Password: string(t.Password)}, nil
	}
	if s.ServerKey == nil {
		return userIdentity{}, refuse(ua.StatusBadIdentityTokenRejected, "no server key to decrypt the password of %q", t.UserName)
	}
	if len(serverNonce) == 0 {
		return userIdentity{}, refuse(ua.StatusBadInternalError, "no server nonce to check the password of %q against", t.UserName)
	}
	enc, err := uapolicy.Asymmetric(pol, s.ServerKey, nil)
	if err != nil {
		return userIdentity{}, refuse(ua.StatusBadInternalError, "server key unusable with %s: %v", pol, err)
	}
	if t.EncryptionAlgorithm != enc.EncryptionURI() {
		return userIdentity{}, refuse(ua.StatusBadIdentityTokenInvalid, "password of %q encrypted with %q, policy %s requires %q", t.UserName, t.EncryptionAlgorithm, pol, enc.EncryptionURI())
	}
	if len(t.Password) == 0 || len(t.Password)%s.ServerKey.Size() != 0 {
		return userIdentity{}, refuse(ua.StatusBadIdentityTokenInvalid, "encrypted password of %q has the wrong length", t.UserName)
	}
	plain, err := enc.Decrypt(t.Password)
	if err != nil {
		return userIdentity{}, refuse(ua.StatusBadIdentityTokenInvalid, "password of %q does not decrypt with brana's key (tampered, or encrypted for another server)", t.UserName)
	}
	if len(plain) < 4 {
		return userIdentity{}, refuse(ua.StatusBadIdentityTokenInvalid, "decrypted password of %q is too short to hold its length", t.UserName)
	}
	n := binary.LittleEndian.Uint32(plain)
	body := plain[4:]
	if uint64(n) != uint64(len(body)) || len(body) < len(serverNonce) {
		return userIdentity{}, refuse(ua.StatusBadIdentityTokenInvalid, "decrypted password of %q has an inconsistent length", t.UserName)
	}
	pw, nonce := body[:len(body)-len(serverNonce)], body[len(body)-len(serverNonce):]
	if subtle.ConstantTimeCompare(nonce, serverNonce) != 1 {
		return userIdentity{}, refuse(ua.StatusBadIdentityTokenInvalid, "password of %q was encrypted with another server nonce (replayed or stale)", t.UserName)
	}
	return userIdentity{Kind: "username", User: t.UserName, Password: string(pw)}, nil
}

// x509User checks that the client holds the private key of the user
// certificate: UserTokenSignature over serverCert+serverNonce.
func (s *sessionSecurity) x509User(t *ua.X509IdentityToken, pol string, sig *ua.SignatureData, serverNonce []byte) (userIdentity, error) {
	if !supportedPolicy(pol) {
		return userIdentity{}, refuse(ua.StatusBadIdentityTokenRejected, "user token security policy %q is not supported", pol)
	}
	if pol == ua.SecurityPolicyURINone {
		// Without a signature anybody who has seen the certificate could
		// present it.
		return userIdentity{}, refuse(ua.StatusBadIdentityTokenRejected, "user certificate offered under security policy None: no proof the client holds its key")
	}
	key, err := rsaKey(t.CertificateData)
	if err != nil {
		return userIdentity{}, refuse(ua.StatusBadIdentityTokenInvalid, "user certificate is unusable: %v", err)
	}
	enc, err := uapolicy.Asymmetric(pol, nil, key)
	if err != nil {
		return userIdentity{}, refuse(ua.StatusBadIdentityTokenRejected, "user certificate key is not allowed by %s: %v", pol, err)
	}
	if len(serverNonce) == 0 || len(s.ServerCert) == 0 {
		return userIdentity{}, refuse(ua.StatusBadInternalError, "no server nonce or certificate to check the user signature against")
	}
	if sig == nil || len(sig.Signature) == 0 {
		return userIdentity{}, refuse(ua.StatusBadUserSignatureInvalid, "user certificate given without a user token signature")
	}
	if sig.Algorithm != "" && sig.Algorithm != enc.SignatureURI() {
		return userIdentity{}, refuse(ua.StatusBadUserSignatureInvalid, "user token signed with %q, policy %s requires %q", sig.Algorithm, pol, enc.SignatureURI())
	}
	if err := enc.VerifySignature(concat(s.ServerCert, serverNonce), sig.Signature); err != nil {
		return userIdentity{}, refuse(ua.StatusBadUserSignatureInvalid, "user token signature does not verify with the user certificate (wrong key or stale nonce)")
	}
	return userIdentity{Kind: "x509", Cert: bytes.Clone(t.CertificateData)}, nil
}

// userTokenPolicies returns the user token policies brana advertises for
// the given kinds ("anonymous", "username", "x509"; others are skipped) on
// an endpoint with channelPolicy.
//
// On a secure endpoint the tokens use the channel's policy. On a None
// endpoint username and x509 are still offered, with token policy
// Basic256Sha256: the password is encrypted with brana's key and the user
// certificate signs brana's nonce, so neither relies on the channel. The
// CreateSessionResponse must then carry brana's certificate and a 32-byte
// nonce even under None, and sessionSecurity must hold brana's key pair.
func userTokenPolicies(kinds []string, channelPolicy string) []*ua.UserTokenPolicy {
	pol := channelPolicy
	if pol == ua.SecurityPolicyURINone {
		pol = tokenPolicyNone
	}
	var out []*ua.UserTokenPolicy
	seen := map[string]bool{}
	for _, k := range kinds {
		if seen[k] {
			continue
		}
		seen[k] = true
		switch k {
		case "anonymous":
			out = append(out, &ua.UserTokenPolicy{PolicyID: "anonymous", TokenType: ua.UserTokenTypeAnonymous, SecurityPolicyURI: ua.SecurityPolicyURINone})
		case "username":
			out = append(out, &ua.UserTokenPolicy{PolicyID: "username", TokenType: ua.UserTokenTypeUserName, SecurityPolicyURI: pol})
		case "x509":
			out = append(out, &ua.UserTokenPolicy{PolicyID: "x509", TokenType: ua.UserTokenTypeCertificate, SecurityPolicyURI: pol})
		}
	}
	return out
}

// offeredTokens turns advertised user token policies into what
// userIdentity checks tokens against.
func offeredTokens(ps []*ua.UserTokenPolicy) []userTokenPolicy {
	out := make([]userTokenPolicy, 0, len(ps))
	for _, p := range ps {
		if p != nil {
			out = append(out, userTokenPolicy{ID: p.PolicyID, Type: p.TokenType, Policy: p.SecurityPolicyURI})
		}
	}
	return out
}
