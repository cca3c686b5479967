package gateway

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brana-ot/brana/firmware"
	"github.com/brana-ot/brana/gateway/config"
	"github.com/brana-ot/brana/signkey"
)

// The manifest's serial is remembered in the data directory, so that an
// older manifest is refused after a restart too, and one serial cannot name
// two different lists.
func TestLoadManifestAntiRollback(t *testing.T) {
	dir := t.TempDir()
	skey, vkey, err := signkey.Generate("test-firmware")
	if err != nil {
		t.Fatal(err)
	}
	skeyPath, vkeyPath, err := signkey.WritePair(filepath.Join(dir, "fw"), skey, vkey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signkey.LoadSigner(skeyPath)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	manifest := filepath.Join(dir, "MANIFEST")
	sign := func(serial uint64, version string) {
		t.Helper()
		data, err := firmware.SignManifest(firmware.Manifest{Serial: serial, Issued: now.Add(-time.Hour), Expires: now.Add(time.Hour),
			Images: []firmware.Image{{SHA256: strings.Repeat("5f", 32), Size: 10,
				Vendor: "V", Product: "P", Version: version, Origin: "test", ApprovedBy: []string{"A"}}}}, signer)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(manifest, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &config.Config{Gateway: config.Gateway{DataDir: filepath.Join(dir, "data")},
		Firmware: config.Firmware{Manifest: manifest, Keys: []string{vkeyPath}}}

	if m, err := loadManifest(&config.Config{}, now); m != nil || err != nil {
		t.Fatalf("no firmware section: %v, %v; want nothing", m, err)
	}
	sign(5, "1.0")
	// brana check verifies as the start does, and remembers nothing.
	if m, err := CheckManifest(cfg, now); err != nil || m.Serial != 5 {
		t.Fatalf("CheckManifest serial 5: %v, %v", m, err)
	}
	if _, err := os.Stat(firmwareStatePath(cfg)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("CheckManifest left a state file: %v", err)
	}
	if m, err := loadManifest(cfg, now); err != nil || m.Serial != 5 {
		t.Fatalf("serial 5: %v, %v", m, err)
	}
	// A restart reads the same manifest again.
	if _, err := loadManifest(cfg, now); err != nil {
		t.Fatalf("serial 5 again: %v", err)
	}
	sign(5, "1.1")
	if _, err := loadManifest(cfg, now); !errors.Is(err, ErrManifestReuse) {
		t.Fatalf("another manifest with serial 5: %v; want ErrManifestReuse", err)
	}
	if _, err := CheckManifest(cfg, now); !errors.Is(err, ErrManifestReuse) {
		t.Fatalf("CheckManifest of another manifest with serial 5: %v; want ErrManifestReuse", err)
	}
	sign(4, "1.0")
	if _, err := loadManifest(cfg, now); !errors.Is(err, firmware.ErrRollback) {
		t.Fatalf("serial 4 after 5: %v; want ErrRollback", err)
	}
	if _, err := CheckManifest(cfg, now); !errors.Is(err, firmware.ErrRollback) {
		t.Fatalf("CheckManifest of serial 4 after 5: %v; want ErrRollback", err)
	}
	sign(6, "1.2")
	if _, err := CheckManifest(cfg, now); err != nil {
		t.Fatalf("CheckManifest serial 6: %v", err)
	}
	if st, err := loadFirmwareState(firmwareStatePath(cfg)); err != nil || st.Serial != 5 {
		t.Fatalf("state after CheckManifest of serial 6: %+v, %v; want serial 5 still", st, err)
	}
	if m, err := loadManifest(cfg, now); err != nil || m.Serial != 6 {
		t.Fatalf("serial 6: %v, %v", m, err)
	}
	st, err := loadFirmwareState(firmwareStatePath(cfg))
	if err != nil || st.Serial != 6 {
		t.Fatalf("state after serial 6: %+v, %v", st, err)
	}

	// A state file that cannot be read is not taken for "nothing seen yet".
	if err := os.WriteFile(firmwareStatePath(cfg), []byte("{serial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadManifest(cfg, now); err == nil {
		t.Fatal("a corrupt state file was ignored")
	}
	if _, err := CheckManifest(cfg, now); err == nil {
		t.Fatal("CheckManifest ignored a corrupt state file")
	}
}
