package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SnapshotPath is where the snapshot of the database at path is published: beside it,
// named path + ".snapshot".
func SnapshotPath(path string) string { return path + snapshotSuffix }

const snapshotSuffix = ".snapshot"

// snapshotTempPath is where a snapshot is written before it is renamed over the last one.
// There is one such name per database: one writer at a time, one snapshot at a time.
func snapshotTempPath(path string) string { return SnapshotPath(path) + ".tmp" }

// SnapshotStats say what publishing a snapshot cost.
type SnapshotStats struct {
	Path  string // where it was published
	Bytes int64
	// Taken is the instant of the state it holds; it is also the file's modification time,
	// which is how readers learn it.
	Taken time.Time
	// Held is how long writes to the database were held off: the checkpoint and the copy.
	// Checkpoint is the checkpoint's part of it.
	Held, Checkpoint time.Duration
	// Took is the whole publication, the fsyncs and the rename included.
	Took time.Duration
}

// Snapshot publishes a copy of the database as of its last commit at SnapshotPath(db.Path),
// for readers while this process holds the file (see OpenReader). The copy is written to a
// temp file in the same directory, fsynced, and renamed over the last snapshot, so that a
// reader opens either the old snapshot or the new one, whole, and a crash at any moment
// leaves the last snapshot as it was (and a temp file, which the next read-write Open
// removes).
//
// The copy is DuckDB's own file: a CHECKPOINT moves every commit from the WAL into the
// file, and the file is copied while no write can run (every write method of this package
// waits for writeMu, which Snapshot holds), so the copy holds exactly the commits made
// before it, with the same tables, view, macros and sequence, and needs no upgrade. The
// other ways DuckDB offers were measured and not taken (BENCHMARKS.md, "Snapshots"): ATTACH
// with COPY FROM DATABASE holds no write off (it reads in one transaction), but decodes and
// encodes every row again, a CPU cost that grows with the file at every snapshot, and
// rebuilds the catalog entry by entry; EXPORT DATABASE costs as much and gives no database.
// Writes wait for the checkpoint (work DuckDB would do at its next automatic checkpoint)
// and the copy only; the fsync comes after.
func (db *DB) Snapshot(ctx context.Context) (SnapshotStats, error) {
	db.snapMu.Lock()
	defer db.snapMu.Unlock()
	start := time.Now()
	st := SnapshotStats{Path: SnapshotPath(db.Path)}
	if err := db.publishSnapshot(ctx, &st); err != nil {
		return st, fmt.Errorf("snapshot of %s: %w", db.Path, err)
	}
	st.Took = time.Since(start)
	return st, nil
}

func (db *DB) publishSnapshot(ctx context.Context, st *SnapshotStats) (err error) {
	tmp := snapshotTempPath(db.Path)
	perm := fs.FileMode(0o644)
	if fi, err := os.Stat(db.Path); err == nil {
		perm = fi.Mode().Perm()
	}
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	defer func() {
		if out != nil {
			out.Close()
		}
		if err != nil {
			os.Remove(tmp)
		}
	}()
	changes, err := db.copyCheckpointed(ctx, out, st)
	if err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	err, out = out.Close(), nil
	if err != nil {
		return err
	}
	if err := os.Chtimes(tmp, st.Taken, st.Taken); err != nil {
		return err
	}
	if err := os.Rename(tmp, st.Path); err != nil {
		return err
	}
	db.published.Store(changes)
	// The rename is durable once the directory is synced; until then a crash may leave the
	// last snapshot, which is whole too.
	return syncDir(filepath.Dir(st.Path))
}

// copyCheckpointed checkpoints the database and copies its file to out, while no write
// can run. It returns the count of writes the copy holds.
func (db *DB) copyCheckpointed(ctx context.Context, out *os.File, st *SnapshotStats) (changes int64, err error) {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	held := time.Now()
	defer func() { st.Held = time.Since(held) }()
	if _, err := db.ExecContext(ctx, "CHECKPOINT"); err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	st.Taken = time.Now()
	st.Checkpoint = st.Taken.Sub(held)
	// With no write running, the checkpoint leaves no WAL (DuckDB removes it): the file
	// alone holds every commit. Anything else, and the copy would miss commits.
	if fi, err := os.Stat(db.Path + ".wal"); err == nil && fi.Size() > 0 {
		return 0, fmt.Errorf("the checkpoint left %d bytes in %s.wal", fi.Size(), db.Path)
	}
	src, err := db.file()
	if err != nil {
		return 0, err
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	// *os.File to *os.File: copy_file_range on Linux, the copy stays in the kernel.
	n, err := io.Copy(out, src)
	if err != nil {
		return 0, fmt.Errorf("copy: %w", err)
	}
	st.Bytes = n
	return db.changes.Load(), nil
}

// file returns this process's descriptor of the database file, opened on first use and
// kept until Close. It must never be closed while DuckDB has the file open: DuckDB locks
// the file with POSIX (fcntl) locks, and closing any descriptor of a file drops every
// such lock the process holds on it, which would let another process open the database
// beside this one.
func (db *DB) file() (*os.File, error) {
	if db.fd == nil {
		f, err := os.Open(db.Path)
		if err != nil {
			return nil, err
		}
		db.fd = f
	}
	return db.fd, nil
}

// Changed says whether the database was written to since the last snapshot was published
// (or since it was opened, when none was).
func (db *DB) Changed() bool { return db.changes.Load() != db.published.Load() }

// PublishSnapshots publishes a snapshot every interval while the database keeps changing
// (see Changed), calling published with what each cost, until the returned stop is called.
// stop waits for a snapshot under way to be published.
func (db *DB) PublishSnapshots(every time.Duration, published func(SnapshotStats, error)) (stop func()) {
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			if db.Changed() {
				published(db.Snapshot(context.Background()))
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
}

// SnapshotInfo describes a snapshot that OpenReader opened instead of the database.
type SnapshotInfo struct {
	Path string
	// Taken is the instant of the state the snapshot holds.
	Taken time.Time
	// Run is the run in progress in the snapshot, else its latest run; nil when it has no
	// run.
	Run *RunProgress
}

// RunProgress is how far a run had got, from its runs row.
type RunProgress struct {
	RunID   int64
	Outcome string // OutcomeRunning for a run in progress
	// Loading says the run is still loading its inputs: it has asked nothing yet, and
	// Requested is not known.
	Loading bool
	// Requested is how many messages the run set out to ask; Asked how many of them it has
	// asked: answered, or failed after their retries.
	Requested, Asked int64
}

// OpenReader opens the database at path read-only for reading, as report, query and export
// do. When another process holds the file (a writer: readers share it), it opens the
// newest snapshot of it instead (see Snapshot), and says so in the DB's FromSnapshot; when
// there is no snapshot either, it waits as w says, trying both again, and fails with a
// *LockedError when the wait runs out.
//
// A snapshot is opened as it is: never upgraded, never written to; so is a path named like
// one (PATH.snapshot), which is read as a snapshot, with its FromSnapshot.
func OpenReader(ctx context.Context, path string, opts Options, w Wait) (*DB, error) {
	opts.ReadOnly = true
	var db *DB
	if strings.HasSuffix(path, snapshotSuffix) {
		err := w.Do(ctx, func() error {
			var err error
			db, err = openSnapshot(ctx, path, opts)
			return err
		})
		return db, err
	}
	err := w.Do(ctx, func() error {
		var err error
		db, err = Open(ctx, path, opts)
		if err == nil || !IsLocked(err) {
			return err
		}
		snap, serr := openSnapshot(ctx, SnapshotPath(path), opts)
		switch {
		case serr == nil:
			db = snap
			return nil
		case errors.Is(serr, fs.ErrNotExist):
			return err
		}
		return serr
	})
	if err != nil {
		return nil, err
	}
	return db, nil
}

// openSnapshot opens the snapshot at snap read-only; an error satisfying
// errors.Is(err, fs.ErrNotExist) says there is none.
func openSnapshot(ctx context.Context, snap string, opts Options) (*DB, error) {
	fi, err := os.Stat(snap)
	if err != nil {
		return nil, err
	}
	// The private open: no upgrade, which would write.
	db, err := open(ctx, snap, opts)
	if err != nil {
		return nil, err
	}
	info := &SnapshotInfo{Path: snap, Taken: fi.ModTime()}
	if version, ours, err := schemaVersion(ctx, db); err != nil || (ours && version < SchemaVersion) {
		db.Close()
		if err == nil {
			err = fmt.Errorf("it has schema version %d, older than this batstat's %d: read it with the batstat that made it", version, SchemaVersion)
		}
		return nil, fmt.Errorf("snapshot %s: %w", snap, err)
	}
	if info.Run, err = latestRun(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("snapshot %s: %w", snap, err)
	}
	db.FromSnapshot = info
	return db, nil
}

// latestRun reads the run in progress, else the latest run; nil when there is none.
func latestRun(ctx context.Context, q querier) (*RunProgress, error) {
	var r RunProgress
	err := q.QueryRowContext(ctx, `
		SELECT run_id, outcome, coalesce(loading, false), requested, answered + failed FROM runs
		ORDER BY outcome = $1 DESC, run_id DESC LIMIT 1`, OutcomeRunning,
	).Scan(&r.RunID, &r.Outcome, &r.Loading, &r.Requested, &r.Asked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read its runs: %w", err)
	}
	return &r, nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
