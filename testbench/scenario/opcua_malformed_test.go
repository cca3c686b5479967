package scenario

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	gopcua "github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/brana-ot/brana/protocols/opcua"
	"github.com/brana-ot/brana/testbench/gwtest"
	"github.com/brana-ot/brana/testbench/opcuasim"
)

// uaConn is a hand-driven OPC UA client connection, for sending what no
// real client would.
type uaConn struct {
	t   *testing.T
	c   net.Conn
	seq uint32
}

func dialUA(t *testing.T, addr string) *uaConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &uaConn{t: t, c: c}
}

func chunk(typ string, ct byte, rest []byte) []byte {
	b := append([]byte(typ), ct, 0, 0, 0, 0)
	b = append(b, rest...)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
	return b
}

func u32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

func helloBody(recv uint32, url string) []byte {
	b := u32(nil, 0)
	b = u32(b, recv)
	b = u32(b, 65535)
	b = u32(b, 0)
	b = u32(b, 0)
	b = u32(b, uint32(len(url)))
	return append(b, url...)
}

func (u *uaConn) send(b []byte) {
	u.t.Helper()
	if _, err := u.c.Write(b); err != nil {
		u.t.Fatal(err)
	}
}

// read returns the next message: its type and body after the header.
func (u *uaConn) read() (string, []byte) {
	u.t.Helper()
	u.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var h [8]byte
	if _, err := io.ReadFull(u.c, h[:]); err != nil {
		u.t.Fatalf("reading a message: %v", err)
	}
	body := make([]byte, binary.LittleEndian.Uint32(h[4:])-8)
	if _, err := io.ReadFull(u.c, body); err != nil {
		u.t.Fatalf("reading a message body: %v", err)
	}
	return string(h[:3]), body
}

// expectErr reads an ERR message with code and expects the connection to close.
func (u *uaConn) expectErr(code uint32, reason string) {
	u.t.Helper()
	typ, body := u.read()
	if typ != "ERR" || binary.LittleEndian.Uint32(body) != code || !strings.Contains(string(body[8:]), reason) {
		u.t.Fatalf("got %s %x %q; want ERR 0x%08X mentioning %q", typ, body[:min(4, len(body))], body[min(8, len(body)):], code, reason)
	}
	u.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := u.c.Read(make([]byte, 1)); err == nil {
		u.t.Fatal("the connection stays open after ERR")
	}
}

// open sends HEL and OpenSecureChannel (None) and returns the channel and token ids.
func (u *uaConn) open() (uint32, uint32) {
	u.t.Helper()
	u.send(chunk("HEL", 'F', helloBody(65535, "opc.tcp://brana")))
	if typ, _ := u.read(); typ != "ACK" {
		u.t.Fatalf("HEL answered with %s", typ)
	}
	return u.opn(0, ua.SecurityTokenRequestTypeIssue)
}

// opn sends OpenSecureChannel (Issue or Renew) and returns the channel and token ids.
func (u *uaConn) opn(chanID uint32, kind ua.SecurityTokenRequestType) (uint32, uint32) {
	u.t.Helper()
	body, err := opcua.EncodeRequest(nil, &ua.OpenSecureChannelRequest{RequestHeader: reqHeader(),
		RequestType: kind, SecurityMode: ua.MessageSecurityModeNone, RequestedLifetime: 600000})
	if err != nil {
		u.t.Fatal(err)
	}
	rest := u32(nil, chanID)
	rest = u32(rest, uint32(len(ua.SecurityPolicyURINone)))
	rest = append(rest, ua.SecurityPolicyURINone...)
	rest = u32(u32(rest, 0xffffffff), 0xffffffff)
	u.seq++
	rest = u32(u32(rest, u.seq), 1)
	u.send(chunk("OPN", 'F', append(rest, body...)))
	typ, resp := u.read()
	if typ != "OPN" {
		u.t.Fatalf("OPN answered with %s %q", typ, resp)
	}
	chanID = binary.LittleEndian.Uint32(resp)
	// OPN response: channel id, policy uri, two null byte strings, sequence header, then the body.
	off := 4 + 4 + len(ua.SecurityPolicyURINone) + 8 + 8
	r, err := opcua.DecodeResponse(resp[off:])
	if err != nil {
		u.t.Fatal(err)
	}
	return chanID, r.(*ua.OpenSecureChannelResponse).SecurityToken.TokenID
}

func reqHeader() *ua.RequestHeader {
	return &ua.RequestHeader{AuthenticationToken: ua.NewTwoByteNodeID(0), Timestamp: time.Now(), AdditionalHeader: ua.NewExtensionObject(nil)}
}

// msg sends body as one MSG chunk with request id reqID.
func (u *uaConn) msg(chanID, token, reqID uint32, body []byte) {
	u.seq++
	rest := u32(u32(u32(u32(nil, chanID), token), u.seq), reqID)
	u.send(chunk("MSG", 'F', append(rest, body...)))
}

// response reads a MSG and decodes its service response.
func (u *uaConn) response() ua.Response {
	u.t.Helper()
	typ, b := u.read()
	if typ != "MSG" {
		u.t.Fatalf("got %s %q, want MSG", typ, b)
	}
	r, err := opcua.DecodeResponse(b[16:])
	if err != nil {
		u.t.Fatal(err)
	}
	return r
}

// Malformed OPC UA input over real sockets: every broken message gets a
// clear error, an undecodable request is answered Bad_DecodingError and
// logged as invalid without reaching the PLC, and the gateway keeps serving.
func TestOPCUAMalformedMessages(t *testing.T) {
	plc := startOPCUAPLC(t)
	gw := gwtest.Start(t, configHead+opcuaLab(plc.Endpoint(), "")+partiesYAML+opcuaRules("monitoring", "line-opc", plc.NamespaceURI()))
	addr := gw.Addr("opc-lab").String()

	t.Run("http-instead-of-hello", func(t *testing.T) {
		u := dialUA(t, addr)
		u.send([]byte("GET / HTTP/1.1\r\nHost: brana\r\n\r\n"))
		u.expectErr(0x807E0000, "unknown message type")
	})
	t.Run("hello-with-tiny-buffers", func(t *testing.T) {
		u := dialUA(t, addr)
		u.send(chunk("HEL", 'F', helloBody(1024, "opc.tcp://brana")))
		u.expectErr(0x80820000, "below the minimum")
	})
	t.Run("message-before-open", func(t *testing.T) {
		u := dialUA(t, addr)
		u.send(chunk("HEL", 'F', helloBody(65535, "opc.tcp://brana")))
		u.read()
		u.msg(0, 0, 1, []byte{1, 0, 0x77, 0x02})
		u.expectErr(0x807F0000, "MSG before OpenSecureChannel")
	})
	t.Run("chunk-over-the-buffer", func(t *testing.T) {
		u := dialUA(t, addr)
		u.open()
		big := chunk("MSG", 'F', make([]byte, 70000))
		u.send(big[:8])
		u.expectErr(0x80800000, "exceeds the receive buffer")
	})
	t.Run("wrong-channel", func(t *testing.T) {
		u := dialUA(t, addr)
		ch, tok := u.open()
		u.msg(ch+1, tok, 2, []byte{1, 0, 0x77, 0x02})
		u.expectErr(0x807F0000, "is not this channel")
	})
	t.Run("forged-array-count", func(t *testing.T) {
		u := dialUA(t, addr)
		ch, tok := u.open()
		// A ReadRequest whose NodesToRead claims 2^31-1 entries in a few bytes.
		item := &ua.ReadValueID{NodeID: ua.NewNumericNodeID(0, 2255), AttributeID: ua.AttributeIDValue, DataEncoding: &ua.QualifiedName{}}
		body, err := opcua.EncodeRequest(nil, &ua.ReadRequest{RequestHeader: reqHeader(), NodesToRead: []*ua.ReadValueID{item}})
		if err != nil {
			t.Fatal(err)
		}
		tail, err := ua.Encode(item)
		if err != nil {
			t.Fatal(err)
		}
		forged := append([]byte(nil), body...)
		at := len(body) - len(tail) - 4 // the count sits right before the only entry
		binary.LittleEndian.PutUint32(forged[at:], 0x7fffffff)
		u.msg(ch, tok, 3, forged)
		f, ok := u.response().(*ua.ServiceFault)
		if !ok || f.ResponseHeader.ServiceResult != ua.StatusBadDecodingError {
			t.Fatalf("forged count answered %+v, want a Bad_DecodingError fault", f)
		}
		// The channel still works.
		get, _ := opcua.EncodeRequest(nil, &ua.GetEndpointsRequest{RequestHeader: reqHeader(),
			EndpointURL: "opc.tcp://brana"})
		u.msg(ch, tok, 4, get)
		ep, ok := u.response().(*ua.GetEndpointsResponse)
		if !ok || len(ep.Endpoints) != 1 || ep.Endpoints[0].Server.ApplicationURI != "urn:brana:gateway" {
			t.Fatalf("GetEndpoints after the forged request: %+v", ep)
		}
		waitAudit(t, gw, "the invalid request", func(r *auditRec) bool {
			return r.Type == "command" && r.Decision == "invalid" && r.Listener == "opc-lab" && strings.Contains(r.Detail, "2147483647")
		})
	})
	t.Run("token-renewal", func(t *testing.T) {
		u := dialUA(t, addr)
		ch, tok := u.open()
		ch2, tok2 := u.opn(ch, ua.SecurityTokenRequestTypeRenew)
		if ch2 != ch || tok2 == tok {
			t.Fatalf("renewal gave channel %d token %d; had %d/%d", ch2, tok2, ch, tok)
		}
		get, _ := opcua.EncodeRequest(nil, &ua.GetEndpointsRequest{RequestHeader: reqHeader(), EndpointURL: "opc.tcp://brana"})
		for i, token := range []uint32{tok, tok2} { // the old token is still good during its overlap
			u.msg(ch, token, uint32(10+i), get)
			if _, ok := u.response().(*ua.GetEndpointsResponse); !ok {
				t.Fatalf("token %d refused after renewal", token)
			}
		}
		u.msg(ch, tok2+7, 12, get)
		u.expectErr(0x80870000, "unknown security token")
	})
	t.Run("service-before-session", func(t *testing.T) {
		u := dialUA(t, addr)
		ch, tok := u.open()
		w, _ := opcua.EncodeRequest(nil, &ua.WriteRequest{RequestHeader: &ua.RequestHeader{Timestamp: time.Now(), AdditionalHeader: ua.NewExtensionObject(nil),
			AuthenticationToken: ua.NewByteStringNodeID(0, []byte("guessed-token"))},
			NodesToWrite: []*ua.WriteValue{{NodeID: plc.NodeID("Feeder.Protection.OvercurrentPickup"), AttributeID: ua.AttributeIDValue,
				Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(1.0)}}}})
		u.msg(ch, tok, 5, w)
		f, ok := u.response().(*ua.ServiceFault)
		if !ok || f.ResponseHeader.ServiceResult != ua.StatusBadSessionIDInvalid {
			t.Fatalf("write without a session answered %+v", f)
		}
	})
	if c := plc.Counters(); c.Writes != 0 {
		t.Fatalf("the PLC saw %d writes", c.Writes)
	}
}

// A dead PLC: the vendor's session cannot be activated and says why in a
// status code, the refusal is in the audit log, and once the PLC is back
// the next session works. gopcua is the client here.
func TestOPCUADeadPLC(t *testing.T) {
	plcAddr := freeAddr(t)
	gw := gwtest.Start(t, configHead+opcuaLab("opc.tcp://"+plcAddr, "    timeout: 1s\n")+partiesYAML+opcuaRules("monitoring", "line-opc", "urn:brana:testbench:feeder"))
	endpoint := "opc.tcp://" + gw.Addr("opc-lab").String()
	connect := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := gopcua.NewClient(endpoint, gopcua.SecurityMode(ua.MessageSecurityModeNone), gopcua.AutoReconnect(false))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if err := c.Connect(ctx); err != nil {
			return err
		}
		_, err = c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: ua.NewNumericNodeID(0, 2258), AttributeID: ua.AttributeIDValue}}})
		return err
	}
	if err := connect(); !errors.Is(err, ua.StatusBadNoCommunication) {
		t.Fatalf("session with the PLC down: %v, want BadNoCommunication", err)
	}
	waitAudit(t, gw, "the refused session", func(r *auditRec) bool {
		return r.Type == "session.refused" && r.Reason == "target-unreachable" && r.Target == "line-opc"
	})
	plc, err := opcuasim.New(opcuasim.Options{Endpoint: "opc.tcp://" + plcAddr, Model: "feeder"})
	if err != nil {
		t.Fatal(err)
	}
	if err := plc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer plc.Close()
	if err := connect(); err != nil {
		t.Fatalf("session once the PLC is up: %v", err)
	}
}
