package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batstat/batstat/smsbat/smsbattest"
)

// What a newcomer meets first: --version, help, each command's exit statuses, flags
// given after arguments.
func TestHelpVersionAndFlagOrder(t *testing.T) {
	dir := t.TempDir()
	r := runCLI(t, dir, "", "--version")
	if r.code != 0 || !regexp.MustCompile(`(?m)^batstat \S+`).MatchString(r.stdout) || !regexp.MustCompile(`(?m)^DuckDB v1\.`).MatchString(r.stdout) {
		t.Errorf("--version = exit %d, stdout %q; want batstat's and DuckDB's versions", r.code, r.stdout)
	}
	if r := runCLI(t, dir, "", "help", "fetch"); r.code != 0 || !strings.Contains(r.stdout, "batstat fetch") {
		t.Errorf("help fetch = exit %d, stdout %q", r.code, r.stdout)
	}
	if r := runCLI(t, dir, "", "help", "nosuch"); r.code != 2 {
		t.Errorf("help nosuch = exit %d, want 2", r.code)
	}
	// A flag line shows one default at most.
	twoDefaults := regexp.MustCompile(`(?m)^\s+--.*\(default.*\(default`)
	for _, cmd := range []string{"fetch", "report", "query", "export", "demo", "mock-server"} {
		r := runCLI(t, dir, "", cmd, "--help")
		if r.code != 0 || !strings.Contains(r.stdout, "Exit status: ") {
			t.Errorf("%s --help = exit %d, lists no exit statuses:\n%s", cmd, r.code, r.stdout)
		}
		if m := twoDefaults.FindString(r.stdout); m != "" {
			t.Errorf("%s --help shows two defaults: %s", cmd, m)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"report", "delivery", "--format", "csv"}, `"--format" comes after the report name "delivery"`},
		{[]string{"fetch", "--api-key", "k", "a.csv", "--rate", "0"}, `"--rate" comes after the FILE "a.csv"`},
		{[]string{"query", "SELECT 1", "--format", "csv"}, `"--format" comes after the SQL`},
	} {
		r := runCLI(t, dir, "", tt.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.want) || !strings.Contains(r.stderr, "flags go before") {
			t.Errorf("batstat %q = exit %d, stderr %q; want 2 and %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
}

// jsonLines decodes every line of stderr, failing on one that is not a JSON object.
func jsonLines(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for line := range strings.Lines(stderr) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("stderr line is not JSON: %q", line)
			continue
		}
		lines = append(lines, m)
	}
	return lines
}

// With --log-format json every line on stderr is JSON, the error line included, and the
// summary gives durations in seconds and says how many messages were asked of how many.
func TestJSONLogsAndInterruptedSummary(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"fetch", "--log-format", "json", "--api-key", "k", "--rate", "-1", "a.csv"}, 2},
		{[]string{"fetch", "--log-format", "json", "--api-key", "k", "missing.csv"}, 1},
		{[]string{"demo", "--log-format", "json", "--db", "d.duckdb"}, 0},
	} {
		r := runCLI(t, dir, "", tt.args...)
		lines := jsonLines(t, r.stderr)
		if r.code != tt.code || len(lines) == 0 {
			t.Errorf("batstat %q = exit %d, stderr %q; want %d", tt.args, r.code, r.stderr, tt.code)
			continue
		}
		if last := lines[len(lines)-1]; tt.code != 0 && (last["level"] != "ERROR" || last["exit_status"] != float64(tt.code)) {
			t.Errorf("batstat %q: last line %v, want an ERROR with exit_status %d", tt.args, last, tt.code)
		}
	}

	opts := smsbattest.DefaultOptions()
	opts.Latency = 20 * time.Millisecond
	running := notifyAt(&opts, 100)
	srv := smsbattest.NewServer(t, opts)
	cmd, stderr, _ := startFetch(t, srv.URL, dir, 5000, "--log-format", "json")
	waitFor(t, running, "the 100th request")
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("interrupted fetch = %v, want exit 130; stderr:\n%s", err, stderr)
	}
	lines := jsonLines(t, stderr.String())
	var summary map[string]any
	for _, l := range lines {
		if l["msg"] == "fetch finished" {
			summary = l
		}
	}
	if summary == nil {
		t.Fatalf("no fetch finished line in:\n%s", stderr)
	}
	asked, _ := summary["asked"].(float64)
	if summary["to_ask"] != 5000.0 || asked != float64(srv.Count()) || asked >= 5000 {
		t.Errorf("summary to_ask=%v asked=%v after %d requests served; want 5000 and what was asked", summary["to_ask"], summary["asked"], srv.Count())
	}
	if e, ok := summary["elapsed_s"].(float64); !ok || e <= 0 || e > 600 {
		t.Errorf("summary elapsed_s = %v, want seconds", summary["elapsed_s"])
	}
	last := lines[len(lines)-1]
	if msg, _ := last["msg"].(string); !strings.Contains(msg, "interrupted (SIGINT)") || last["exit_status"] != 130.0 {
		t.Errorf("last line = %v, want the interruption as JSON with exit_status 130", last)
	}
}

// demo on a database another process holds says so, not that it is no demo database.
func TestDemoOnALockedDatabase(t *testing.T) {
	opts := smsbattest.DefaultOptions()
	opts.Latency = 20 * time.Millisecond
	running := notifyAt(&opts, 20)
	srv := smsbattest.NewServer(t, opts)
	dir := t.TempDir()
	_, _, db := startFetch(t, srv.URL, dir, 5000)
	waitFor(t, running, "the 20th request")
	r := runCLI(t, dir, "", "demo", "--db", db)
	if r.code == 0 || !strings.Contains(r.stderr, "in use by another process") || strings.Contains(r.stderr, "not a demo database") {
		t.Errorf("demo on a locked file = exit %d, stderr %q; want the lock error alone", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "run.duckdb")); err != nil {
		t.Errorf("the locked database is gone: %v", err)
	}
}
