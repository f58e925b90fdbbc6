package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/batstat/batstat/store"
)

// scratchCount opens a scratch copy of path, checks that writing to it works and that
// Close removes it, and returns how many answered messages the copy held.
func scratchCount(t *testing.T, path string, w store.Wait) (int64, *store.SnapshotInfo) {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	db, err := store.OpenScratch(context.Background(), path, store.Options{}, w)
	if err != nil {
		t.Fatalf("OpenScratch(%s): %v", path, err)
	}
	var n int64
	if err := db.QueryRow(`SELECT count(*) FROM message_status WHERE deliverystatus IS NOT NULL`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM status_checks`); err != nil {
		t.Errorf("the scratch copy refused a write: %v", err)
	}
	from := db.FromSnapshot
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("Close left %d entries in TMPDIR, want the copy removed", len(left))
	}
	return n, from
}

// A scratch copy holds what the file holds, takes writes, and leaves the file as it was;
// while a writer holds the file it copies the writer's snapshot instead.
func TestOpenScratch(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	w := startRun(t, db, "spring", 300)
	if err := w.answer(w.ids[:120]); err != nil {
		t.Fatal(err)
	}
	st, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.answer(w.ids[120:200]); err != nil {
		t.Fatal(err)
	}
	w.batch.Close()
	db.Close()
	path := db.Path
	before := fileState(t, path)

	if n, from := scratchCount(t, path, store.Wait{}); n != 200 || from != nil {
		t.Errorf("scratch copy of a free file: %d answered (snapshot %v), want 200 from the file", n, from)
	}
	if after := fileState(t, path); after != before {
		t.Errorf("the scratch copy changed the file: %s, was %s", after, before)
	}

	_, release := holdFile(t, path)
	if n, from := scratchCount(t, path, store.Wait{}); n != 120 || from == nil || from.Path != st.Path {
		t.Errorf("scratch copy of a held file: %d answered (snapshot %v), want 120 from %s", n, from, st.Path)
	}
	if err := os.Remove(st.Path); err != nil {
		t.Fatal(err)
	}
	_, err = store.OpenScratch(ctx, path, store.Options{}, store.Wait{Timeout: 100 * time.Millisecond})
	var le *store.LockedError
	if !errors.As(err, &le) || le.Waited != 100*time.Millisecond {
		t.Errorf("OpenScratch of a held file without a snapshot = %v, want a LockedError after 100ms", err)
	}
	release()
}

// A path with no file gives an empty database, and creates nothing there.
func TestOpenScratchOfNoFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.duckdb")
	if n, _ := scratchCount(t, path, store.Wait{}); n != 0 {
		t.Errorf("scratch of no file holds %d answers", n)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenScratch created %s (%v)", path, err)
	}
}

// A file of an older schema is copied as it is and the copy upgraded, not the file.
func TestOpenScratchDoesNotUpgradeTheFile(t *testing.T) {
	path := oldFile(t, 2)
	before := fileState(t, path)
	scratchCount(t, path, store.Wait{})
	if after := fileState(t, path); after != before {
		t.Error("OpenScratch upgraded the file itself")
	}
}
