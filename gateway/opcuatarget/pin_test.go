package opcuatarget

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/opcuatrust"
	"github.com/brana-ot/brana/testbench/netpath"
	"github.com/brana-ot/brana/testbench/nodeopcua"
)

func TestChoosePinned(t *testing.T) {
	anon := ua.UserTokenTypeAnonymous
	certA, certB := []byte("certificate A"), []byte("certificate B")
	fpA, fpB := opcuatrust.Fingerprint(certA), opcuatrust.Fingerprint(certB)
	with := func(e *ua.EndpointDescription, cert []byte) *ua.EndpointDescription {
		e.ServerCertificate = cert
		return e
	}
	offered := []*ua.EndpointDescription{
		with(ep("None", ua.MessageSecurityModeNone, anon), certA),
		with(ep("Basic256Sha256", ua.MessageSecurityModeSign, anon), certA),
		with(ep("Aes256_Sha256_RsaPss", ua.MessageSecurityModeSignAndEncrypt, anon), certB),
	}
	tests := []struct {
		name         string
		eps          []*ua.EndpointDescription
		pin          string
		want         string
		wantPresents []string // a *CertificateMismatchError presenting these
	}{
		{"ok/unpinned-takes-strongest", offered, "", "Aes256_Sha256_RsaPss/SignAndEncrypt", nil},
		{"ok/pin-keeps-its-certificate", offered, fpA, "Basic256Sha256/Sign", nil},
		{"ok/pin-other-certificate", offered, fpB, "Aes256_Sha256_RsaPss/SignAndEncrypt", nil},
		{"fail/pin-not-presented", offered, opcuatrust.Fingerprint([]byte("certificate C")), "", []string{fpA, fpB}},
		{"fail/pin-only-on-none", offered[:1], fpA, "", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := &Target{cfg: config.Target{Name: "plc", SecurityPolicy: "auto", SecurityMode: "auto", ServerCertificateSHA256: tt.pin}}
			eps, err := tg.pin(tt.eps)
			if tt.wantPresents != nil {
				var m *CertificateMismatchError
				if !errors.As(err, &m) || m.Pinned != tt.pin || m.Where != "GetEndpoints" || !slices.Equal(m.Presented, tt.wantPresents) {
					t.Fatalf("pin: %v, want a mismatch presenting %v", err, tt.wantPresents)
				}
				want := []string{"target plc", "pins sha256:" + tt.pin, "no certificate on a secured endpoint"}
				if len(tt.wantPresents) > 0 {
					want = append(want[:2], tt.wantPresents...)
				}
				for _, w := range want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := tg.choose(eps)
			if err != nil || security(got) != tt.want {
				t.Fatalf("choose = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// A PLC nobody here wrote (node-opcua, Basic256Sha256 SignAndEncrypt and a
// user), behind a TCP path the test can cut and point elsewhere:
//   - unpinned, the first session logs the certificate's fingerprint, once;
//   - pinned to its certificate, a session opens on a channel with that
//     certificate, a read goes through, and a dropped connection is
//     restored;
//   - pinned to another certificate, no session opens and the PLC sees none;
//   - when a PLC with another certificate takes the address, the restore
//     refuses it by name (the session is lost at once, not retried), and so
//     does the next session.
func TestPinnedPLC(t *testing.T) {
	nodeopcua.Require(t)
	plcA := nodeopcua.StartServer(t, nodeopcua.ServerOptions{User: "brana-gw", Password: "s3cret-plc-pw"})
	fpA := serverFingerprint(t, plcA)
	path := netpath.New(t, strings.TrimPrefix(plcA.Endpoint(), "opc.tcp://"))
	id := testIdentity(t)
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	target := func(pin string) *Target {
		return New(config.Target{Name: "node-plc", Endpoint: "opc.tcp://" + path.Addr(), SecurityPolicy: "auto", SecurityMode: "auto",
			Username: plcA.User(), Timeout: config.Duration(5 * time.Second), MaxSessions: 2, MaxPublish: 1,
			ServerCertificateSHA256: pin}, id, plcA.Password(), log)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	voltage := ua.MustParseNodeID(plcA.NodeID("Feeder.Voltage"))
	read := func(s *Session) error {
		resp, err := s.Do(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: voltage, AttributeID: ua.AttributeIDValue, DataEncoding: &ua.QualifiedName{}}},
			TimestampsToReturn: ua.TimestampsToReturnNeither})
		if err != nil {
			return err
		}
		if r, ok := resp.(*ua.ReadResponse); !ok || len(r.Results) != 1 || r.Results[0].Status != ua.StatusOK {
			return errors.New("read answered " + resp.Header().ServiceResult.Error())
		}
		return nil
	}

	t.Run("unpinned-logs-fingerprint-once", func(t *testing.T) {
		tg := target("")
		for range 2 {
			s, err := tg.Open(ctx, "test")
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
		}
		if n := strings.Count(logs.String(), "server_certificate=sha256:"+fpA); n != 1 {
			t.Fatalf("the fingerprint is logged %d times, want once:\n%s", n, logs.String())
		}
	})

	pinned := target(fpA)
	t.Run("right-pin", func(t *testing.T) {
		s, err := pinned.Open(ctx, "test")
		if err != nil {
			t.Fatalf("session with the right pin: %v", err)
		}
		defer s.Close()
		s.mu.Lock()
		c := s.c
		s.mu.Unlock()
		// gopcua keeps the OpenSecureChannel response's certificate
		// unexported; this fails if an upgrade moves it (checkChannel
		// then refuses every pinned session).
		if got := opcuatrust.Fingerprint(channelCertificate(c)); got != fpA {
			t.Fatalf("secure channel certificate sha256:%s, want the PLC's sha256:%s", got, fpA)
		}
		other := &Target{cfg: config.Target{Name: "other", ServerCertificateSHA256: strings.Repeat("ab", 32)}}
		var m *CertificateMismatchError
		if err := other.checkChannel(c); !errors.As(err, &m) || m.Where != "OpenSecureChannel" || !slices.Equal(m.Presented, []string{fpA}) {
			t.Fatalf("channel certificate against another pin: %v", err)
		}
		if err := read(s); err != nil {
			t.Fatal(err)
		}
		t.Logf("cut %d connections", path.Cut())
		if err := eventually(ctx, func() error { return read(s) }); err != nil {
			t.Fatalf("read after the connection was restored: %v", err)
		}
		if !strings.Contains(logs.String(), "session restored on a new connection") {
			t.Fatalf("no restore logged:\n%s", logs.String())
		}
		if n := strings.Count(logs.String(), "is not pinned"); n != 1 {
			t.Errorf("%d lines say a certificate is not pinned; the pinned target should add none:\n%s", n, logs.String())
		}
	})

	t.Run("wrong-pin", func(t *testing.T) {
		before := sessions(plcA)
		wrong := strings.Repeat("ab", 32)
		_, err := target(wrong).Open(ctx, "test")
		var m *CertificateMismatchError
		if !errors.As(err, &m) || m.Pinned != wrong || !slices.Equal(m.Presented, []string{fpA}) {
			t.Fatalf("session with a wrong pin: %v, want a certificate mismatch presenting sha256:%s", err, fpA)
		}
		if after := sessions(plcA); after != before {
			t.Fatalf("the PLC activated %d sessions for a refused pin", after-before)
		}
	})

	t.Run("certificate-changed", func(t *testing.T) {
		s, err := pinned.Open(ctx, "test")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		lost := make(chan error, 1)
		s.OnLost(func(err error) { lost <- err })
		if err := read(s); err != nil {
			t.Fatal(err)
		}
		plcB := nodeopcua.StartServer(t, nodeopcua.ServerOptions{User: plcA.User(), Password: plcA.Password()})
		fpB := serverFingerprint(t, plcB)
		if fpB == fpA {
			t.Fatal("test bug: both PLCs have one certificate")
		}
		path.Point(strings.TrimPrefix(plcB.Endpoint(), "opc.tcp://"))
		t.Logf("cut %d connections", path.Cut())
		read(s) // fails: the connection is gone, and the restore begins
		var m *CertificateMismatchError
		select {
		case err := <-lost:
			if !errors.As(err, &m) || !slices.Equal(m.Presented, []string{fpB}) {
				t.Fatalf("session lost with %v, want a certificate mismatch presenting sha256:%s", err, fpB)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the session to a PLC with another certificate was not given up")
		}
		if err := read(s); err == nil {
			t.Fatal("a read went through after the certificate changed")
		}
		if _, err := pinned.Open(ctx, "again"); !errors.As(err, &m) || !slices.Equal(m.Presented, []string{fpB}) {
			t.Fatalf("new session after the certificate changed: %v", err)
		}
		if n := sessions(plcB); n != 0 {
			t.Fatalf("the PLC with another certificate activated %d sessions", n)
		}
		if h := pinned.Health(); !strings.Contains(h.LastError, "not the pinned one") {
			t.Errorf("health after the refusal: %+v", h)
		}
	})
}

// serverFingerprint is the SHA-256 of a node-opcua server's certificate,
// read from its PKI folder.
func serverFingerprint(t *testing.T, s *nodeopcua.Server) string {
	t.Helper()
	b, err := s.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("the server certificate is not PEM")
	}
	return opcuatrust.Fingerprint(blk.Bytes)
}

// sessions counts the sessions a node-opcua server activated.
func sessions(s *nodeopcua.Server) int {
	n := 0
	for _, e := range s.Events() {
		if e.Event == "session" {
			n++
		}
	}
	return n
}

// eventually retries f for up to 30 s.
func eventually(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
