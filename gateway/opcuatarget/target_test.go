package opcuatarget

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/gateway/opcuatrust"
	"github.com/brana-ot/brana/testbench/opcuasim"
)

func ep(policy string, mode ua.MessageSecurityMode, tokens ...ua.UserTokenType) *ua.EndpointDescription {
	e := &ua.EndpointDescription{SecurityPolicyURI: "http://opcfoundation.org/UA/SecurityPolicy#" + policy, SecurityMode: mode}
	for _, t := range tokens {
		e.UserIdentityTokens = append(e.UserIdentityTokens, &ua.UserTokenPolicy{TokenType: t})
	}
	return e
}

func TestChooseEndpoint(t *testing.T) {
	anon, user := ua.UserTokenTypeAnonymous, ua.UserTokenTypeUserName
	offered := []*ua.EndpointDescription{
		ep("None", ua.MessageSecurityModeNone, anon),
		ep("Basic256Sha256", ua.MessageSecurityModeSign, anon, user),
		ep("Basic256Sha256", ua.MessageSecurityModeSignAndEncrypt, user),
		ep("Aes128_Sha256_RsaOaep", ua.MessageSecurityModeSignAndEncrypt, anon),
		ep("Basic128Rsa15", ua.MessageSecurityModeSignAndEncrypt, anon, user), // deprecated: only if named
	}
	tests := []struct {
		name          string
		policy, mode  string
		user          string
		want, wantErr string
	}{
		{"ok/auto-anonymous-takes-strongest-encrypting", "auto", "auto", "", "Aes128_Sha256_RsaOaep/SignAndEncrypt", ""},
		{"ok/auto-user", "auto", "auto", "brana", "Basic256Sha256/SignAndEncrypt", ""},
		{"ok/named-sign", "Basic256Sha256", "Sign", "", "Basic256Sha256/Sign", ""},
		{"ok/named-none", "None", "None", "", "None/None", ""},
		{"fail/not-offered", "Aes256_Sha256_RsaPss", "auto", "", "", "offers no endpoint for security Aes256_Sha256_RsaPss/auto with anonymous users"},
		{"fail/user-on-none", "None", "None", "brana", "", "offers None/None, Basic256Sha256/Sign"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := &Target{cfg: config.Target{SecurityPolicy: tt.policy, SecurityMode: tt.mode, Username: tt.user}}
			got, _, err := tg.choose(offered)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("choose: %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || security(got) != tt.want {
				t.Fatalf("choose = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// Outstanding Publish requests stay within max_publish: the others wait at
// brana rather than earn a BadTooManyPublishRequests from the PLC.
func TestPublishLimit(t *testing.T) {
	plc := startFeeder(t)
	id := testIdentity(t)
	tg := New(config.Target{Name: "plc", Endpoint: plc.Endpoint(), SecurityPolicy: "auto", SecurityMode: "auto",
		Timeout: config.Duration(5 * time.Second), MaxSessions: 1, MaxPublish: 2}, id, "", slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := tg.Open(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := tg.Open(ctx, "second"); err != ErrBusy {
		t.Fatalf("second session with max_sessions 1: %v, want ErrBusy", err)
	}
	// A subscription that answers Publish only every few seconds.
	resp, err := s.Do(ctx, &ua.CreateSubscriptionRequest{RequestedPublishingInterval: 1000, RequestedLifetimeCount: 60,
		RequestedMaxKeepAliveCount: 3, PublishingEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.(*ua.CreateSubscriptionResponse); !ok {
		t.Fatalf("CreateSubscription: %T %v", resp, resp.Header().ServiceResult)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Do(ctx, &ua.PublishRequest{})
		}()
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(s.pub); n != 2 {
		t.Fatalf("%d Publish requests at the PLC, want max_publish = 2", n)
	}
	wg.Wait() // keep-alives answer them all within a few seconds
	if h := tg.Health(); !h.Reachable() || h.LastError != "" || h.Latency <= 0 || h.Latency > 5*time.Second {
		t.Errorf("health after answered requests: %+v", h)
	}
}

// A PLC that is not there shows in the target's health.
func TestHealthUnreachable(t *testing.T) {
	id := testIdentity(t)
	tg := New(config.Target{Name: "plc", Endpoint: "opc.tcp://127.0.0.1:1", SecurityPolicy: "auto", SecurityMode: "auto",
		Timeout: config.Duration(time.Second), MaxSessions: 1, MaxPublish: 1}, id, "", slog.New(slog.DiscardHandler))
	if _, err := tg.Open(t.Context(), "test"); err == nil {
		t.Fatal("a session to nothing opened")
	}
	if h := tg.Health(); h.Reachable() || !h.LastResponse.IsZero() || h.LastError == "" || tg.Endpoint() != "opc.tcp://127.0.0.1:1" {
		t.Fatalf("health = %+v", h)
	}
}

// countObserver counts what the target's round-trip observer sees.
type countObserver struct {
	mu  sync.Mutex
	n   int
	sum float64
}

func (o *countObserver) Observe(v float64) {
	o.mu.Lock()
	o.n, o.sum = o.n+1, o.sum+v
	o.mu.Unlock()
}

func (o *countObserver) count() (int, float64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n, o.sum
}

// The round-trip observer sees each answered service request once, and
// neither the session's set-up nor a Publish (its wait is the keep-alive).
func TestRoundTripObserved(t *testing.T) {
	plc := startFeeder(t)
	id := testIdentity(t)
	tg := New(config.Target{Name: "plc", Endpoint: plc.Endpoint(), SecurityPolicy: "auto", SecurityMode: "auto",
		Timeout: config.Duration(5 * time.Second), MaxSessions: 1, MaxPublish: 1}, id, "", slog.New(slog.DiscardHandler))
	var o countObserver
	tg.ObserveLatency(&o)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := tg.Open(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, _ := o.count(); n != 0 || !tg.Health().Reachable() {
		t.Fatalf("after the session opened: %d round trips observed, health %+v; want 0 and reachable", n, tg.Health())
	}

	voltage, pickup := plc.NodeID("Feeder.Measurements.Voltage"), plc.NodeID("Feeder.Protection.OvercurrentPickup")
	requests := []ua.Request{
		&ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: voltage, AttributeID: ua.AttributeIDValue, DataEncoding: &ua.QualifiedName{}}},
			TimestampsToReturn: ua.TimestampsToReturnBoth},
		&ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{NodeID: pickup, AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(450.0)}}}},
		&ua.BrowseRequest{View: &ua.ViewDescription{ViewID: ua.NewTwoByteNodeID(0)}, NodesToBrowse: []*ua.BrowseDescription{{
			NodeID: ua.NewNumericNodeID(0, 85), BrowseDirection: ua.BrowseDirectionForward, IncludeSubtypes: true,
			ReferenceTypeID: ua.NewNumericNodeID(0, 33), ResultMask: uint32(ua.BrowseResultMaskAll)}}},
		&ua.CreateSubscriptionRequest{RequestedPublishingInterval: 100, RequestedLifetimeCount: 60,
			RequestedMaxKeepAliveCount: 3, PublishingEnabled: true},
	}
	for i, req := range requests {
		resp, err := s.Do(ctx, req)
		if err != nil || resp.Header().ServiceResult != ua.StatusOK {
			t.Fatalf("%T: %v, %v", req, resp, err)
		}
		if n, _ := o.count(); n != i+1 {
			t.Fatalf("after %T: %d round trips observed, want %d", req, n, i+1)
		}
	}
	// The keep-alive answers the Publish after about 300 ms.
	if resp, err := s.Do(ctx, &ua.PublishRequest{}); err != nil {
		t.Fatalf("Publish: %v", err)
	} else if _, ok := resp.(*ua.PublishResponse); !ok {
		t.Fatalf("Publish: %T %v", resp, resp.Header().ServiceResult)
	}
	n, sum := o.count()
	if n != len(requests) || sum <= 0 || sum > 5 {
		t.Fatalf("after a Publish: %d round trips observed, %v s in all; want %d, more than 0", n, sum, len(requests))
	}
}

// startFeeder is a simulated feeder PLC (gopcua's server), closed when the
// test ends.
func startFeeder(t *testing.T) *opcuasim.PLC {
	t.Helper()
	plc, err := opcuasim.New(opcuasim.Options{Endpoint: "opc.tcp://127.0.0.1:0", Model: "feeder"})
	if err != nil {
		t.Fatal(err)
	}
	if err := plc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plc.Close() })
	return plc
}

// testIdentity is a fresh application certificate for brana's client side.
func testIdentity(t *testing.T) Identity {
	t.Helper()
	id, _, err := opcuatrust.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "c.pem"), "urn:brana:test:client", []string{"test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
