package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// OpenScratch opens a private, writable copy of the database at path, for work whose writes
// must not reach the file: a dry run loads its inputs into the copy exactly as a run would,
// and counts what it would ask. The copy lives in a directory of its own in the OS temp
// directory ($TMPDIR), which Close removes; the file at path is never written, not even to
// bring its schema up to date (the copy is upgraded instead).
//
// The copy is taken under DuckDB's read lock, so no writer changes the file while it is
// copied. When a writer holds the file, the newest snapshot it published (see Snapshot) is
// copied instead, and the copy's FromSnapshot says so; when there is none either, the open
// waits as w says, then fails with a *LockedError. A path that does not exist gives an
// empty database, as a first run would meet.
func OpenScratch(ctx context.Context, path string, opts Options, w Wait) (*DB, error) {
	dir, err := os.MkdirTemp("", "batstat-scratch-")
	if err != nil {
		return nil, fmt.Errorf("scratch copy of %s: %w", path, err)
	}
	copyPath := filepath.Join(dir, filepath.Base(path))
	var from *SnapshotInfo
	err = w.Do(ctx, func() error {
		from = nil
		err := copyLocked(ctx, path, copyPath)
		if err == nil || !IsLocked(err) {
			return err
		}
		snap := SnapshotPath(path)
		fi, serr := os.Stat(snap)
		if serr != nil {
			return err // no snapshot: wait for the file
		}
		if serr := copyFiles(copyPath, snap); serr != nil {
			return fmt.Errorf("scratch copy of %s: %w", snap, serr)
		}
		from = &SnapshotInfo{Path: snap, Taken: fi.ModTime()}
		return nil
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	opts.ReadOnly = false
	db, err := Open(ctx, copyPath, opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("scratch copy of %s: %w", path, err)
	}
	db.scratchDir, db.FromSnapshot = dir, from
	return db, nil
}

// copyLocked copies the database at path (with its WAL, if any) to dst while holding it
// open read-only. A path that does not exist copies nothing.
func copyLocked(ctx context.Context, path, dst string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// The private open: a read-only Open would bring an older schema up to date in place.
	db, err := open(ctx, path, Options{ReadOnly: true})
	if err != nil {
		return err
	}
	cerr := copyFiles(dst, path, path+".wal")
	if err := db.Close(); cerr == nil && err != nil {
		cerr = fmt.Errorf("close %s: %w", path, err)
	}
	if cerr != nil {
		return fmt.Errorf("scratch copy of %s: %w", path, cerr)
	}
	return nil
}

// copyFiles copies src[0] to dst and each further src (a WAL) to dst with the same
// extension; a further src that does not exist is skipped. Every source is opened before
// any is closed: DuckDB's lock on the file is a POSIX record lock, which the process loses
// on closing any descriptor of the file, so the copy holds all of them until it is done.
func copyFiles(dst string, src ...string) error {
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for i, name := range src {
		f, err := os.Open(name)
		if i > 0 && errors.Is(err, fs.ErrNotExist) {
			files = append(files, nil)
			continue
		}
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	for i, f := range files {
		if f == nil {
			continue
		}
		to := dst
		if i > 0 {
			to += filepath.Ext(src[i])
		}
		if err := copyFile(to, f); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(dst string, src *os.File) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, src)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
