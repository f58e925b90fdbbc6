// Package batstat carries what the binary needs besides code: the sample campaigns that
// `batstat demo` fetches, so the demo runs from any directory with nothing to configure.
// The work itself lives in the packages smsbat, ingest, store and report.
package batstat

import (
	"embed"
	"io/fs"
)

//go:embed testdata/demo/*.csv
var demoFS embed.FS

// DemoCampaigns returns the sample campaign CSVs, file names at the root.
func DemoCampaigns() fs.FS {
	sub, err := fs.Sub(demoFS, "testdata/demo")
	if err != nil {
		panic(err) // the pattern above guarantees the directory
	}
	return sub
}
