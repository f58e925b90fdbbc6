package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/batstat/batstat/store"
)

// printVersion writes batstat's version and that of the DuckDB it links, which decides
// which DuckDB CLI can open its files.
func printVersion(ctx context.Context, w io.Writer) error {
	duck, err := store.DuckDBVersion(ctx)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "batstat %s\nDuckDB %s\n", version(), duck)
	return err
}

// version is batstat's version as the Go toolchain recorded it: the module version of an
// installed release, else the commit it was built from ("+dirty" with uncommitted
// changes), else "devel".
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return "devel"
	}
	return "devel " + rev[:min(len(rev), 12)] + dirty
}
