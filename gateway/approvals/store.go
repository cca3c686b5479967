package approvals

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketRequests = []byte("requests")

// store keeps requests as JSON in one bbolt bucket, keyed by id. Every put is
// its own transaction, synced to disk before it returns.
type store struct {
	db *bolt.DB
}

func openStore(path string) (*store, error) {
	if path == "" {
		return nil, fmt.Errorf("approvals: no store file configured")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	// A second gateway on the same file fails at once instead of waiting.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("approvals: opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketRequests)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("approvals: %s: %w", path, err)
	}
	return &store{db: db}, nil
}

// load returns every stored request.
func (s *store) load() ([]Request, error) {
	var out []Request
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRequests).ForEach(func(k, v []byte) error {
			var r Request
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("request %s: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("approvals: loading store: %w", err)
	}
	return out, nil
}

func (s *store) put(rs ...*Request) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRequests)
		for _, r := range rs {
			v, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(r.ID), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("approvals: storing: %w", err)
	}
	return nil
}

func (s *store) close() error { return s.db.Close() }
