package opcuatrust

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/brana-ot/brana/gateway/passhash"
)

// Users are the user names and password hashes of brana's OPC UA endpoint,
// read from a YAML file. Policy binds each name to a party (opcua_users).
type Users struct {
	byName map[string]passhash.Hash
	decoy  passhash.Hash // verified for unknown users, so that timing does not tell them apart
	sem    chan struct{} // bounds concurrent argon2 runs: each takes its memory parameter
}

type usersFile struct {
	Users []userEntry `yaml:"users"`
}

type userEntry struct {
	User string `yaml:"user"`
	Hash string `yaml:"hash"`
}

// validUser accepts the user names policy accepts in opcua_users:
// printable, without white space, at most 64 bytes.
func validUser(u string) bool {
	if u == "" || len(u) > 64 {
		return false
	}
	for _, r := range u {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

var unknownKey = regexp.MustCompile(`field (\S+) not found in type \S+`)

// LoadUsers reads a users file:
//
//	users:
//	  - user: jan.novak
//	    hash: "$argon2id$v=19$m=65536,t=3,p=2$SALT$HASH"   # brana opcua user-hash
//
// Unknown keys, bad names, names listed twice and bad hashes are errors
// naming the file and line. A file that others may write is refused:
// whoever writes it decides who logs in.
func LoadUsers(path string) (*Users, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("opcua users: %w", err)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return nil, fmt.Errorf("opcua users: %s is writable by anyone; chmod o-w it", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("opcua users: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("opcua users: %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f usersFile
	if err := dec.Decode(&f); err != nil && len(root.Content) > 0 {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = unknownKey.ReplaceAllString(msg, `unknown key "$1"`)
		return nil, fmt.Errorf("opcua users: %s: %s", path, msg)
	}
	lines := itemLines(&root, "users")
	u := &Users{byName: make(map[string]passhash.Hash, len(f.Users)), sem: make(chan struct{}, 2)}
	var problems []string
	for i, e := range f.Users {
		where := fmt.Sprintf("%s: users[%d]", path, i)
		if i < len(lines) {
			where = fmt.Sprintf("%s:%d: users[%d]", path, lines[i], i)
		}
		switch _, dup := u.byName[e.User]; {
		case !validUser(e.User):
			problems = append(problems, fmt.Sprintf("%s.user: %q is not a user name (1 to 64 characters, no white space)", where, e.User))
		case dup:
			problems = append(problems, fmt.Sprintf("%s.user: %q is listed twice", where, e.User))
		}
		h, err := passhash.Parse(e.Hash)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s.hash: %v (make one with brana opcua user-hash)", where, err))
		}
		u.byName[e.User] = h
	}
	if len(problems) > 0 {
		return nil, errors.New("opcua users: " + strings.Join(problems, "\n"))
	}
	u.decoy = passhash.Hash{}.Decoy()
	for _, h := range u.byName {
		u.decoy = h.Decoy()
		break
	}
	return u, nil
}

// itemLines finds the line of each item of the top-level list key.
func itemLines(root *yaml.Node, key string) []int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key && n.Content[i+1].Kind == yaml.SequenceNode {
			var lines []int
			for _, item := range n.Content[i+1].Content {
				lines = append(lines, item.Line)
			}
			return lines
		}
	}
	return nil
}

// Check reports whether password is user's. It takes one argon2id run
// whether or not the user exists, and compares in constant time.
func (u *Users) Check(user, password string) bool {
	h, known := u.byName[user]
	if !known {
		h = u.decoy
	}
	u.sem <- struct{}{}
	ok := h.Verify(password)
	<-u.sem
	return ok && known
}

// Names lists the users, sorted.
func (u *Users) Names() []string {
	out := make([]string, 0, len(u.byName))
	for n := range u.byName {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
