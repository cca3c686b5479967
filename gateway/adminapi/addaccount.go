package adminapi

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"go.yaml.in/yaml/v3"

	"github.com/brana-ot/brana/gateway/atomicfile"
)

// ErrAccountExists is returned by AddAccount for a user the file already has.
var ErrAccountExists = errors.New("adminapi: account exists")

// AddAccount adds acc to the accounts file at path, creating the file (mode
// 0640) when it does not exist. Comments and the other entries are kept.
// The new contents are checked as LoadAccounts checks a file before they
// replace it (temp file, fsync, rename); the owner and mode of an existing
// file are kept where the caller may keep them. A user the file has already
// is ErrAccountExists, and the file is left as it is.
func AddAccount(path string, acc Account) error {
	perm := os.FileMode(0o640)
	var owner *syscall.Stat_t
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if fi, err := os.Stat(path); err == nil {
			perm = fi.Mode().Perm()
			owner, _ = fi.Sys().(*syscall.Stat_t)
		}
	case errors.Is(err, fs.ErrNotExist):
		data = nil
	default:
		return fmt.Errorf("accounts: %w", err)
	}
	if len(bytes.TrimSpace(data)) > 0 {
		m, err := parseFile(path, data)
		if err != nil {
			return err
		}
		if m[acc.User] != nil {
			return fmt.Errorf("%w: %s in %s", ErrAccountExists, acc.User, path)
		}
	}
	out, err := appendAccount(data, acc)
	if err != nil {
		return fmt.Errorf("accounts: %s: %w", path, err)
	}
	m, err := parseFile(path, out)
	if err != nil {
		return err
	}
	if m[acc.User] == nil {
		return fmt.Errorf("accounts: %s: the new account %s did not come out of the file", path, acc.User)
	}
	if err := atomicfile.WriteFile(path, out, perm); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	if owner != nil {
		// Best effort: only root may give a file to someone else.
		os.Lchown(path, int(owner.Uid), int(owner.Gid))
	}
	return nil
}

// appendAccount returns the YAML of an accounts file with acc added at the
// end of its list; data may be empty.
func appendAccount(data []byte, acc Account) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, errors.New("not a YAML mapping with an accounts list")
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "accounts" {
			list = root.Content[i+1]
			if list.Kind == yaml.ScalarNode && list.Tag == "!!null" {
				*list = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			}
		}
	}
	if list == nil {
		list = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "accounts"}, list)
	}
	if list.Kind != yaml.SequenceNode {
		return nil, errors.New("accounts is not a list")
	}
	list.Style = 0 // block style, also for an empty "accounts: []"
	str := func(v string, style yaml.Style) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v, Style: style}
	}
	item := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	item.Content = append(item.Content, str("user", 0), str(acc.User, 0))
	if acc.Name != "" {
		item.Content = append(item.Content, str("name", 0), str(acc.Name, yaml.DoubleQuotedStyle))
	}
	if acc.Party != "" {
		item.Content = append(item.Content, str("party", 0), str(acc.Party, 0))
	}
	roles := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
	for _, r := range acc.Roles {
		roles.Content = append(roles.Content, str(r, 0))
	}
	item.Content = append(item.Content, str("roles", 0), roles, str("hash", 0), str(acc.Hash, yaml.DoubleQuotedStyle))
	if acc.TOTP != "" {
		item.Content = append(item.Content, str("totp", 0), str(acc.TOTP, yaml.DoubleQuotedStyle))
	}
	list.Content = append(list.Content, item)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// CheckUser says what is wrong with a user name for the accounts file, or
// returns nil.
func CheckUser(name string) error {
	if !validUser.MatchString(name) {
		return fmt.Errorf("adminapi: %q is not a valid user name (lower-case letters, digits, '_', '.', '@', '-'; at most 64)", name)
	}
	return nil
}
