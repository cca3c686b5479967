package journal

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestPriorityPrefixes(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(New(&buf, slog.LevelDebug)).With("part", "audit").WithGroup("g")
	log.Debug("d", "k", 1)
	log.Info("i")
	log.Warn("w")
	log.Error("e", "err", "disk full")
	want := []string{
		`<7>level=DEBUG msg=d part=audit g.k=1`,
		`<6>level=INFO msg=i part=audit`,
		`<4>level=WARN msg=w part=audit`,
		`<3>level=ERROR msg=e part=audit g.err="disk full"`,
	}
	got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLevelFilter(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(New(&buf, slog.LevelWarn))
	log.Info("quiet")
	log.Warn("loud")
	if got := buf.String(); got != "<4>level=WARN msg=loud\n" {
		t.Fatalf("got %q", got)
	}
}

func TestAttached(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stream")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", "")
	if Attached(f) {
		t.Fatal("attached without JOURNAL_STREAM")
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	if !Attached(f) {
		t.Fatal("not attached to the stream JOURNAL_STREAM names")
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1))
	if Attached(f) {
		t.Fatal("attached to another stream")
	}
}
