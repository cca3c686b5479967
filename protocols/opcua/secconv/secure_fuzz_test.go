package secconv

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"math/big"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/uapolicy"
)

const basic256Sha256 = "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"

var (
	fixOnce                sync.Once
	fixServer              *Server
	fixClientCert          []byte
	fixClientKey           *rsa.PrivateKey
	fixClientN, fixServerN = bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, 32)
)

func selfSigned(key *rsa.PrivateKey, uri string) []byte {
	u, _ := url.Parse(uri)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: uri}, URIs: []*url.URL{u},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return der
}

// fixtures: a server identity and a client certificate, made once.
func fixtures() {
	fixOnce.Do(func() {
		sk, _ := rsa.GenerateKey(rand.Reader, 2048)
		fixServer = NewServer(selfSigned(sk, "urn:test:server"), sk)
		fixClientKey, _ = rsa.GenerateKey(rand.Reader, 2048)
		fixClientCert = selfSigned(fixClientKey, "urn:test:client")
	})
}

// clientOpen builds what a client sends: an OPN chunk signed with the
// client's key and encrypted to the server's, around body.
func clientOpen(t testing.TB, body []byte) []byte {
	fixtures()
	algo, err := uapolicy.Asymmetric(basic256Sha256, fixClientKey, &fixServer.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	thumb := sha1.Sum(fixServer.Cert)
	hlen := asymHeaderLen(basic256Sha256, fixClientCert, thumb[:])
	msg := append([]byte(TypeOpen), ChunkFinal, 0, 0, 0, 0)
	msg = binary.LittleEndian.AppendUint32(msg, 0)
	msg = binary.LittleEndian.AppendUint32(msg, uint32(len(basic256Sha256)))
	msg = append(msg, basic256Sha256...)
	msg = binary.LittleEndian.AppendUint32(msg, uint32(len(fixClientCert)))
	msg = append(msg, fixClientCert...)
	msg = binary.LittleEndian.AppendUint32(msg, uint32(len(thumb)))
	msg = append(msg, thumb[:]...)
	msg = binary.LittleEndian.AppendUint32(msg, 51)
	msg = binary.LittleEndian.AppendUint32(msg, 1)
	msg = append(msg, body...)
	out, err := seal(algo, msg, hlen, fixServer.Key.Size() > 256, true)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// clientMessage builds a client's MSG chunk under the fixed nonces.
func clientMessage(t testing.TB, mode int, seq uint32, body []byte) []byte {
	algo, err := uapolicy.Symmetric(basic256Sha256, fixClientN, fixServerN)
	if err != nil {
		t.Fatal(err)
	}
	msg := append([]byte(TypeMessage), ChunkFinal, 0, 0, 0, 0)
	msg = binary.LittleEndian.AppendUint32(msg, 5)
	msg = binary.LittleEndian.AppendUint32(msg, 1)
	msg = binary.LittleEndian.AppendUint32(msg, seq)
	msg = binary.LittleEndian.AppendUint32(msg, 2)
	msg = append(msg, body...)
	out, err := seal(algo, msg, symHeaderLen, false, mode == ModeSignAndEncrypt)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSecuredRoundTrip(t *testing.T) {
	body := []byte("open secure channel request body")
	c, a, err := OpenSecured(clientOpen(t, body), fixServer)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.Body, body) || c.SequenceNumber != 51 || c.RequestID != 1 || !bytes.Equal(a.ClientCert, fixClientCert) {
		t.Fatalf("OpenSecured: body %q seq %d req %d", c.Body, c.SequenceNumber, c.RequestID)
	}
	for _, mode := range []int{ModeSign, ModeSignAndEncrypt} {
		sym, err := NewSymmetric(basic256Sha256, mode, fixServerN, fixClientN)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 1, 15, 16, 17, 1000} {
			in := bytes.Repeat([]byte{'x'}, n)
			got, err := sym.UnsealChunk(clientMessage(t, mode, 3, in))
			if err != nil || !bytes.Equal(got.Body, in) || got.SequenceNumber != 3 {
				t.Fatalf("mode %d, %d bytes: %v %q", mode, n, err, got.Body)
			}
		}
		// One flipped bit anywhere after the header fails the check.
		ch := clientMessage(t, mode, 4, []byte("write 450"))
		for i := symHeaderLen; i < len(ch); i += 7 {
			bad := append([]byte(nil), ch...)
			bad[i] ^= 0x10
			var e *Error
			if _, err := sym.UnsealChunk(bad); !errors.As(err, &e) || e.Code != BadSecurityChecksFailed {
				t.Fatalf("mode %d, bit flipped at %d: %v", mode, i, err)
			}
		}
	}
}

// FuzzOpenSecured feeds hostile OPN chunks to the asymmetric path: it must
// not panic, must fail with an *Error, and must allocate in proportion to
// the input (decryption works on what arrived, never on a claimed size).
func FuzzOpenSecured(f *testing.F) {
	fixtures()
	f.Add(clientOpen(f, []byte("request")))
	f.Add(clientOpen(f, bytes.Repeat([]byte{0xff}, 600)))
	f.Add([]byte("OPNF\x20\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\x7f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= 8 {
			binary.LittleEndian.PutUint32(b[4:], uint32(len(b))) // reach past the size check
		}
		c, _, err := OpenSecured(b, fixServer)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		if len(c.Body) > len(b) {
			t.Fatalf("body of %d bytes from %d", len(c.Body), len(b))
		}
	})
}

// FuzzUnsealChunk does the same for MSG chunks under a token's keys.
func FuzzUnsealChunk(f *testing.F) {
	fixtures()
	for _, mode := range []int{ModeSign, ModeSignAndEncrypt} {
		f.Add(byte(mode), clientMessage(f, mode, 1, []byte("read")))
		f.Add(byte(mode), clientMessage(f, mode, 2, bytes.Repeat([]byte{0}, 300)))
	}
	syms := map[int]*Symmetric{}
	for _, m := range []int{ModeSign, ModeSignAndEncrypt} {
		s, err := NewSymmetric(basic256Sha256, m, fixServerN, fixClientN)
		if err != nil {
			f.Fatal(err)
		}
		syms[m] = s
	}
	f.Fuzz(func(t *testing.T, mode byte, b []byte) {
		s := syms[ModeSign+int(mode)%2]
		if len(b) >= 8 {
			binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
		}
		c, err := s.UnsealChunk(b)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		if len(c.Body) > len(b) {
			t.Fatalf("body of %d bytes from %d", len(c.Body), len(b))
		}
	})
}
