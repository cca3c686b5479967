package sshlink

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"golang.org/x/crypto/ssh"
)

// Backend is what the gateway plugs into the endpoint: identities, targets,
// admission, the in-process terminators, the exec vocabulary and the audit
// hooks. Methods are called from many goroutines at once.
type Backend interface {
	// Identify binds a public key or a certificate's key to a party.
	// Certificates have been checked already: signed by a trusted CA, the
	// SSH user name among the principals, inside the validity window, no
	// unsupported critical option. For a plain key cert is nil; for a
	// certificate key is cert.Key. ok=false: not enrolled.
	Identify(user string, key ssh.PublicKey, cert *ssh.Certificate) (party string, ok bool)

	// TargetPort is the protocol port of a configured target (502 for
	// Modbus); ok=false if name is not a target.
	TargetPort(name string) (uint32, bool)

	// Admit decides whether a channel to target may open now.
	Admit(ctx context.Context, id Identity, target string) Admission

	// Serve runs the target's terminator over ch until it ends. It runs in
	// process and never dials anything the vendor named. ctx ends when the
	// SSH connection ends.
	Serve(ctx context.Context, id Identity, target string, ch io.ReadWriteCloser)

	// Exec runs one vocabulary command. argv is already split shell-style
	// and argv[0] is "request" or "status". It writes the answer to out and
	// returns the exit status.
	Exec(ctx context.Context, id Identity, argv []string, out io.Writer) int

	// Refused is the audit hook for every refusal. id is nil before
	// authentication. what names the refused thing: "connection",
	// "auth publickey", "auth password", "auth", "channel direct-tcpip",
	// "channel x11", "global tcpip-forward", "request shell",
	// "request pty-req", "request subsystem", "request x11-req",
	// "request auth-agent-req@openssh.com", "exec", "certificate". reason
	// is the whole cause for the record; the vendor sees a shorter message.
	Refused(src netip.AddrPort, id *Identity, what, reason string)

	// Event is the audit hook for the session's life: kind is "ssh.open",
	// "ssh.close", "channel.open", "channel.close" or "channel.held".
	Event(kind string, id Identity, detail string)
}

// Verdict is Admit's decision on a channel. The zero value denies.
type Verdict int

// Verdicts.
const (
	Deny  Verdict = iota // refuse the channel with Reason and RequestID
	Allow                // open the channel and Serve it now
	Hold                 // a pending request exists or was created: wait for approval
)

func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Hold:
		return "hold"
	case Deny:
		return "deny"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// Admission is Admit's answer.
type Admission struct {
	Verdict   Verdict
	Reason    string // short, shown to the vendor (Deny)
	RequestID string // the access request, if any (Hold, Deny)
	// Wait, for Hold, blocks until the request is approved (true) or ctx is
	// done or the request is denied (false). ctx ends after hold_for.
	Wait func(ctx context.Context) bool
}

// Identity is who is on the other end of one SSH connection.
type Identity struct {
	Conn           string         // connection id, for Server.Kill
	Party          string         // from Backend.Identify
	Principal      string         // certificate principal that matched (= User); "" for plain keys
	KeyFingerprint string         // SHA256:... of the key (for a certificate, of its key)
	CertID         string         // KeyId of the certificate
	CertSerial     uint64         // serial of the certificate
	ValidBefore    time.Time      // certificate's end; zero for plain keys and certificates without an end
	Source         netip.AddrPort // client address
	User           string         // SSH user name
}

// Via describes the credential for listings and records:
// `ssh key SHA256:…` or `ssh certificate "ID" serial N key SHA256:…`.
func (id Identity) Via() string {
	if id.Principal != "" {
		return fmt.Sprintf("ssh certificate %q serial %d key %s", id.CertID, id.CertSerial, id.KeyFingerprint)
	}
	return "ssh key " + id.KeyFingerprint
}

// ConnInfo describes a live, authenticated SSH connection.
type ConnInfo struct {
	ID       string
	Identity Identity
	Since    time.Time
	Channels int // open or held channels
}
