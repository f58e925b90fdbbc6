//go:build !unix

package webhook

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir creates dir's lock file. Without flock nothing keeps a second receiver out:
// run one receiver per spool directory.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("spool %s: lock: %w", dir, err)
	}
	return f, nil
}
