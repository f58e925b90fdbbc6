// Package outfile writes batstat's output files (reports, query results, exports) so that
// a failed or interrupted write never leaves a half-written file, and refuses an output
// that would replace the database or a file kept beside it.
//
// An output is written under a temporary name in the folder of the file it replaces and
// renamed over it only once it is whole: a full disk, a failing query or a signal leaves
// the old file as it was and no temporary file behind. The rename happens in the target's
// own folder, so it is atomic and needs no room for a second copy elsewhere. A target that
// is a symbolic link is resolved first: the link stays and the file it names is replaced.
// A target that exists but is not a regular file (a terminal, a pipe, /dev/null) cannot be
// replaced by a rename, nor should it be: it is written in place.
//
// google/renameio does the rename part for regular files, but it builds only on Unix, it
// writes through its own handle while DuckDB's COPY opens its file by name, and it makes
// no directories; this package does those three and the refusal of the database's files.
package outfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tempPrefix starts the name of every temporary file and folder: hidden on Unix, and
// named so that one left by a killed process says where it comes from. The target's name
// follows, so that its extensions (.csv.gz) still say what the file is.
const tempPrefix = ".batstat-"

// File is an output file being written. Write to it, then Commit; Abort (deferred) throws
// away an output that was not committed. A File is not safe for concurrent use.
type File struct {
	target string   // the file the output replaces, symbolic links resolved
	tmp    string   // the temporary file; "" when the target is written in place
	f      *os.File // nil once closed
	mode   fs.FileMode
	chmod  bool // the target existed: its mode is given to the new file
	done   bool
}

// Create starts an output that will replace path (or create it). The target's folder
// must exist. A directory is refused.
func Create(path string) (*File, error) {
	target, err := resolve(path)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", path, err)
	}
	fi, err := os.Stat(target)
	switch {
	case err == nil && fi.IsDir():
		return nil, fmt.Errorf("output %s: is a directory", path)
	case err == nil && !fi.Mode().IsRegular():
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return nil, fmt.Errorf("output: %w", err)
		}
		return &File{target: target, f: f}, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("output: %w", err)
	}
	out := &File{target: target}
	if err == nil {
		out.mode, out.chmod = fi.Mode().Perm(), true
	}
	// 0666 and the umask, as os.Create would make the file; an existing file's mode is
	// restored at Commit.
	out.f, out.tmp, err = createTemp(filepath.Dir(target), filepath.Base(target), func(name string) (*os.File, error) {
		return os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	})
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", path, err)
	}
	return out, nil
}

// Write writes to the output.
func (f *File) Write(p []byte) (int, error) {
	if f.f == nil {
		return 0, fmt.Errorf("output %s: %w", f.target, os.ErrClosed)
	}
	return f.f.Write(p)
}

// Target is the file the output replaces, symbolic links resolved.
func (f *File) Target() string { return f.target }

// TempName closes the File's own handle and returns the name of its temporary file, for a
// writer that opens its file by name (DuckDB's COPY); ok is false when the target is
// written in place, which such a writer must not open by name: it could replace it (a
// device, a pipe), so it writes a file of its own to be copied through Write instead.
func (f *File) TempName() (name string, ok bool) {
	if f.tmp == "" {
		return "", false
	}
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
	return f.tmp, true
}

// Commit makes the output the target's content: the temporary file is synced to disk,
// given the old file's mode and renamed over the target. On error the target is left as
// it was and the temporary file is removed.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("output %s: %w", f.target, os.ErrClosed)
	}
	f.done = true
	if f.tmp == "" {
		if err := f.f.Close(); err != nil {
			return fmt.Errorf("output %s: %w", f.target, err)
		}
		return nil
	}
	err := f.sync()
	if err == nil && f.chmod {
		err = os.Chmod(f.tmp, f.mode)
	}
	if err == nil {
		err = os.Rename(f.tmp, f.target)
	}
	if err != nil {
		os.Remove(f.tmp)
		return fmt.Errorf("output %s: %w", f.target, err)
	}
	return nil
}

// sync flushes the temporary file to disk and closes it, so that a crash after the rename
// cannot leave an empty file where the old one was.
func (f *File) sync() error {
	h := f.f
	f.f = nil
	if h == nil {
		// Written by name: open it again to sync what the writer left.
		var err error
		if h, err = os.Open(f.tmp); err != nil {
			return err
		}
	}
	err := h.Sync()
	return errors.Join(err, h.Close())
}

// Abort throws the output away: the temporary file is removed and the target left as it
// was. It does nothing after Commit, so it can be deferred. A target written in place
// keeps what was written.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
	if f.tmp != "" {
		os.Remove(f.tmp)
	}
}

// Dir is an output directory being written (a partitioned export): a temporary folder
// beside the target that Commit renames into place.
type Dir struct {
	target string
	tmp    string
	done   bool
}

// CreateDir starts an output directory at path, which must not exist or be an empty
// directory: a writer that fills a folder would mix its files with those already there.
// The error of a folder that holds files is a *NotEmptyError.
func CreateDir(path string) (*Dir, error) {
	target, err := resolve(path)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", path, err)
	}
	if err := CheckDir(target); err != nil {
		return nil, err
	}
	_, tmp, err := createTemp(filepath.Dir(target), filepath.Base(target), func(name string) (*os.File, error) {
		return nil, os.Mkdir(name, 0o777)
	})
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", path, err)
	}
	return &Dir{target: target, tmp: tmp}, nil
}

// CheckDir reports whether path can become an output directory: it does not exist, or it
// is an empty directory.
func CheckDir(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("output: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("output %s: exists and is not a directory", path)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	if len(entries) > 0 {
		return &NotEmptyError{Path: path}
	}
	return nil
}

// NotEmptyError is an output directory that already holds files.
type NotEmptyError struct{ Path string }

func (e *NotEmptyError) Error() string {
	return fmt.Sprintf("output directory %s already holds files; remove them or choose a new directory", e.Path)
}

// Name is the temporary folder to fill.
func (d *Dir) Name() string { return d.tmp }

// Commit renames the filled temporary folder to the target. An empty directory at the
// target is replaced; one that got files meanwhile is left alone and Commit fails.
func (d *Dir) Commit() error {
	if d.done {
		return fmt.Errorf("output %s: %w", d.target, os.ErrClosed)
	}
	d.done = true
	if fi, err := os.Lstat(d.target); err == nil && fi.IsDir() {
		// os.Remove removes only an empty directory.
		if err := os.Remove(d.target); err != nil {
			os.RemoveAll(d.tmp)
			return fmt.Errorf("output %s: %w", d.target, err)
		}
	}
	if err := os.Rename(d.tmp, d.target); err != nil {
		os.RemoveAll(d.tmp)
		return fmt.Errorf("output %s: %w", d.target, err)
	}
	return nil
}

// Abort removes the temporary folder and all it holds. It does nothing after Commit.
func (d *Dir) Abort() {
	if d.done {
		return
	}
	d.done = true
	os.RemoveAll(d.tmp)
}

// tempBase is base shortened, if need be, so that a temporary name stays within the 255
// bytes a file name may have; the extensions are kept.
func tempBase(base string) string {
	const room = 255 - len(tempPrefix) - 12 - 1
	if len(base) <= room {
		return base
	}
	ext := base[len(base)-min(len(base), 32):]
	if i := strings.IndexByte(ext, '.'); i >= 0 {
		return ext[i:]
	}
	return "out"
}

// createTemp makes a new file or folder (with mk) named tempPrefix+random+"-"+base in dir.
func createTemp(dir, base string, mk func(name string) (*os.File, error)) (*os.File, string, error) {
	for range 100 {
		var b [6]byte
		rand.Read(b[:])
		name := filepath.Join(dir, tempPrefix+hex.EncodeToString(b[:])+"-"+tempBase(base))
		f, err := mk(name)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			// The temporary name would only puzzle: say what failed in which folder.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, "", fmt.Errorf("cannot create a file in %s: %w", dir, err)
		}
		return f, name, nil
	}
	return nil, "", fmt.Errorf("no unused temporary name in %s", dir)
}
