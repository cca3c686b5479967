package opcuarelay

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uapolicy"
)

// The "client" side of these tests repeats gopcua's uasc
// secure_channel_crypto.go (NewSessionSignature, VerifySessionSignature,
// EncryptUserPassword, NewUserTokenSignature) so that brana is checked
// against an independent producer.

type idParty struct {
	cert []byte
	key  *rsa.PrivateKey
}

var (
	idOnce                              sync.Once
	idServer, idClient, idUser, idOther idParty
)

func idParties(t *testing.T) {
	t.Helper()
	idOnce.Do(func() {
		idServer = idNewParty(t, "urn:brana:test:server")
		idClient = idNewParty(t, "urn:brana:test:client")
		idUser = idNewParty(t, "urn:brana:test:user")
		idOther = idNewParty(t, "urn:brana:test:other")
	})
	if idServer.key == nil {
		t.Fatal("test key pairs were not generated")
	}
}

func idNewParty(t *testing.T, uri string) idParty {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(uri)
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(time.Now().UnixNano()),
		Subject:        pkix.Name{CommonName: uri},
		NotBefore:      time.Now().Add(-time.Hour),
		NotAfter:       time.Now().Add(time.Hour),
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:           []*url.URL{u},
		IsCA:           false,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return idParty{cert: der, key: key}
}

func idNonce(t *testing.T) []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func idRemoteKey(t *testing.T, der []byte) *rsa.PublicKey {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c.PublicKey.(*rsa.PublicKey)
}

// clientSessionSignature is gopcua's NewSessionSignature.
func clientSessionSignature(t *testing.T, policy string, local *rsa.PrivateKey, cert, nonce []byte) *ua.SignatureData {
	enc, err := uapolicy.Asymmetric(policy, local, idRemoteKey(t, cert))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := enc.Signature(append(append([]byte{}, cert...), nonce...))
	if err != nil {
		t.Fatal(err)
	}
	return &ua.SignatureData{Algorithm: enc.SignatureURI(), Signature: sig}
}

// clientVerifySessionSignature is gopcua's VerifySessionSignature.
func clientVerifySessionSignature(policy string, local *rsa.PrivateKey, localCert, serverCert, nonce, sig []byte) error {
	c, err := x509.ParseCertificate(serverCert)
	if err != nil {
		return err
	}
	enc, err := uapolicy.Asymmetric(policy, local, c.PublicKey.(*rsa.PublicKey))
	if err != nil {
		return err
	}
	return enc.VerifySignature(append(append([]byte{}, localCert...), nonce...), sig)
}

// clientEncryptPassword is gopcua's EncryptUserPassword.
func clientEncryptPassword(t *testing.T, policy, password string, serverCert, nonce []byte) ([]byte, string) {
	if policy == ua.SecurityPolicyURINone {
		return []byte(password), ""
	}
	enc, err := uapolicy.Asymmetric(policy, idClient.key, idRemoteKey(t, serverCert))
	if err != nil {
		t.Fatal(err)
	}
	secret := binary.LittleEndian.AppendUint32(nil, uint32(len(password)+len(nonce)))
	secret = append(secret, password...)
	secret = append(secret, nonce...)
	pass, err := enc.Encrypt(secret)
	if err != nil {
		t.Fatal(err)
	}
	return pass, enc.EncryptionURI()
}

// clientUserTokenSignature is gopcua's NewUserTokenSignature.
func clientUserTokenSignature(t *testing.T, policy string, userKey *rsa.PrivateKey, serverCert, nonce []byte) *ua.SignatureData {
	enc, err := uapolicy.Asymmetric(policy, userKey, idRemoteKey(t, serverCert))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := enc.Signature(append(append([]byte{}, serverCert...), nonce...))
	if err != nil {
		t.Fatal(err)
	}
	return &ua.SignatureData{Algorithm: enc.SignatureURI(), Signature: sig}
}

// wire sends a token through the binary encoding, as ActivateSession does.
func wire(t *testing.T, v any) *ua.ExtensionObject {
	t.Helper()
	b, err := ua.NewExtensionObject(v).Encode()
	if err != nil {
		t.Fatal(err)
	}
	var eo ua.ExtensionObject
	if _, err := eo.Decode(b); err != nil {
		t.Fatal(err)
	}
	return &eo
}

var idPolicies = []string{
	ua.SecurityPolicyURIBasic256Sha256,
	ua.SecurityPolicyURIAes128Sha256RsaOaep,
	ua.SecurityPolicyURIAes256Sha256RsaPss,
}

func idShort(policy string) string { return policy[strings.LastIndex(policy, "#")+1:] }

func idSecurity(policy string) *sessionSecurity {
	return &sessionSecurity{Policy: policy, Mode: ua.MessageSecurityModeSignAndEncrypt,
		ServerCert: idServer.cert, ServerKey: idServer.key, ClientCert: idClient.cert}
}

func wantStatus(t *testing.T, err error, want ua.StatusCode) {
	t.Helper()
	var ie *identityError
	if !errors.As(err, &ie) {
		t.Fatalf("error = %v, want an identityError with %v", err, want)
	}
	if ie.Status != want || !errors.Is(err, want) {
		t.Fatalf("status = %v (%s), want %v", ie.Status, ie.Reason, want)
	}
	if ie.Reason == "" {
		t.Fatal("identityError without a reason")
	}
	t.Logf("refused: %v", err)
}

func TestServerSignature(t *testing.T) {
	idParties(t)
	for _, pol := range idPolicies {
		t.Run(idShort(pol), func(t *testing.T) {
			s := idSecurity(pol)
			nonce := idNonce(t)
			sd, err := s.serverSignature(nonce)
			if err != nil {
				t.Fatal(err)
			}
			enc, _ := uapolicy.Asymmetric(pol, idServer.key, nil)
			if sd.Algorithm != enc.SignatureURI() {
				t.Errorf("algorithm = %q, want %q", sd.Algorithm, enc.SignatureURI())
			}
			if err := clientVerifySessionSignature(pol, idClient.key, idClient.cert, idServer.cert, nonce, sd.Signature); err != nil {
				t.Errorf("client rejects the server signature: %v", err)
			}
			if err := clientVerifySessionSignature(pol, idClient.key, idClient.cert, idServer.cert, idNonce(t), sd.Signature); err == nil {
				t.Error("server signature verifies over another nonce")
			}
			_, err = s.serverSignature(nonce[:16])
			wantStatus(t, err, ua.StatusBadNonceInvalid)
		})
	}
	t.Run("None", func(t *testing.T) {
		s := &sessionSecurity{Policy: ua.SecurityPolicyURINone, Mode: ua.MessageSecurityModeNone}
		sd, err := s.serverSignature(nil)
		if err != nil || sd == nil || sd.Algorithm != "" || len(sd.Signature) != 0 {
			t.Fatalf("None: %+v, %v; want empty SignatureData", sd, err)
		}
	})
	t.Run("unset policy", func(t *testing.T) {
		_, err := (&sessionSecurity{}).serverSignature(idNonce(t))
		wantStatus(t, err, ua.StatusBadSecurityPolicyRejected)
	})
}

func TestClientSignature(t *testing.T) {
	idParties(t)
	for _, pol := range idPolicies {
		t.Run(idShort(pol), func(t *testing.T) {
			s := idSecurity(pol)
			nonce := idNonce(t)
			good := clientSessionSignature(t, pol, idClient.key, idServer.cert, nonce)
			if err := s.checkClientSignature(good, nonce); err != nil {
				t.Fatalf("good signature: %v", err)
			}
			if err := s.checkClientSignature(&ua.SignatureData{Signature: good.Signature}, nonce); err != nil {
				t.Errorf("good signature without algorithm: %v", err)
			}

			bad := &ua.SignatureData{Algorithm: good.Algorithm, Signature: bytes.Clone(good.Signature)}
			bad.Signature[10] ^= 1
			wantStatus(t, s.checkClientSignature(bad, nonce), ua.StatusBadApplicationSignatureInvalid)

			wantStatus(t, s.checkClientSignature(good, idNonce(t)), ua.StatusBadApplicationSignatureInvalid)

			other := clientSessionSignature(t, pol, idOther.key, idServer.cert, nonce)
			wantStatus(t, s.checkClientSignature(other, nonce), ua.StatusBadApplicationSignatureInvalid)

			wrongAlg := &ua.SignatureData{Algorithm: "http://www.w3.org/2000/09/xmldsig#rsa-sha1", Signature: good.Signature}
			wantStatus(t, s.checkClientSignature(wrongAlg, nonce), ua.StatusBadApplicationSignatureInvalid)

			wantStatus(t, s.checkClientSignature(nil, nonce), ua.StatusBadApplicationSignatureInvalid)
			wantStatus(t, s.checkClientSignature(&ua.SignatureData{}, nonce), ua.StatusBadApplicationSignatureInvalid)
		})
	}
	t.Run("None", func(t *testing.T) {
		s := &sessionSecurity{Policy: ua.SecurityPolicyURINone, Mode: ua.MessageSecurityModeNone}
		for _, sd := range []*ua.SignatureData{nil, {}, {Algorithm: "junk", Signature: []byte{1, 2, 3}}} {
			if err := s.checkClientSignature(sd, nil); err != nil {
				t.Errorf("None refuses %+v: %v", sd, err)
			}
		}
	})
}

func TestUserIdentityAnonymous(t *testing.T) {
	idParties(t)
	offered := offeredTokens(userTokenPolicies([]string{"anonymous", "username"}, ua.SecurityPolicyURIBasic256Sha256))
	userOnly := offeredTokens(userTokenPolicies([]string{"username"}, ua.SecurityPolicyURIBasic256Sha256))
	s := idSecurity(ua.SecurityPolicyURIBasic256Sha256)
	nonce := idNonce(t)

	tok := wire(t, &ua.AnonymousIdentityToken{PolicyID: "anonymous"})
	id, err := s.userIdentity(tok, nil, nonce, offered)
	if err != nil || id.Kind != "anonymous" {
		t.Fatalf("anonymous offered: %+v, %v", id, err)
	}
	_, err = s.userIdentity(tok, nil, nonce, userOnly)
	wantStatus(t, err, ua.StatusBadIdentityTokenInvalid)

	// A missing token is anonymous.
	if id, err := s.userIdentity(nil, nil, nonce, offered); err != nil || id.Kind != "anonymous" {
		t.Fatalf("no token, anonymous offered: %+v, %v", id, err)
	}
	_, err = s.userIdentity(&ua.ExtensionObject{EncodingMask: ua.ExtensionObjectEmpty}, nil, nonce, userOnly)
	wantStatus(t, err, ua.StatusBadIdentityTokenInvalid)

	// An anonymous token naming the username policy.
	_, err = s.userIdentity(wire(t, &ua.AnonymousIdentityToken{PolicyID: "username"}), nil, nonce, offered)
	wantStatus(t, err, ua.StatusBadIdentityTokenInvalid)

	_, err = s.userIdentity(wire(t, &ua.IssuedIdentityToken{PolicyID: "anonymous", TokenData: []byte("jwt")}), nil, nonce, offered)
	wantStatus(t, err, ua.StatusBadIdentityTokenRejected)
}

func TestUserIdentityUserName(t *testing.T) {
	idParties(t)
	const user, password = "operator", "correct horse battery staple"
	for _, pol := range idPolicies {
		t.Run(idShort(pol), func(t *testing.T) {
			s := idSecurity(pol)
			offered := offeredTokens(userTokenPolicies([]string{"username"}, pol))
			nonce := idNonce(t)
			pass, alg := clientEncryptPassword(t, pol, password, idServer.cert, nonce)
			token := func(pass []byte, alg string) *ua.ExtensionObject {
				return wire(t, &ua.UserNameIdentityToken{PolicyID: "username", UserName: user, Password: pass, EncryptionAlgorithm: alg})
			}

			id, err := s.userIdentity(token(pass, alg), nil, nonce, offered)
			if err != nil {
				t.Fatalf("good password: %v", err)
			}
			if id.Kind != "username" || id.User != user || id.Password != password || id.Cert != nil {
				t.Fatalf("identity = %+v", id)
			}

			tampered := bytes.Clone(pass)
			tampered[len(tampered)/2] ^= 0x40
			_, err = s.userIdentity(token(tampered, alg), nil, nonce, offered)
			wantStatus(t, err, ua.StatusBadIdentityTokenInvalid)
			if strings.Contains(err.Error(), password) {
				t.Fatal("reason holds the password")
			}

			_, err = s.userIdentity(token(pass, alg), nil, idNonce(t), offered)
			wantStatus(t, err, ua.StatusBadIdentityTokenInvalid)
			if strings.Contains(err.Error(), password) {
				t.Fatal("reason holds the password")
			}

			_, err = s.userIdentity(token(pass, "http://www.w3.org/2001/04/xmlenc#rsa-1_5"), nil, nonce, offered)
			wantStatus(t, err, ua.StatusBadIdentityTokenInvalid)

			_, err = s.userIdentity(wire(t, &ua.UserNameIdentityToken{PolicyID: "password", UserName: user, Password: pass, EncryptionAlgorithm: alg}), nil, nonce, offered)
			wantStatus(t, err, ua.StatusBadIdentityTokenInvalid)

			// The username policy id on an endpoint that offers only x509.
			_, err = s.userIdentity(token(pass, alg), nil, nonce, []userTokenPolicy{{ID: "username", Type: ua.UserTokenTypeCertificate}})
			wantStatus(t, err, ua.StatusBadIdentityTokenInvalid)
		})
	}

	t.Run("length", func(t *testing.T) {
		pol := ua.SecurityPolicyURIBasic256Sha256
		s := idSecurity(pol)
		offered := offeredTokens(userTokenPolicies([]string{"username"}, pol))
		nonce := idNonce(t)
		enc, _ := uapolicy.Asymmetric(pol, nil, &idServer.key.PublicKey)
		for _, n := range []uint32{0, uint32(len(password) + len(nonce) + 1), uint32(len(password)), 1 << 31} {
			secret := binary.LittleEndian.AppendUint32(nil, n)
			secret = append(append(secret, password...), nonce...)
			pass, err := enc.Encrypt(secret)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.userIdentity(wire(t, &ua.UserNameIdentityToken{PolicyID: "username", UserName: user, Password: pass, EncryptionAlgorithm: enc.EncryptionURI()}), nil, nonce, offered)
			wantStatus(t, err, ua.StatusBadIdentityTokenInvalid)
		}
		// Too short for the length field; consistent length but shorter
		// than the nonce.
		for _, secret := range [][]byte{{1, 2}, append(binary.LittleEndian.AppendUint32(nil, 10), nonce[:10]...)} {
			pass, err := enc.Encrypt(secret)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.userIdentity(wire(t, &ua.UserNameIdentityToken{PolicyID: "username", UserName: user, Password: pass, EncryptionAlgorithm: enc.EncryptionURI()}), nil, nonce, offered)
			wantStatus(t, err, ua.StatusBadIdentityTokenInvalid)
		}
	})

	t.Run("plain over None token policy", func(t *testing.T) {
		offered := []userTokenPolicy{{ID: "plain", Type: ua.UserTokenTypeUserName, Policy: ua.SecurityPolicyURINone}}
		tok := wire(t, &ua.UserNameIdentityToken{PolicyID: "plain", UserName: user, Password: []byte(password)})
		nonce := idNonce(t)

		s := idSecurity(ua.SecurityPolicyURIAes256Sha256RsaPss)
		id, err := s.userIdentity(tok, nil, nonce, offered)
		if err != nil || id.Password != password || id.User != user {
			t.Fatalf("plain password in an encrypted channel: %+v, %v", id, err)
		}

		s.Mode = ua.MessageSecurityModeSign
		_, err = s.userIdentity(tok, nil, nonce, offered)
		wantStatus(t, err, ua.StatusBadIdentityTokenRejected)

		none := &sessionSecurity{Policy: ua.SecurityPolicyURINone, Mode: ua.MessageSecurityModeNone, ServerCert: idServer.cert, ServerKey: idServer.key}
		_, err = none.userIdentity(tok, nil, nonce, offered)
		wantStatus(t, err, ua.StatusBadIdentityTokenRejected)
		if strings.Contains(err.Error(), password) {
			t.Fatal("reason holds the password")
		}
	})

	t.Run("None channel", func(t *testing.T) {
		adv := userTokenPolicies([]string{"anonymous", "username"}, ua.SecurityPolicyURINone)
		s := &sessionSecurity{Policy: ua.SecurityPolicyURINone, Mode: ua.MessageSecurityModeNone, ServerCert: idServer.cert, ServerKey: idServer.key}
		nonce := idNonce(t)
		var tokPol string
		for _, p := range adv {
			if p.PolicyID == "username" {
				tokPol = p.SecurityPolicyURI
			}
		}
		pass, alg := clientEncryptPassword(t, tokPol, password, idServer.cert, nonce)
		tok := wire(t, &ua.UserNameIdentityToken{PolicyID: "username", UserName: user, Password: pass, EncryptionAlgorithm: alg})
		id, err := s.userIdentity(tok, nil, nonce, offeredTokens(adv))
		if err != nil || id.Password != password {
			t.Fatalf("encrypted password over a None channel: %+v, %v", id, err)
		}

		// The client ignoring the token policy and sending in clear.
		plain := wire(t, &ua.UserNameIdentityToken{PolicyID: "username", UserName: user, Password: []byte(password)})
		_, err = s.userIdentity(plain, nil, nonce, offeredTokens(adv))
		wantStatus(t, err, ua.StatusBadIdentityTokenInvalid)
		if strings.Contains(err.Error(), password) {
			t.Fatal("reason holds the password")
		}
	})
}

func TestUserIdentityX509(t *testing.T) {
	idParties(t)
	for _, pol := range idPolicies {
		t.Run(idShort(pol), func(t *testing.T) {
			s := idSecurity(pol)
			offered := offeredTokens(userTokenPolicies([]string{"x509"}, pol))
			nonce := idNonce(t)
			tok := wire(t, &ua.X509IdentityToken{PolicyID: "x509", CertificateData: idUser.cert})

			sig := clientUserTokenSignature(t, pol, idUser.key, idServer.cert, nonce)
			id, err := s.userIdentity(tok, sig, nonce, offered)
			if err != nil {
				t.Fatalf("good user signature: %v", err)
			}
			if id.Kind != "x509" || !bytes.Equal(id.Cert, idUser.cert) {
				t.Fatalf("identity = %+v", id)
			}

			other := clientUserTokenSignature(t, pol, idOther.key, idServer.cert, nonce)
			_, err = s.userIdentity(tok, other, nonce, offered)
			wantStatus(t, err, ua.StatusBadUserSignatureInvalid)

			_, err = s.userIdentity(tok, sig, idNonce(t), offered)
			wantStatus(t, err, ua.StatusBadUserSignatureInvalid)

			_, err = s.userIdentity(tok, &ua.SignatureData{Algorithm: "http://www.w3.org/2000/09/xmldsig#rsa-sha1", Signature: sig.Signature}, nonce, offered)
			wantStatus(t, err, ua.StatusBadUserSignatureInvalid)

			_, err = s.userIdentity(tok, nil, nonce, offered)
			wantStatus(t, err, ua.StatusBadUserSignatureInvalid)

			junk := wire(t, &ua.X509IdentityToken{PolicyID: "x509", CertificateData: []byte("not a certificate")})
			_, err = s.userIdentity(junk, sig, nonce, offered)
			wantStatus(t, err, ua.StatusBadIdentityTokenInvalid)
		})
	}

	t.Run("None token policy", func(t *testing.T) {
		s := idSecurity(ua.SecurityPolicyURIBasic256Sha256)
		offered := []userTokenPolicy{{ID: "x509", Type: ua.UserTokenTypeCertificate, Policy: ua.SecurityPolicyURINone}}
		tok := wire(t, &ua.X509IdentityToken{PolicyID: "x509", CertificateData: idUser.cert})
		_, err := s.userIdentity(tok, nil, idNonce(t), offered)
		wantStatus(t, err, ua.StatusBadIdentityTokenRejected)
	})

	t.Run("None channel", func(t *testing.T) {
		adv := userTokenPolicies([]string{"x509"}, ua.SecurityPolicyURINone)
		s := &sessionSecurity{Policy: ua.SecurityPolicyURINone, Mode: ua.MessageSecurityModeNone, ServerCert: idServer.cert, ServerKey: idServer.key}
		nonce := idNonce(t)
		tok := wire(t, &ua.X509IdentityToken{PolicyID: "x509", CertificateData: idUser.cert})
		sig := clientUserTokenSignature(t, adv[0].SecurityPolicyURI, idUser.key, idServer.cert, nonce)
		if _, err := s.userIdentity(tok, sig, nonce, offeredTokens(adv)); err != nil {
			t.Fatalf("x509 over a None channel: %v", err)
		}
	})
}

func TestUserTokenPolicies(t *testing.T) {
	all := []string{"anonymous", "username", "x509", "kerberos", "username"}
	for _, tc := range []struct{ channel, token string }{
		{ua.SecurityPolicyURINone, ua.SecurityPolicyURIBasic256Sha256},
		{ua.SecurityPolicyURIBasic256Sha256, ua.SecurityPolicyURIBasic256Sha256},
		{ua.SecurityPolicyURIAes256Sha256RsaPss, ua.SecurityPolicyURIAes256Sha256RsaPss},
	} {
		ps := userTokenPolicies(all, tc.channel)
		if len(ps) != 3 {
			t.Fatalf("%s: %d policies, want 3", tc.channel, len(ps))
		}
		want := []ua.UserTokenPolicy{
			{PolicyID: "anonymous", TokenType: ua.UserTokenTypeAnonymous, SecurityPolicyURI: ua.SecurityPolicyURINone},
			{PolicyID: "username", TokenType: ua.UserTokenTypeUserName, SecurityPolicyURI: tc.token},
			{PolicyID: "x509", TokenType: ua.UserTokenTypeCertificate, SecurityPolicyURI: tc.token},
		}
		for i := range want {
			if *ps[i] != want[i] {
				t.Errorf("%s: policy %d = %+v, want %+v", tc.channel, i, *ps[i], want[i])
			}
		}
		off := offeredTokens(ps)
		if off[1] != (userTokenPolicy{ID: "username", Type: ua.UserTokenTypeUserName, Policy: tc.token}) {
			t.Errorf("offeredTokens = %+v", off)
		}
	}
	if ps := userTokenPolicies([]string{"anonymous"}, ua.SecurityPolicyURINone); len(ps) != 1 || ps[0].TokenType != ua.UserTokenTypeAnonymous {
		t.Errorf("anonymous only: %+v", ps)
	}
}

func TestIdentityError(t *testing.T) {
	err := refuse(ua.StatusBadUserSignatureInvalid, "user token signature does not verify")
	if !errors.Is(err, ua.StatusBadUserSignatureInvalid) || errors.Is(err, ua.StatusBadIdentityTokenInvalid) {
		t.Fatalf("errors.Is does not see the status: %v", err)
	}
	if !strings.Contains(err.Error(), "user token signature does not verify") {
		t.Fatalf("Error() = %q", err.Error())
	}
}
