package sessions

import "github.com/brana-ot/brana/policy"

// Identity says who is on a stream and how that was established; every
// protocol front builds one before a session starts.
type Identity struct {
	Party       *policy.Party
	Source      string // client address, host:port
	Via         string // "source network", "ssh key SHA256:…", "ssh certificate …", "tls certificate …"
	CertCountry string // subject country of a client certificate, for the jurisdiction signals
}
