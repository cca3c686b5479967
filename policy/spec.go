package policy

// Spec is the policy part of the YAML config. It holds plain types only: the
// config loader decodes YAML strictly into it, and Compile checks and
// compiles it.
type Spec struct {
	Parties []PartySpec `yaml:"parties"`
	Rules   []RuleSpec  `yaml:"rules"`
}

// PartySpec declares one party: a person, a company or a system on the other
// end of a session.
type PartySpec struct {
	ID           string   `yaml:"id"`           // short id used in rules, e.g. "scada"
	Name         string   `yaml:"name"`         // display name of a person or system, e.g. "Control room SCADA"
	Organisation string   `yaml:"organisation"` // e.g. "ČEPS, a.s."
	Kind         string   `yaml:"kind"`         // vendor | integrator | operator | scada
	Networks     []string `yaml:"networks"`     // CIDRs or single IPs that identify local parties
}

// RuleSpec is one allow-rule. A request is allowed when one rule names its
// party and target and every restriction the rule sets holds; restrictions
// left empty do not restrict.
type RuleSpec struct {
	Name        string              `yaml:"name"`
	Description string              `yaml:"description"`
	Parties     []string            `yaml:"parties"`   // party ids, or "*"
	Targets     []string            `yaml:"targets"`   // target names, or "*"
	Classes     []string            `yaml:"classes"`   // read, write, diagnose, control, program, unknown
	Functions   []int               `yaml:"functions"` // optional: only these Modbus function codes (1..127)
	Units       []int               `yaml:"units"`     // optional: downstream unit ids 0..255; empty = any (unit 0, broadcast, only matches a rule without units or one naming 0)
	Ranges      map[string][]string `yaml:"ranges"`    // table name -> ["0-99", "120"]; an addressed access must fall wholly inside one range of its table; empty map = any address
	Values      *Bounds             `yaml:"values"`    // optional bounds on every written value (registers: 0..65535; coils 0/1)
	Reset       bool                `yaml:"reset"`     // when this rule is the reason for a denial, also reset the client connection
}

// Bounds limits every value a write carries to Min..Max, both included.
type Bounds struct {
	Min int `yaml:"min"`
	Max int `yaml:"max"`
}

// FieldError is one problem Compile found in a Spec. Path names the field the
// way the YAML spells it, e.g. "rules[2].ranges.holding[0]" or
// "parties[0].networks[1]", so the config loader can map it to a line.
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }
