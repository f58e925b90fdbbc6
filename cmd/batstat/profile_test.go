package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batstat/batstat/smsbat/smsbattest"
)

// fetch --cpuprofile and --memprofile write profiles that go tool pprof reads (gzipped
// protocol buffers); a profile path that is the database is refused before anything runs.
func TestFetchProfiles(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.Options{})
	dir := t.TempDir()
	ids := writeIDs(t, dir, "p.csv", 200)
	api := []string{"fetch", "--db", "d.duckdb", "--api-url", srv.URL, "--api-key", smsbattest.DefaultAPIKey, "--rate", "0"}
	r := runCLI(t, dir, "", append(api, "--cpuprofile", "cpu.pprof", "--memprofile", "mem.pprof", ids)...)
	if r.code != 0 {
		t.Fatalf("fetch with profiles = exit %d: %s", r.code, r.stderr)
	}
	for _, name := range []string{"cpu.pprof", "mem.pprof"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 100 || !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
			t.Errorf("%s: %d bytes, want a gzipped profile", name, len(b))
		}
	}
	db := filepath.Join(dir, "d.duckdb")
	before := fileSum(t, db)
	// A dry run is profiled too: its load is what a fetch does before its first request.
	r = runCLI(t, dir, "", append(api, "--dry-run", "--cpuprofile", "dry.pprof", ids)...)
	if r.code != 0 {
		t.Fatalf("dry run with a profile = exit %d: %s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "dry.pprof")); err != nil || !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Errorf("dry run's CPU profile: %d bytes, %v; want a gzipped profile", len(b), err)
	}
	for _, args := range [][]string{
		{"--cpuprofile", "d.duckdb"},
		{"--memprofile", "./d.duckdb.wal"},
		{"--cpuprofile", "x.pprof", "--memprofile", "x.pprof"},
	} {
		r := runCLI(t, dir, "", append(append(api, args...), ids)...)
		if r.code != 2 || !strings.Contains(r.stderr, args[0]) {
			t.Errorf("fetch %v = exit %d, want 2 naming the flag; stderr:\n%s", args, r.code, r.stderr)
		}
	}
	if fileSum(t, db) != before {
		t.Error("a refused profile path changed the database")
	}
}
