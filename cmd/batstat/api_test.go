package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batstat/batstat/smsbat/smsbattest"
)

// A credential that cannot go in an HTTP header is bad usage before any request.
func TestFetchUnsendableCredential(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.Options{})
	dir := t.TempDir()
	ids := writeIDs(t, dir, "camp.csv", 50)
	key := filepath.Join(dir, "key")
	os.WriteFile(key, []byte("test\x1b[0m-key\n"), 0o600)
	for _, args := range [][]string{
		{"--api-key-file", key},
		{"--api-key", "test\x01key"},
		{"--username", "ann", "--password", "pw\x7f"},
	} {
		r := runCLI(t, dir, "", append(append([]string{"fetch", "--db", "c.duckdb", "--api-url", srv.URL}, args...), ids)...)
		if r.code != 2 || !strings.Contains(r.stderr, "control character") {
			t.Errorf("fetch %q = exit %d, stderr %q; want 2 naming the control character", args, r.code, r.stderr)
		}
	}
	if n := srv.Count(); n != 0 {
		t.Errorf("%d requests sent with credentials that cannot be sent", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "c.duckdb")); err == nil {
		t.Errorf("a refused fetch created the database")
	}
}

// An API that cannot be reached at all stops the run within seconds with exit 1, naming
// the URL and why, instead of retrying every message.
func TestFetchUnreachableAPI(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	plain := smsbattest.NewServer(t, smsbattest.Options{})
	tlsToPlain := strings.Replace(plain.URL, "http://", "https://", 1)
	dir := t.TempDir()
	ids := writeIDs(t, dir, "camp.csv", 3000)
	for _, tt := range []struct{ url, why string }{
		{closed, "connection refused"},
		{tlsToPlain, "HTTP response to HTTPS client"},
	} {
		start := time.Now()
		db := filepath.Join(t.TempDir(), "u.duckdb")
		r := runCLI(t, dir, "", "fetch", "--db", db, "--api-url", tt.url, "--api-key", "k", "--no-progress", ids)
		if r.code != 1 || !strings.Contains(r.stderr, "cannot reach the API at "+tt.url) || !strings.Contains(r.stderr, tt.why) {
			t.Errorf("fetch --api-url %s = exit %d, stderr %q; want 1 naming the URL and %q", tt.url, r.code, r.stderr, tt.why)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("fetch --api-url %s took %v to give up", tt.url, d)
		}
		h := openTestDB(t, db)
		if n := queryInt(t, h, "SELECT count(*) FROM fetch_errors"); n > 0 {
			t.Errorf("fetch --api-url %s recorded %d fetch errors, want the run stopped before any message was given up", tt.url, n)
		}
		if n := queryInt(t, h, "SELECT count(*) FROM runs WHERE outcome = 'failed' AND error LIKE '%cannot reach the API%'"); n != 1 {
			t.Errorf("fetch --api-url %s: the run is not recorded as failed with the reason", tt.url)
		}
	}
	if n := plain.Count(); n != 0 {
		t.Errorf("the plain server answered %d requests made over TLS", n)
	}
}
