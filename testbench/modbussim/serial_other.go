//go:build !linux

package modbussim

import (
	"errors"
	"os"
)

// OpenSerial is only implemented on Linux, where brana's gateways run.
func OpenSerial(path string) (*os.File, error) {
	return nil, errors.New("modbussim: OpenSerial is only supported on linux")
}
