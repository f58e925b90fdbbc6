package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// inTx commits what fn did when it succeeds and takes it back when it fails, also when
// the context was cancelled on the way: the connection is then out of the transaction and
// takes the next one.
func TestInTx(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "tx.duckdb"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	boom := errors.New("boom")
	tests := []struct {
		key     string
		cancel  bool // cancel the context inside fn, after the write
		fnErr   error
		wantErr error
		kept    bool
	}{
		{"ok", false, nil, nil, true},
		{"failed", false, boom, boom, false},
		{"cancelled", true, boom, boom, false},
		{"cancelled-commit", true, nil, context.Canceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			err := inTx(ctx, conn, func() error {
				if err := setMeta(ctx, conn, tt.key, "v"); err != nil {
					return err
				}
				if tt.cancel {
					cancel()
				}
				return tt.fnErr
			})
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("inTx = %v, want %v", err, tt.wantErr)
			}
			_, kept, err := getMeta(context.Background(), conn, tt.key)
			if err != nil || kept != tt.kept {
				t.Errorf("after inTx, the write is kept = %v (%v), want %v", kept, err, tt.kept)
			}
			// Still inside a transaction, BEGIN would fail.
			if err := inTx(context.Background(), conn, func() error { return nil }); err != nil {
				t.Errorf("the next transaction on the connection: %v", err)
			}
		})
	}
}
