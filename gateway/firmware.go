package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/brana-ot/brana/firmware"
	"github.com/brana-ot/brana/gateway/atomicfile"
	"github.com/brana-ot/brana/gateway/config"
)

// ErrManifestReuse says a manifest carries the serial of the one accepted
// before but is a different file: a signer may not issue two lists under
// one serial.
var ErrManifestReuse = errors.New("gateway: firmware manifest serial reused for a different manifest")

// firmwareState is what brana remembers of the manifests it accepted, so
// that an older manifest is refused across restarts.
type firmwareState struct {
	Serial uint64 `json:"serial"` // highest serial accepted
	Digest string `json:"digest"` // hex SHA-256 of that manifest file
}

func firmwareStatePath(cfg *config.Config) string {
	return filepath.Join(DataDir(cfg), "firmware.state")
}

func loadFirmwareState(path string) (firmwareState, error) {
	var st firmwareState
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("firmware state: %w", err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return firmwareState{}, fmt.Errorf("firmware state %s: %w", path, err)
	}
	return st, nil
}

// CheckManifest verifies the configured manifest as the gateway does when
// it starts or reloads: the verifier key files, the signature, the text, the
// serial against the one last accepted (the data directory's firmware.state,
// also for a serial reused by a different manifest) and the expiry at now.
// Unlike the gateway it remembers nothing, so that `brana check` changes no
// state. It returns nil and no error when no manifest is configured.
func CheckManifest(cfg *config.Config, now time.Time) (*firmware.Manifest, error) {
	m, _, err := verifyManifest(cfg, now)
	return m, err
}

// verifyManifest is CheckManifest, also returning the state it checked the
// manifest against.
func verifyManifest(cfg *config.Config, now time.Time) (*firmware.Manifest, firmwareState, error) {
	fw := cfg.Firmware
	if !fw.Enabled() {
		return nil, firmwareState{}, nil
	}
	v, err := firmware.LoadVerifiers(fw.Keys...)
	if err != nil {
		return nil, firmwareState{}, err
	}
	st, err := loadFirmwareState(firmwareStatePath(cfg))
	if err != nil {
		// Without the serial, rollback cannot be ruled out.
		return nil, st, err
	}
	m, err := firmware.LoadManifest(fw.Manifest, v, now, st.Serial)
	if err != nil {
		return nil, st, err
	}
	if m.Serial == st.Serial && st.Digest != "" && m.Digest != st.Digest {
		return nil, st, fmt.Errorf("%w: serial %d", ErrManifestReuse, m.Serial)
	}
	return m, st, nil
}

// loadManifest verifies the configured manifest against the keys and the
// highest serial accepted before, and remembers its serial. It returns nil
// and no error when no manifest is configured.
func loadManifest(cfg *config.Config, now time.Time) (*firmware.Manifest, error) {
	m, st, err := verifyManifest(cfg, now)
	if m == nil || err != nil {
		return nil, err
	}
	if m.Serial > st.Serial || st.Digest == "" {
		statePath := firmwareStatePath(cfg)
		data, _ := json.MarshalIndent(firmwareState{Serial: m.Serial, Digest: m.Digest}, "", "  ")
		if err := os.MkdirAll(filepath.Dir(statePath), 0o750); err != nil {
			return nil, fmt.Errorf("firmware state: %w", err)
		}
		if err := atomicfile.WriteFile(statePath, append(data, '\n'), 0o600); err != nil {
			return nil, fmt.Errorf("firmware state: %w", err)
		}
	}
	return m, nil
}

// loadFirmware puts the configured manifest in force at start. A manifest
// that does not verify does not stop the gateway: with none in force every
// commit of a program image is refused, and the start record says why.
func (g *Gateway) loadFirmware(cfg *config.Config) {
	m, err := loadManifest(cfg, time.Now())
	switch {
	case err != nil:
		g.fwNote = "no firmware manifest in force, every program image commit is refused: " + err.Error()
		g.log.Error("firmware manifest not accepted; every program image commit is refused", "manifest", cfg.Firmware.Manifest, "err", err)
	case m != nil:
		g.manifest.Store(m)
		g.fwNote = describeManifest(m)
		g.log.Info("firmware manifest verified", "serial", m.Serial, "images", len(m.Images), "signer", m.Signer, "expires", m.Expires)
	}
}

// describeManifest is how a manifest is named in audit records.
func describeManifest(m *firmware.Manifest) string {
	return "firmware manifest serial " + strconv.FormatUint(m.Serial, 10) + ", " + strconv.Itoa(len(m.Images)) +
		" approved images, signed by " + m.Signer + ", expires " + m.Expires.UTC().Format(time.RFC3339) + ", sha256:" + m.Digest
}
