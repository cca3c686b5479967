package opcua

import (
	"strings"
	"testing"

	"github.com/gopcua/opcua/id"
)

// ns0Names maps every symbolic name of gopcua's id tables to its id.
func ns0Names() map[string]uint32 {
	names := make(map[string]uint32)
	for i := uint32(0); i < 1<<17; i++ {
		if n := id.Name(i); n[0] < '0' || n[0] > '9' { // unknown ids come back as numbers
			names[n] = i
		}
	}
	return names
}

// The classifier trusts the last element of a namespace-0 name. Pin what that
// rests on: every name with a file suffix belongs to a node that also has the
// rest of its type's methods, so it is FileType (or a subtype), a
// TemporaryFileTransferType or a FileDirectoryType, not some other method
// that happens to be called Write.
func TestNS0SuffixesAreFileMethods(t *testing.T) {
	names := ns0Names()
	siblings := map[string][]string{
		"Open":                   {"Write", "Close", "Read", "SetPosition"},
		"Write":                  {"Open", "Close", "Read"},
		"Close":                  {"Open", "Write", "Read"},
		"SetPosition":            {"Open", "GetPosition"},
		"CloseAndUpdate":         {"Open", "Write", "AddCertificate"},
		"GenerateFileForWrite":   {"GenerateFileForRead", "CloseAndCommit"},
		"CloseAndCommit":         {"GenerateFileForRead", "GenerateFileForWrite"},
		"CreateFile":             {"CreateDirectory", "DeleteFileSystemObject", "MoveOrCopy"},
		"CreateDirectory":        {"CreateFile", "DeleteFileSystemObject", "MoveOrCopy"},
		"DeleteFileSystemObject": {"CreateFile", "CreateDirectory", "MoveOrCopy"},
		"MoveOrCopy":             {"CreateFile", "CreateDirectory", "DeleteFileSystemObject"},
	}
	counts := map[string]int{}
	for name := range names {
		i := strings.LastIndexByte(name, '_')
		if i < 0 {
			continue
		}
		prefix, suffix := name[:i], name[i+1:]
		if _, ok := ns0Rules[suffix]; !ok {
			continue
		}
		counts[suffix]++
		for _, s := range siblings[suffix] {
			if s == "AddCertificate" { // PubSubConfiguration has no certificates
				continue
			}
			if _, ok := names[prefix+"_"+s]; !ok {
				t.Errorf("%s has no sibling %s_%s: not a file method?", name, prefix, s)
			}
		}
	}
	for suffix := range ns0Rules {
		if counts[suffix] == 0 {
			t.Errorf("no namespace-0 method ends in _%s; the id tables changed", suffix)
		}
	}
	if counts["Write"] < 32 {
		t.Errorf("%d FileType Write methods in namespace 0; want the 32 of gopcua v0.8.0", counts["Write"])
	}
}

// Spot checks by id, independent of the suffix rule.
func TestLookupMethodByID(t *testing.T) {
	tests := []struct {
		name string
		id   uint32
		rule methodRule
	}{
		{"ok/filetype-open", id.FileType_Open, ruleOpen},
		{"ok/filetype-write", id.FileType_Write, ruleProgram},
		{"ok/filetype-close", id.FileType_Close, ruleProgram},
		{"ok/filetype-set-position", id.FileType_SetPosition, ruleProgram},
		{"ok/filetype-read", id.FileType_Read, ruleControl},
		{"ok/filetype-get-position", id.FileType_GetPosition, ruleControl},
		{"ok/temporary-generate-for-write", id.TemporaryFileTransferType_GenerateFileForWrite, ruleProgram},
		{"ok/temporary-close-and-commit", id.TemporaryFileTransferType_CloseAndCommit, ruleProgram},
		{"ok/temporary-generate-for-read", id.TemporaryFileTransferType_GenerateFileForRead, ruleControl},
		{"ok/namespace-file-write", id.OPCUANamespaceMetadata_NamespaceFile_Write, ruleProgram},
		{"ok/pubsub-configuration-open", id.PublishSubscribe_PubSubConfiguration_Open, ruleOpen},
		{"ok/condition-refresh", id.ConditionType_ConditionRefresh, ruleControl},
		{"ok/not-a-known-id", 999999, ruleControl},
		{"ok/an-object-not-a-method", id.Server, ruleControl},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rule, _ := (*Classifier)(nil).lookupMethod(ns0(tt.id)); rule != tt.rule {
				t.Fatalf("lookupMethod(i=%d) = %d; want %d", tt.id, rule, tt.rule)
			}
		})
	}
	t.Run("ok/non-numeric-method-ids-are-ordinary", func(t *testing.T) {
		if rule, name := (*Classifier)(nil).lookupMethod(str(0, "FileType_Write")); rule != ruleControl || name != "" {
			t.Fatalf("lookupMethod(s=FileType_Write) = %d %q", rule, name)
		}
	})
}

// The DI file methods follow FileType's rules; everything else in the DI
// table is Software Update and therefore program.
func TestDIMethods(t *testing.T) {
	seen := map[string]bool{}
	for num, m := range diMethods {
		if seen[m.name] {
			t.Errorf("%s listed twice", m.name)
		}
		seen[m.name] = true
		if !strings.HasPrefix(m.name, "DI:") {
			t.Errorf("%d: name %q lacks the DI: prefix", num, m.name)
		}
		if strings.Contains(m.name, "DocumentationFiles") {
			suffix := m.name[strings.LastIndexByte(m.name, '_')+1:]
			if want := ns0Rules[suffix]; m.rule != want {
				t.Errorf("%s: rule %d; want FileType's %d", m.name, m.rule, want)
			}
		} else if m.rule != ruleProgram {
			t.Errorf("%s: Software Update method is not program", m.name)
		}
	}
}
