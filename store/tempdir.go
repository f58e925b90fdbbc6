package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Readers of one file would share DuckDB's default temp_directory, PATH.tmp, and DuckDB
// names its temp files alike in every process: two readers that spill at once overwrite
// each other's blocks, and read back wrong values or crash. So a read-only open spills to a
// directory of its own, made by MkdirTemp (private, 0700: spilled blocks hold the file's
// rows) in the OS temp directory ($TMPDIR). A writer is alone with its file and keeps the
// default.
//
// Within one process, duckdb-go hands every open of a path the same DuckDB instance, and
// refuses an open whose settings differ from the instance's: the opens of a path share one
// directory, which the last Close removes. Different paths are different instances and need
// different directories.
var readerTempDirs = struct {
	sync.Mutex
	byPath map[string]*readerTempDir
}{byPath: map[string]*readerTempDir{}}

type readerTempDir struct {
	dir   string
	users int
}

// acquireTempDir returns the temp directory of a read-only open of path, made on the first
// open. Each acquire needs a releaseTempDir.
func acquireTempDir(path string) (dir, key string, err error) {
	if key, err = filepath.Abs(path); err != nil {
		return "", "", fmt.Errorf("temp directory for %s: %w", path, err)
	}
	readerTempDirs.Lock()
	defer readerTempDirs.Unlock()
	d := readerTempDirs.byPath[key]
	if d == nil {
		dir, err := os.MkdirTemp("", "batstat-duckdb-")
		if err != nil {
			return "", "", fmt.Errorf("temp directory for %s: %w", path, err)
		}
		d = &readerTempDir{dir: dir}
		readerTempDirs.byPath[key] = d
	}
	d.users++
	return d.dir, key, nil
}

// releaseTempDir ends a use of the directory acquireTempDir returned for key, and removes
// it after the last one, when DuckDB has closed the instance and deleted its temp files.
// Removal is best effort: what is left lies in the OS temp directory.
func releaseTempDir(key string) {
	readerTempDirs.Lock()
	defer readerTempDirs.Unlock()
	d := readerTempDirs.byPath[key]
	if d == nil {
		return
	}
	if d.users--; d.users == 0 {
		delete(readerTempDirs.byPath, key)
		os.RemoveAll(d.dir)
	}
}
