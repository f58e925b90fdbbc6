package outfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Guard refuses outputs that would replace the database or a file kept beside it. The
// zero Guard refuses nothing.
type Guard struct {
	files []guarded
}

type guarded struct {
	path string // resolved: absolute, symbolic links followed
	what string // for the message: "the database", "its write-ahead log", ...
}

// The files beside a database PATH that no output may replace: DuckDB's write-ahead log,
// and the read-only snapshot a long fetch publishes for readers.
var companions = []struct{ suffix, what string }{
	{"", "the database"},
	{".wal", "the write-ahead log of the database"},
	{".snapshot", "the snapshot of the database"},
}

// Database returns a Guard of the database at path and its companions PATH.wal and
// PATH.snapshot. When path is a symbolic link, the companions of both the name given and
// the file it leads to are guarded: DuckDB names its log after the path it was given.
func Database(path string) Guard {
	var g Guard
	seen := map[string]bool{}
	add := func(p, what string) {
		r, err := resolve(p)
		if err != nil || seen[r] {
			return
		}
		seen[r] = true
		g.files = append(g.files, guarded{path: r, what: what})
	}
	real, err := resolve(path)
	for _, c := range companions {
		add(path+c.suffix, c.what)
		if err == nil {
			add(real+c.suffix, c.what)
		}
	}
	return g
}

// ClashError is an output that is one of a Guard's files.
type ClashError struct {
	Output   string // as given
	Database string // the guarded database, as its Guard resolved it
	What     string
}

func (e *ClashError) Error() string {
	return fmt.Sprintf("output %s is %s (%s): writing it would destroy the data; choose another file", e.Output, e.What, e.Database)
}

// Check returns a *ClashError when out is one of g's files, however it is spelled: the
// same file (os.SameFile, so a hard link or a symbolic link to it counts) when both exist,
// else the same folder and name once every symbolic link is followed.
func (g Guard) Check(out string) error {
	if len(g.files) == 0 {
		return nil
	}
	r, err := resolve(out)
	if err != nil {
		return fmt.Errorf("output %s: %w", out, err)
	}
	outInfo, outErr := os.Stat(r)
	for _, f := range g.files {
		same := r == f.path
		if !same && outErr == nil {
			if fi, err := os.Stat(f.path); err == nil {
				same = os.SameFile(outInfo, fi)
			}
		}
		if same {
			return &ClashError{Output: out, Database: g.files[0].path, What: f.what}
		}
	}
	return nil
}

// CheckDir is Check for an output directory that must be new or empty (see CreateDir). A
// directory that holds one of g's files gets a *ClashError, since naming the database says
// more than "not empty"; any other directory with files a *NotEmptyError.
func (g Guard) CheckDir(dir string) error {
	if err := g.Check(dir); err != nil {
		return err
	}
	r, err := resolve(dir)
	if err != nil {
		return fmt.Errorf("output %s: %w", dir, err)
	}
	err = CheckDir(r)
	var ne *NotEmptyError
	if !errors.As(err, &ne) {
		return err
	}
	for _, f := range g.files {
		if rel, err := filepath.Rel(r, f.path); err == nil && filepath.IsLocal(rel) {
			if _, err := os.Lstat(f.path); err == nil {
				return &ClashError{Output: dir, Database: g.files[0].path, What: "a directory that holds " + f.what}
			}
		}
	}
	ne.Path = dir
	return ne
}

// resolve returns path made absolute with every symbolic link followed, in its folders and
// in its last element, even when the link leads to a file that does not exist yet (writing
// through it would create that file).
func resolve(path string) (string, error) {
	p, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	for range 40 { // the limit of links the kernel follows
		dir, err := evalDir(filepath.Dir(p))
		if err != nil {
			return "", err
		}
		p = filepath.Join(dir, filepath.Base(p))
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		link, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(dir, link)
		}
		p = filepath.Clean(link)
	}
	return "", fmt.Errorf("too many levels of symbolic links")
}

// evalDir follows the symbolic links of a folder that exists; the part of it that does not
// exist yet is kept as written.
func evalDir(dir string) (string, error) {
	r, err := filepath.EvalSymlinks(dir)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	parent := filepath.Dir(dir)
	if parent == dir {
		return dir, nil
	}
	rp, err := evalDir(parent)
	if err != nil {
		return "", err
	}
	return filepath.Join(rp, filepath.Base(dir)), nil
}
