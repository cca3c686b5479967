package config

import (
	"strings"
	"testing"
)

// goodFirmware is good plus a firmware section and a program profile on
// target plc (lines 18..21).
var goodFirmware = strings.Replace(good, "    address: 127.0.0.1:15020\n", `    address: 127.0.0.1:15020
    program:
      file: 1
      window: {table: holding, start: 2000, count: 500}
      commit: {table: holding, address: 9000}
`, 1) + `firmware:
  manifest: firmware/MANIFEST
  keys: [keys/operator.pub]
`

func TestFirmwareGood(t *testing.T) {
	c, err := Parse("/etc/brana/brana.yaml", []byte(goodFirmware))
	if err != nil {
		t.Fatal(err)
	}
	fw := c.Firmware
	if fw.Manifest != "/etc/brana/firmware/MANIFEST" || len(fw.Keys) != 1 || fw.Keys[0] != "/etc/brana/keys/operator.pub" {
		t.Errorf("paths not relative to the config file: %+v", fw)
	}
	if fw.MaxImage != DefaultMaxImage {
		t.Errorf("max_image default = %d", fw.MaxImage)
	}
	p := c.Targets[0].Program
	if p == nil || p.File != 1 || p.Window.Start != 2000 || p.Window.Count != 500 || *p.Commit.Address != 9000 || p.Commit.Table != "holding" {
		t.Fatalf("program = %+v", p)
	}

	// Without firmware the config is as before.
	c, err = Parse("brana.yaml", []byte(good))
	if err != nil || c.Firmware.Enabled() {
		t.Fatalf("no firmware section: %v, %+v", err, c.Firmware)
	}
}

// Each case changes one line of goodFirmware and expects the file, line and
// field in the error.
func TestFirmwareErrors(t *testing.T) {
	tests := []struct {
		name     string
		from, to string
		want     []string
	}{
		{"fail/no-keys", "  keys: [keys/operator.pub]\n", "", []string{"brana.yaml:", "firmware.keys: missing"}},
		{"fail/no-manifest", "  manifest: firmware/MANIFEST\n", "", []string{"brana.yaml:", "firmware.manifest: missing", "targets[0].program: needs firmware.manifest"}},
		{"fail/max-image", "  keys: [keys/operator.pub]\n", "  keys: [keys/operator.pub]\n  max_image: 8GiB\n", []string{"brana.yaml:40:", "firmware.max_image"}},
		{"fail/max-image-syntax", "  keys: [keys/operator.pub]\n", "  keys: [keys/operator.pub]\n  max_image: big\n", []string{"brana.yaml:40:", `"big" is not a size`}},
		{"fail/unknown-key", "      file: 1\n", "      file: 1\n      fc: 21\n", []string{"brana.yaml:20:", `unknown key "fc"`}},
		{"fail/file-number", "      file: 1\n", "      file: 70000\n", []string{"brana.yaml:19:", "targets[0].program.file", "outside 1..65535"}},
		{"fail/nothing-carries", "      file: 1\n      window: {table: holding, start: 2000, count: 500}\n", "      file: 0\n",
			[]string{"brana.yaml:18:", "targets[0].program: names neither file"}},
		{"fail/window-table", "{table: holding, start: 2000", "{table: coils, start: 2000", []string{"brana.yaml:20:", "targets[0].program.window.table", `"coils"`}},
		{"fail/window-count", "count: 500}", "count: 0}", []string{"brana.yaml:20:", "targets[0].program.window.count"}},
		{"fail/window-past-end", "start: 2000, count: 500}", "start: 65500, count: 500}", []string{"targets[0].program.window.count", "must end by 65535"}},
		{"fail/no-commit", "      commit: {table: holding, address: 9000}\n", "", []string{"brana.yaml:18:", "targets[0].program.commit: missing"}},
		{"fail/commit-address-missing", "{table: holding, address: 9000}", "{table: holding}", []string{"brana.yaml:21:", "targets[0].program.commit.address: missing"}},
		{"fail/commit-address-range", "address: 9000}", "address: 70000}", []string{"brana.yaml:21:", "targets[0].program.commit.address", "outside 0..65535"}},
		{"fail/commit-in-window", "address: 9000}", "address: 2100}", []string{"brana.yaml:21:", "lies inside the window"}},
		{"fail/commit-table", "{table: holding, address: 9000}", "{table: input, address: 9000}", []string{"brana.yaml:21:", "targets[0].program.commit.table", `"input"`}},
		{"ok/program-on-a-serial-target", "    device: /dev/ttyUSB0\n", "    device: /dev/ttyUSB0\n    program: {file: 1, commit: {address: 1}}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(goodFirmware, tt.from) {
				t.Fatalf("test bug: %q not in config", tt.from)
			}
			_, err := Parse("brana.yaml", []byte(strings.Replace(goodFirmware, tt.from, tt.to, 1)))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Parse succeeded; want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestProgramOnlyForModbus(t *testing.T) {
	text := strings.Replace(goodFirmware, "targets:\n", `targets:
  - name: opc
    protocol: opcua
    endpoint: opc.tcp://127.0.0.1:4840
    program: {file: 1, commit: {address: 1}}
`, 1)
	_, err := Parse("brana.yaml", []byte(text))
	if err == nil || !strings.Contains(err.Error(), "brana.yaml:18: targets[0].program: only for modbus targets") {
		t.Fatalf("err = %v", err)
	}
}
