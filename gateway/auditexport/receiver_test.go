package auditexport

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// syslogMsg is one RFC 5424 message as a strict receiver parses it.
type syslogMsg struct {
	pri                      int
	version                  int
	ts                       string
	host, app, procid, msgid string
	sdid                     string
	params                   map[string]string
	body                     string
}

// receiver is a syslog receiver written for the tests, independent of the
// sender's code: octet-counted framing (RFC 6587 3.4.1) and RFC 5424 syntax,
// both parsed strictly.
type receiver struct {
	t    *testing.T
	ln   net.Listener
	mu   sync.Mutex
	msgs []syslogMsg
	errs []string
	tls  []uint16 // negotiated TLS versions
	conn []net.Conn
	wg   sync.WaitGroup
}

func startReceiver(t *testing.T, ln net.Listener) *receiver {
	r := &receiver{t: t, ln: ln}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.stop)
	return r
}

func (r *receiver) addr() string { return r.ln.Addr().String() }

func (r *receiver) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conn = append(r.conn, c)
		r.mu.Unlock()
		r.wg.Add(1)
		go r.serve(c)
	}
}

func (r *receiver) serve(c net.Conn) {
	defer r.wg.Done()
	defer c.Close()
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			r.fail("handshake: %v", err)
			return
		}
		r.mu.Lock()
		r.tls = append(r.tls, tc.ConnectionState().Version)
		r.mu.Unlock()
	}
	br := bufio.NewReader(c)
	for {
		frame, err := readFrame(br)
		if err == io.EOF {
			return
		}
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				r.fail("framing: %v", err)
			}
			return
		}
		m, err := parse5424(frame)
		if err != nil {
			r.fail("%v in %q", err, frame)
			continue
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
	}
}

func (r *receiver) fail(format string, a ...any) {
	r.mu.Lock()
	r.errs = append(r.errs, fmt.Sprintf(format, a...))
	r.mu.Unlock()
}

func (r *receiver) stop() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conn {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// messages returns a copy of what arrived so far and fails on any error.
func (r *receiver) messages() []syslogMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		r.t.Error("receiver: " + e)
	}
	r.errs = nil
	return append([]syslogMsg(nil), r.msgs...)
}

// seqCounts counts messages per seq (from the structured data).
func (r *receiver) seqCounts() map[uint64]int {
	counts := make(map[uint64]int)
	for _, m := range r.messages() {
		n, err := strconv.ParseUint(m.params["seq"], 10, 64)
		if err != nil {
			r.t.Errorf("message without a seq: %+v", m)
			continue
		}
		counts[n]++
	}
	return counts
}

// readFrame reads "MSG-LEN SP SYSLOG-MSG"; MSG-LEN is NONZERO-DIGIT *DIGIT.
func readFrame(br *bufio.Reader) ([]byte, error) {
	n := 0
	for i := 0; ; i++ {
		c, err := br.ReadByte()
		if err != nil {
			if i == 0 {
				return nil, err
			}
			return nil, fmt.Errorf("cut inside MSG-LEN: %w", err)
		}
		if c == ' ' && i > 0 {
			break
		}
		if c < '0' || c > '9' || (i == 0 && c == '0') || i > 7 {
			return nil, fmt.Errorf("bad MSG-LEN byte %q at %d", c, i)
		}
		n = n*10 + int(c-'0')
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		return nil, fmt.Errorf("frame of %d bytes cut: %w", n, err)
	}
	return b, nil
}

func printUS(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

// parse5424 parses one SYSLOG-MSG (RFC 5424, section 6).
func parse5424(b []byte) (syslogMsg, error) {
	var m syslogMsg
	s := string(b)
	if !strings.HasPrefix(s, "<") {
		return m, errors.New("no PRI")
	}
	end := strings.IndexByte(s, '>')
	if end < 2 || end > 4 {
		return m, errors.New("PRI not 1-3 digits")
	}
	pri := s[1:end]
	if len(pri) > 1 && pri[0] == '0' {
		return m, errors.New("PRI with a leading zero")
	}
	var err error
	if m.pri, err = strconv.Atoi(pri); err != nil || m.pri > 191 {
		return m, fmt.Errorf("PRI %q", pri)
	}
	s = s[end+1:]
	field := func(name string, max int) (string, error) {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			return "", fmt.Errorf("%s: no SP after it", name)
		}
		v := s[:i]
		s = s[i+1:]
		if !printUS(v, max) {
			return "", fmt.Errorf("%s %q is not 1-%d PRINTUSASCII", name, v, max)
		}
		return v, nil
	}
	v, err := field("VERSION", 2)
	if err != nil || v != "1" {
		return m, fmt.Errorf("VERSION %q", v)
	}
	m.version = 1
	if m.ts, err = field("TIMESTAMP", 32); err != nil {
		return m, err
	}
	if m.ts != "-" {
		if _, err := time.Parse(time.RFC3339Nano, m.ts); err != nil {
			return m, fmt.Errorf("TIMESTAMP %q: %v", m.ts, err)
		}
		if i := strings.IndexByte(m.ts, '.'); i >= 0 {
			frac := strings.TrimRightFunc(m.ts[i+1:], func(r rune) bool { return r < '0' || r > '9' })
			if len(frac) > 6 {
				return m, fmt.Errorf("TIMESTAMP %q: more than 6 fraction digits", m.ts)
			}
		}
	}
	if m.host, err = field("HOSTNAME", 255); err != nil {
		return m, err
	}
	if m.app, err = field("APP-NAME", 48); err != nil {
		return m, err
	}
	if m.procid, err = field("PROCID", 128); err != nil {
		return m, err
	}
	if m.msgid, err = field("MSGID", 32); err != nil {
		return m, err
	}
	// STRUCTURED-DATA: "-" or SD-ELEMENTs; this sender writes exactly one.
	if strings.HasPrefix(s, "-") {
		s = s[1:]
	} else {
		if !strings.HasPrefix(s, "[") {
			return m, errors.New("STRUCTURED-DATA neither - nor [")
		}
		s = s[1:]
		i := strings.IndexAny(s, " ]")
		if i < 0 {
			return m, errors.New("SD-ID not closed")
		}
		m.sdid = s[:i]
		if !printUS(m.sdid, 32) || strings.ContainsAny(m.sdid, `="`) {
			return m, fmt.Errorf("SD-ID %q", m.sdid)
		}
		s = s[i:]
		m.params = map[string]string{}
		for {
			if strings.HasPrefix(s, "]") {
				s = s[1:]
				break
			}
			if !strings.HasPrefix(s, " ") {
				return m, errors.New("SD-PARAM not after SP")
			}
			s = s[1:]
			eq := strings.Index(s, `="`)
			if eq < 1 {
				return m, errors.New(`SD-PARAM without ="`)
			}
			name := s[:eq]
			if !printUS(name, 32) || strings.ContainsAny(name, `= ]"`) {
				return m, fmt.Errorf("PARAM-NAME %q", name)
			}
			s = s[eq+2:]
			var val strings.Builder
			closed := false
			for i := 0; i < len(s); i++ {
				c := s[i]
				switch {
				case c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\' || s[i+1] == ']'):
					val.WriteByte(s[i+1])
					i++
				case c == '"':
					s, closed = s[i+1:], true
				case c == ']':
					return m, fmt.Errorf("unescaped ] in PARAM-VALUE of %s", name)
				default:
					val.WriteByte(c)
				}
				if closed {
					break
				}
			}
			if !closed {
				return m, fmt.Errorf("PARAM-VALUE of %s not closed", name)
			}
			if _, dup := m.params[name]; dup {
				return m, fmt.Errorf("PARAM-NAME %s twice", name)
			}
			m.params[name] = val.String()
		}
	}
	switch {
	case s == "":
	case strings.HasPrefix(s, " "):
		m.body = s[1:]
	default:
		return m, errors.New("no SP before MSG")
	}
	return m, nil
}

// certs are PEM files of a test CA, a server certificate for 127.0.0.1 and a
// client certificate, all ECDSA P-256.
type certs struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	pool                                             *x509.CertPool
}

func makeCerts(t *testing.T) certs {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "brana test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage, ip bool) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if ip {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		return write(name+".crt", "CERTIFICATE", der), write(name+".key", "PRIVATE KEY", kder)
	}
	c := certs{ca: write("ca.crt", "CERTIFICATE", caDER), pool: x509.NewCertPool()}
	c.pool.AddCert(caCert)
	c.serverCert, c.serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth, true)
	c.clientCert, c.clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth, false)
	return c
}

// serverTLS requires a client certificate from the test CA.
func (c certs) serverTLS(t *testing.T) *tls.Config {
	cert, err := tls.LoadX509KeyPair(c.serverCert, c.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: c.pool, ClientAuth: tls.RequireAndVerifyClientCert}
}
