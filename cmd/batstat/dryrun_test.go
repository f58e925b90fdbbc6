package main

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/batstat/batstat/smsbat/smsbattest"
)

// dryRunCLI runs the binary like runCLI, with TMPDIR set to tmp, where a dry run keeps its
// scratch copy.
func dryRunCLI(t *testing.T, dir, tmp string, args ...string) result {
	t.Helper()
	return runCLIEnv(t, dir, "", []string{"TMPDIR=" + tmp}, args...)
}

// planTotals reads the TOTAL row of a dry run's table by column name.
func planTotals(t *testing.T, out string) map[string]int64 {
	t.Helper()
	var cols []string
	for line := range strings.Lines(out) {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case len(cells) > 1 && cells[0] == "campaign":
			cols = cells
		case len(cells) > 1 && cells[0] == "TOTAL" && cols != nil:
			got := map[string]int64{}
			for i, c := range cells {
				if n, err := strconv.ParseInt(c, 10, 64); err == nil {
					got[cols[i]] = n
				}
			}
			return got
		}
	}
	t.Fatalf("no TOTAL row in the dry run's output:\n%s", out)
	return nil
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestFetchDryRun(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.DefaultOptions())
	dir, tmp := t.TempDir(), t.TempDir()
	api := []string{"--db", "d.duckdb", "--api-url", srv.URL, "--api-key", smsbattest.DefaultAPIKey, "--rate", "0"}
	writeIDs(t, dir, "old.csv", 300)
	if r := runCLI(t, dir, "", append(append([]string{"fetch"}, api...), "old.csv")...); r.code != 0 {
		t.Fatalf("first fetch = exit %d: %s", r.code, r.stderr)
	}
	// spring repeats one of its own IDs and one of old's: two rejected rows.
	spring := "messageId\nspring-1\nspring-2\nspring-1\nold-000007\nspring-3\n"
	if err := os.WriteFile(filepath.Join(dir, "spring.csv"), []byte(spring), 0o644); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "d.duckdb")
	before, requests := fileSum(t, dbPath), srv.Count()

	// No credentials: a preview asks nothing.
	r := dryRunCLI(t, dir, tmp, "fetch", "--db", "d.duckdb", "--api-url", srv.URL, "--rate", "10", "--dry-run", "old.csv", "spring.csv")
	if r.code != 0 {
		t.Fatalf("fetch --dry-run = exit %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
	got := planTotals(t, r.stdout)
	for _, want := range []string{"spring.csv:4  duplicate of spring.csv:2", "spring.csv:5  duplicate of old.csv:9",
		"Nothing was asked and nothing written"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, r.stdout)
		}
	}
	if got["ids"] != 303 || got["rejected"] != 2 || got["new"] != 3 || got["final"]+got["to_ask"] != 303 {
		t.Errorf("dry run totals = %v, want 303 ids, 2 rejected, 3 new, final+to_ask = 303", got)
	}
	if n := srv.Count(); n != requests {
		t.Errorf("the fake got %d requests during the dry run, want none", n-requests)
	}
	if fileSum(t, dbPath) != before {
		t.Error("the dry run changed the database file")
	}
	if _, err := os.Stat(dbPath + ".wal"); err == nil {
		t.Error("the dry run left a WAL beside the database")
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the dry run left %d entries in TMPDIR, want its scratch copy removed", len(left))
	}

	// The same run for real asks what the dry run said it would.
	r = runCLI(t, dir, "", append(append([]string{"fetch", "--log-format", "json"}, api...), "old.csv", "spring.csv")...)
	if r.code != 0 {
		t.Fatalf("fetch = exit %d: %s", r.code, r.stderr)
	}
	var sum struct {
		Rejected int64 `json:"rejected"`
		New      int64 `json:"new_messages"`
		ToAsk    int64 `json:"to_ask"`
	}
	for line := range strings.Lines(r.stderr) {
		if strings.Contains(line, `"msg":"fetch finished"`) {
			if err := json.Unmarshal([]byte(line), &sum); err != nil {
				t.Fatal(err)
			}
		}
	}
	if sum.ToAsk != got["to_ask"] || sum.Rejected != got["rejected"] || sum.New != got["new"] {
		t.Errorf("the run asked %d, rejected %d, added %d; the dry run said %d, %d, %d",
			sum.ToAsk, sum.Rejected, sum.New, got["to_ask"], got["rejected"], got["new"])
	}

	requests = srv.Count()
	t.Run("due", func(t *testing.T) {
		// Everything was just asked: with an hour between asks, nothing is due yet.
		r := dryRunCLI(t, dir, tmp, "fetch", "--db", "d.duckdb", "--dry-run", "--refresh", "due", "--min-interval", "1h", "old.csv", "spring.csv")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		got := planTotals(t, r.stdout)
		if got["to_ask"] != 0 || got["not_due"] != 303-got["final"] || got["given_up"] != 0 {
			t.Errorf("totals = %v, want nothing due, every unsettled message not due", got)
		}
	})
	t.Run("strict", func(t *testing.T) {
		r := dryRunCLI(t, dir, tmp, "fetch", "--db", "d.duckdb", "--dry-run", "--strict", "old.csv", "spring.csv")
		if r.code != 1 || !strings.Contains(r.stderr, "--strict: 2 input rows rejected") || !strings.Contains(r.stdout, "TOTAL") {
			t.Errorf("exit %d, want 1 after printing the plan; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("metrics file", func(t *testing.T) {
		r := dryRunCLI(t, dir, tmp, "fetch", "--db", "d.duckdb", "--dry-run", "--metrics-file", "m.prom", "old.csv")
		if r.code != 2 || !strings.Contains(r.stderr, "--metrics-file") {
			t.Errorf("exit %d, want 2 naming --metrics-file; stderr:\n%s", r.code, r.stderr)
		}
	})
	t.Run("no database yet", func(t *testing.T) {
		r := dryRunCLI(t, dir, tmp, "fetch", "--db", "new.duckdb", "--dry-run", "spring.csv")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if got := planTotals(t, r.stdout); got["ids"] != 4 || got["rejected"] != 1 || got["new"] != 4 || got["to_ask"] != 4 {
			t.Errorf("totals = %v, want 4 new IDs to ask and 1 row rejected", got)
		}
		if _, err := os.Stat(filepath.Join(dir, "new.duckdb")); err == nil {
			t.Error("the dry run created the database")
		}
	})
	if n := srv.Count(); n != requests {
		t.Errorf("the fake got %d requests during the dry runs, want none", n-requests)
	}
}
