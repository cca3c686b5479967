package opcua

import (
	"os"
	"testing"
	"time"
)

func TestZZStuck(t *testing.T) {
	b, _ := os.ReadFile("/tmp/stuck2.bin")
	start := time.Now()
	v, err := DecodeResponse(b)
	t.Logf("%v %T %v", time.Since(start), v, err)
	if err == nil {
		start = time.Now()
		enc, err := EncodeResponse(nil, v)
		t.Logf("enc %v %d %v", time.Since(start), len(enc), err)
	}
}
