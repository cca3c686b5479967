package approvals

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/brana-ot/brana/protocols/opclass"
)

// Config is the approvals section of the gateway config. Durations are
// strings such as "30m", "2h" or "1d"; Check parses them and fills defaults.
type Config struct {
	PendingTTL    string          `yaml:"pending_ttl"`    // how long a request may wait for approval [30m]
	ClaimBy       string          `yaml:"claim_by"`       // an approved grant must be first used within this [1h]
	DefaultWindow string          `yaml:"default_window"` // work window when a request names no duration [2h]
	MaxWindow     string          `yaml:"max_window"`     // longest work window anyone may ask for [12h]
	WindowFrom    string          `yaml:"window_from"`    // approval | first-use [first-use]
	WarnBefore    string          `yaml:"warn_before"`    // ExpiringSoon this long before a work window ends [5m]
	TwoPerson     TwoPerson       `yaml:"two_person"`     // when two different approvers are needed
	Webhooks      []WebhookConfig `yaml:"webhooks"`       // notified of new requests and of every decision
	Store         string          `yaml:"store"`          // bbolt file; the gateway passes DATA_DIR/approvals.db when empty

	// Filled by Check.
	pendingTTL, claimBy, defaultWindow, maxWindow, warnBefore time.Duration
}

// TwoPerson says which requests need two different approvers. One match is
// enough.
type TwoPerson struct {
	Kinds    []string `yaml:"kinds"`    // party kinds: vendor, integrator, operator, scada
	PRC      *bool    `yaml:"prc"`      // parties registered as PRC-managed [true]
	Verdicts []string `yaml:"verdicts"` // jurisdiction verdicts at request time: PRC, unknown, non-PRC (any case)
	Classes  []string `yaml:"classes"`  // operation classes [program]; write [] for none
}

// WebhookConfig is one notification endpoint. The payload is JSON
// {"event", "time", "request"}; it never carries anything that could approve.
type WebhookConfig struct {
	URL        string `yaml:"url"`         // http or https
	SecretFile string `yaml:"secret_file"` // optional HMAC-SHA256 key; the signature goes in X-Brana-Signature: sha256=HEX
}

// WindowFrom values.
const (
	FromApproval = "approval"
	FromFirstUse = "first-use"
)

// partyKinds mirrors the kinds that policy accepts for parties.
var partyKinds = []string{"vendor", "integrator", "operator", "scada"}

var verdicts = []string{"prc", "non-prc", "unknown"}

// Check fills defaults and returns what is wrong, one message per problem,
// each starting with the yaml key it is about ("pending_ttl: ..."). It reads
// the webhook secret files, so that `brana check` finds a missing one.
func (c *Config) Check() []string {
	var p []string
	bad := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	dur := func(key string, s *string, def string, dst *time.Duration) {
		if *s == "" {
			*s = def
		}
		d, err := parseDuration(*s)
		switch {
		case err != nil:
			bad("%s: %q is not a duration (examples: 30m, 2h, 1d)", key, *s)
		case d <= 0:
			bad("%s: must be more than zero", key)
		case d > 30*24*time.Hour:
			bad("%s: %s is longer than 30 days", key, *s)
		default:
			*dst = d
		}
	}
	dur("pending_ttl", &c.PendingTTL, "30m", &c.pendingTTL)
	dur("claim_by", &c.ClaimBy, "1h", &c.claimBy)
	dur("default_window", &c.DefaultWindow, "2h", &c.defaultWindow)
	dur("max_window", &c.MaxWindow, "12h", &c.maxWindow)
	dur("warn_before", &c.WarnBefore, "5m", &c.warnBefore)
	if c.defaultWindow > 0 && c.maxWindow > 0 && c.defaultWindow > c.maxWindow {
		bad("default_window: %s is longer than max_window %s", c.DefaultWindow, c.MaxWindow)
	}
	switch c.WindowFrom {
	case "":
		c.WindowFrom = FromFirstUse
	case FromApproval, FromFirstUse:
	default:
		bad("window_from: %q is not approval or first-use", c.WindowFrom)
	}
	if c.TwoPerson.PRC == nil {
		t := true
		c.TwoPerson.PRC = &t
	}
	if c.TwoPerson.Classes == nil {
		c.TwoPerson.Classes = []string{opclass.Program.String()}
	}
	for i, k := range c.TwoPerson.Kinds {
		if !slices.Contains(partyKinds, k) {
			bad("two_person.kinds[%d]: %q is not a party kind (%s)", i, k, strings.Join(partyKinds, ", "))
		}
	}
	for i, v := range c.TwoPerson.Verdicts {
		if !slices.Contains(verdicts, strings.ToLower(v)) {
			bad("two_person.verdicts[%d]: %q is not a verdict (%s)", i, v, strings.Join(verdicts, ", "))
		}
	}
	for i, cl := range c.TwoPerson.Classes {
		if _, err := opclass.Parse(cl); err != nil {
			bad("two_person.classes[%d]: %q is not an operation class", i, cl)
		}
	}
	for i, w := range c.Webhooks {
		u, err := url.Parse(w.URL)
		if w.URL == "" {
			bad("webhooks[%d].url: missing", i)
		} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("webhooks[%d].url: %q is not an http or https URL", i, w.URL)
		}
		if w.SecretFile != "" {
			if _, err := readSecret(w.SecretFile); err != nil {
				bad("webhooks[%d].secret_file: %v", i, err)
			}
		}
	}
	return p
}

// twoPerson says why a request needs two approvers, or "" if one is enough.
func (c *Config) twoPerson(p PartyInfo, classes []opclass.Class) string {
	var why []string
	if slices.Contains(c.TwoPerson.Kinds, p.Kind) && p.Kind != "" {
		why = append(why, "party kind "+p.Kind)
	}
	if c.TwoPerson.PRC != nil && *c.TwoPerson.PRC && p.PRC {
		why = append(why, "PRC-managed party")
	}
	if p.Verdict != "" && slices.ContainsFunc(c.TwoPerson.Verdicts, func(v string) bool { return strings.EqualFold(v, p.Verdict) }) {
		why = append(why, "jurisdiction verdict "+p.Verdict)
	}
	for _, cl := range classes {
		if slices.Contains(c.TwoPerson.Classes, cl.String()) {
			why = append(why, "class "+cl.String())
		}
	}
	return strings.Join(why, ", ")
}

// parseDuration is time.ParseDuration plus whole days ("2d").
func parseDuration(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("bad duration %q", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

// readSecret reads an HMAC key file; surrounding white space (a trailing
// newline from echo) is not part of the key.
func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return b, nil
}
