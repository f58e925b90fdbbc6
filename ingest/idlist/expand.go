package idlist

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Expand turns FILE arguments into the names to Open, in order. "-" (stdin) stays "-". A
// name without glob characters (*, ? or [) is kept as it is: whether it exists is Open's
// to say, with the other file errors. A pattern is expanded with filepath.Glob, its
// matches sorted; directories among the matches are left out ("data/*" means the files in
// data). A pattern that matches no file is an error naming it, unless a file has exactly
// that name (a file may be called "a[1].csv"), so a typo in a cron job fails loudly
// rather than fetching nothing. Duplicates are kept: the caller asked for them.
func Expand(args []string) ([]string, error) {
	var names []string
	for _, arg := range args {
		if arg == "-" || !strings.ContainsAny(arg, "*?[") {
			names = append(names, arg)
			continue
		}
		matches, globErr := filepath.Glob(arg)
		n := len(names)
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && fi.IsDir() {
				continue
			}
			names = append(names, m)
		}
		if len(names) > n {
			slices.Sort(names[n:])
			continue
		}
		if _, err := os.Lstat(arg); err == nil {
			names = append(names, arg)
			continue
		}
		if globErr != nil {
			return nil, fmt.Errorf("%s: %w", arg, globErr)
		}
		return nil, fmt.Errorf("%s: no files match", arg)
	}
	return names, nil
}
