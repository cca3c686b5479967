package audit

import (
	"bufio"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// hashLine is the chain hash of one record: SHA-256 of its bytes without the newline.
func hashLine(line []byte) [32]byte { return sha256.Sum256(line) }

// lastRecord streams a segment and returns its last parseable record.
func lastRecord(s Segment) (seq uint64, hash [32]byte, found bool, err error) {
	rc, err := s.Open()
	if err != nil {
		return 0, hash, false, err
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if n, ok := lineSeq(sc.Bytes()); ok {
			seq, hash, found = n, hashLine(sc.Bytes()), true
		}
	}
	return seq, hash, found, sc.Err()
}

// compressLoop gzips rotated segments in the background; the original is
// removed only once the compressed copy is durable.
func (l *Log) compressLoop() {
	defer l.wg.Done()
	for {
		select {
		case <-l.stop:
			return
		case path := <-l.compress:
			if err := compressFile(path); err != nil {
				l.opts.Log.Error("audit: compressing a rotated segment", "segment", filepath.Base(path), "err", err)
			}
		}
	}
}

func compressFile(path string) error {
	in, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, gzErr := os.Stat(path + gzExt); gzErr == nil {
			return nil // queued twice and already done
		}
	}
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := path + gzExt + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path+gzExt)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return os.Remove(path)
}

// retain deletes rotated segments older than RetainFor whose records have all
// been exported, and records what it deleted.
func (l *Log) retain() {
	segs, err := Segments(l.dir)
	if err != nil || len(segs) < 2 {
		return
	}
	protected := ^uint64(0)
	if l.opts.Protected != nil {
		protected = l.opts.Protected()
	}
	cutoff := l.opts.Now().Add(-l.opts.RetainFor)
	for i := 0; i < len(segs)-1; i++ {
		s, next := segs[i], segs[i+1]
		if !s.Compressed {
			break
		}
		st, err := os.Stat(s.Path)
		if err != nil || st.ModTime().After(cutoff) {
			break
		}
		lastSeq := next.First - 1
		if lastSeq >= protected {
			l.opts.Log.Warn("audit: segment past retention kept: not exported yet", "segment", filepath.Base(s.Path))
			break
		}
		if err := os.Remove(s.Path); err != nil {
			l.opts.Log.Error("audit: retention", "err", err)
			break
		}
		l.Enqueue(&Record{Type: Retention, Unit: -1, Func: -1, Sub: -1,
			Detail: fmt.Sprintf("deleted segment %s (records %d..%d) older than %v, all exported", filepath.Base(s.Path), s.First, lastSeq, l.opts.RetainFor)})
	}
}

// KeyID names a checkpoint key: the first 8 bytes of SHA-256 of the public key, in hex.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// LoadOrCreateKey reads the checkpoint signing key, generating it (mode 0600)
// at first start. created reports a new key.
func LoadOrCreateKey(path string) (key ed25519.PrivateKey, created bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, false, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, false, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, err
		}
		if err := writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, false, fmt.Errorf("audit: writing key %s: %w", path, err)
		}
		return priv, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("audit: reading key: %w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("audit: key %s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, false, fmt.Errorf("audit: %s is not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, false, fmt.Errorf("audit: %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, false, fmt.Errorf("audit: %s is not an ed25519 key", path)
	}
	return priv, false, nil
}

// PublicKeyOf reads the signing key at path and returns its public half; it
// never creates a key.
func PublicKeyOf(path string) (ed25519.PublicKey, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("audit: no signing key at %s (it is generated at first start): %w", path, err)
	}
	k, _, err := LoadOrCreateKey(path)
	if err != nil {
		return nil, err
	}
	return k.Public().(ed25519.PublicKey), nil
}

// PublicKeyPEM encodes a checkpoint public key for `brana audit pubkey`.
func PublicKeyPEM(pub ed25519.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePublicKeyPEM reads what PublicKeyPEM wrote.
func ParsePublicKeyPEM(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("audit: not a PEM public key")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("audit: not an ed25519 public key")
	}
	return pub, nil
}
