package config

import (
	"fmt"
	"slices"
)

// Firmware configures the gate on program and firmware transfers: the
// signed allow-list of images that may be committed to a PLC.
type Firmware struct {
	Manifest string   `yaml:"manifest"`  // signed manifest of approved images; relative to the config file
	Keys     []string `yaml:"keys"`      // note verifier key files (name+hash+key) whose signature is accepted
	MaxImage Size     `yaml:"max_image"` // largest image brana reassembles per transfer, default 64MiB
}

// Enabled reports whether a manifest is configured.
func (f *Firmware) Enabled() bool { return f.Manifest != "" }

// Program says how a Modbus device takes a program image: FC 21 file
// records into one file, writes into a register window, or both, then a
// write that commits what was sent. brana hashes the image as it passes and
// holds the commit until the hash is on the manifest.
type Program struct {
	File   int     `yaml:"file"`   // FC 21 file number carrying the image (1..65535); 0: none
	Window *Window `yaml:"window"` // registers that carry the image
	Commit *Commit `yaml:"commit"` // the write that commits the image
}

// Window is a run of registers a device takes an image through.
type Window struct {
	Table string `yaml:"table"` // holding
	Start int    `yaml:"start"`
	Count int    `yaml:"count"`
}

// Commit is the address whose write makes a device load the image.
type Commit struct {
	Table   string `yaml:"table"` // holding | coils
	Address *int   `yaml:"address"`
}

// Default and limits of firmware.max_image.
const (
	DefaultMaxImage = 64 << 20
	maxMaxImage     = 4 << 30
)

// checkFirmware validates and completes the firmware section.
func (c *Config) checkFirmware(bad func(field, format string, args ...any)) {
	fw := &c.Firmware
	fw.Manifest = c.Rel(fw.Manifest)
	for i := range fw.Keys {
		if fw.Keys[i] == "" {
			bad(fmt.Sprintf("firmware.keys[%d]", i), "empty: name a note verifier key file")
		}
		fw.Keys[i] = c.Rel(fw.Keys[i])
	}
	switch {
	case fw.Manifest == "" && len(fw.Keys) > 0:
		bad("firmware.manifest", "missing: keys are set but no signed manifest is named")
	case fw.Manifest != "" && len(fw.Keys) == 0:
		bad("firmware.keys", "missing: the manifest needs at least one verifier key file to be checked against")
	}
	if fw.MaxImage == 0 {
		fw.MaxImage = DefaultMaxImage
	}
	if fw.MaxImage < 0 || fw.MaxImage > maxMaxImage {
		bad("firmware.max_image", "%d bytes is outside 1..4GiB", fw.MaxImage)
	}
}

// checkProgram validates a Modbus target's program profile; f is the
// target's field path.
func (c *Config) checkProgram(p *Program, f string, bad func(field, format string, args ...any)) {
	f += ".program"
	if !c.Firmware.Enabled() {
		bad(f, "needs firmware.manifest: without an allow-list of images every commit would be refused")
	}
	if p.File < 0 || p.File > 0xFFFF {
		bad(f+".file", "%d is outside 1..65535", p.File)
	}
	if p.File == 0 && p.Window == nil {
		bad(f, "names neither file (FC 21 file number) nor window (registers): nothing carries the image")
	}
	if w := p.Window; w != nil {
		if w.Table == "" {
			w.Table = "holding"
		}
		if w.Table != "holding" {
			bad(f+".window.table", "%q: an image is written into holding registers", w.Table)
		}
		if w.Start < 0 || w.Start > 0xFFFF {
			bad(f+".window.start", "%d is outside 0..65535", w.Start)
		}
		if w.Count < 1 || w.Start+w.Count > 0x10000 {
			bad(f+".window.count", "%d: the window needs 1 or more registers and must end by 65535", w.Count)
		}
	}
	cm := p.Commit
	if cm == nil {
		bad(f+".commit", "missing: the write that commits the image, for example {table: holding, address: 9000}")
		return
	}
	if cm.Table == "" {
		cm.Table = "holding"
	}
	if !slices.Contains([]string{"holding", "coils"}, cm.Table) {
		bad(f+".commit.table", "%q is not one of holding, coils", cm.Table)
	}
	switch {
	case cm.Address == nil:
		bad(f+".commit.address", "missing: the register or coil whose write commits the image")
	case *cm.Address < 0 || *cm.Address > 0xFFFF:
		bad(f+".commit.address", "%d is outside 0..65535", *cm.Address)
	case p.Window != nil && cm.Table == "holding" && *cm.Address >= p.Window.Start && *cm.Address < p.Window.Start+p.Window.Count:
		bad(f+".commit.address", "%d lies inside the window; the commit must be a write of its own", *cm.Address)
	}
}
