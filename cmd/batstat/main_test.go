package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/smsbat/smsbattest"
	"github.com/batstat/batstat/store"
)

// These tests run the real binary as a child process: exit statuses, signals and kill -9
// can only be checked from outside.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "batstat-cli")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "batstat")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build batstat: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the binary in dir with args and a clean environment.
func runCLI(t *testing.T, dir string, stdin string, args ...string) result {
	t.Helper()
	return runCLIEnv(t, dir, stdin, nil, args...)
}

// runCLIEnv is runCLI with env (KEY=value) added to the clean environment.
func runCLIEnv(t *testing.T, dir string, stdin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run batstat %v: %v", args, err)
	}
	return r
}

// writeIDs writes a CSV of n IDs and returns its path.
func writeIDs(t *testing.T, dir, name string, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("message_id\n")
	for i := range n {
		fmt.Fprintf(&b, "%s-%06d\n", strings.TrimSuffix(name, ".csv"), i)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func openTestDB(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func queryInt(t *testing.T, db *store.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestExitStatuses(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.Options{})
	dir := t.TempDir()
	ids := writeIDs(t, dir, "camp.csv", 5)
	api := []string{"--api-url", srv.URL, "--api-key", smsbattest.DefaultAPIKey}
	tests := []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"no command", nil, 2, "no command"},
		{"unknown command", []string{"fetchh"}, 2, "unknown command"},
		{"unknown flag", []string{"fetch", "--nope", ids}, 2, "nope"},
		{"fetch without files", append([]string{"fetch"}, api...), 2, "no input FILE"},
		{"fetch without credentials", []string{"fetch", "--api-url", srv.URL, ids}, 2, "no credentials"},
		{"bad rate", append(append([]string{"fetch"}, api...), "--rate", "-1", ids), 2, "--rate"},
		{"bad refresh", append(append([]string{"fetch"}, api...), "--refresh", "some", ids), 2, "--refresh"},
		{"plain http to a remote host", []string{"fetch", "--api-url", "http://api.example.com", "--api-key", "k", ids}, 2, "https"},
		{"missing input", append(append([]string{"fetch"}, api...), "nope.csv"), 1, "nope.csv"},
		{"report on a missing database", []string{"report", "--db", "absent.duckdb"}, 1, "absent.duckdb"},
		{"unknown report", []string{"report", "--db", "absent.duckdb", "nosuch"}, 2, "nosuch"},
		{"bad format", []string{"report", "--format", "xml"}, 2, "xml"},
		{"fetch ok", append(append([]string{"fetch", "--db", "ok.duckdb"}, api...), ids), 0, "fetch finished"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, dir, "", tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.inStderr) {
				t.Errorf("batstat %v = exit %d, stderr:\n%s\nwant exit %d and %q in stderr", tt.args, r.code, r.stderr, tt.code, tt.inStderr)
			}
		})
	}
}

// A fetch opens and checks every input before it creates the database: an input that
// cannot be read, or bad usage, leaves no database file behind and sends no request.
func TestFetchChecksInputsBeforeTheDatabase(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.Options{})
	tests := []struct {
		name  string
		files map[string]string
		args  []string
		code  int
		want  string
	}{
		{"missing file", nil, []string{"missing.csv"}, 1, "missing.csv"},
		{"missing file after a good one", map[string]string{"a.csv": "id\na-1\n"}, []string{"a.csv", "missing.csv"}, 1, "missing.csv"},
		{"empty file", map[string]string{"empty.csv": ""}, []string{"empty.csv"}, 1, "empty.csv"},
		{"glob without a match", nil, []string{"sent-*.csv"}, 1, "no files match"},
		{"stdin twice", nil, []string{"-", "-"}, 2, `"-" (stdin) given more than once`},
		{"bad number", map[string]string{"a.csv": "id\na-1\n"}, []string{"--concurrency", "0", "a.csv"}, 2, "--concurrency 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, text := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := append([]string{"fetch", "--api-url", srv.URL, "--api-key", smsbattest.DefaultAPIKey}, tt.args...)
			r := runCLI(t, dir, "id\nx-1\n", args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("batstat %v = exit %d, stderr:\n%s\nwant exit %d and %q", tt.args, r.code, r.stderr, tt.code, tt.want)
			}
			for _, name := range []string{"batstat.duckdb", "batstat.duckdb.wal"} {
				if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
					t.Errorf("batstat %v left %s behind", tt.args, name)
				}
			}
		})
	}
	if n := srv.Count(); n != 0 {
		t.Errorf("%d requests sent by runs that could not start", n)
	}
}

func TestFetchAuthModes(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.Options{APIKey: "k-123", Username: "ann", Password: "pw"})
	dir := t.TempDir()
	ids := writeIDs(t, dir, "camp.csv", 20)
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte("k-123\n"), 0o600)
	tests := []struct {
		name string
		args []string
	}{
		{"header", []string{"--api-key", "k-123"}},
		{"basic", []string{"--username", "ann", "--password", "pw"}},
		{"key-password", []string{"--api-key", "k-123", "--auth", "key-password"}},
		{"key file", []string{"--api-key-file", keyFile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "b.duckdb")
			args := append([]string{"fetch", "--db", db, "--rate", "0", "--api-url", srv.URL}, tt.args...)
			r := runCLI(t, dir, "", append(args, ids)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if n := queryInt(t, openTestDB(t, db), "SELECT count(*) FROM status_checks"); n != 20 {
				t.Errorf("status_checks = %d, want 20", n)
			}
		})
	}
}

func TestFetchRejectedCredentials(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.Options{APIKey: "right"})
	dir := t.TempDir()
	ids := writeIDs(t, dir, "camp.csv", 3000)
	start := time.Now()
	r := runCLI(t, dir, "", "fetch", "--log-format", "json", "--rate", "0", "--api-url", srv.URL,
		"--api-key", "Very-Secret-Key-42", ids)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	if elapsed := time.Since(start); elapsed > 20*time.Second {
		t.Errorf("a rejected key took %v to stop the run", elapsed)
	}
	if !strings.Contains(r.stderr, "rejected the credentials") {
		t.Errorf("stderr does not name the cause:\n%s", r.stderr)
	}
	if srv.Count() > 50 {
		t.Errorf("%d requests after a 401, want the run stopped at once", srv.Count())
	}
	db := openTestDB(t, filepath.Join(dir, "batstat.duckdb"))
	if n := queryInt(t, db, "SELECT count(*) FROM status_checks"); n != 0 {
		t.Errorf("status_checks = %d from a run never authorised", n)
	}
	var dump string
	if err := db.QueryRow(`SELECT string_agg(r::VARCHAR, '|') FROM runs r`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"stderr": r.stderr, "stdout": r.stdout, "runs": dump} {
		if strings.Contains(text, "Very-Secret-Key-42") {
			t.Errorf("the API key appears in %s", what)
		}
	}
}

func TestFetchPartialExitsThree(t *testing.T) {
	opts := smsbattest.Options{Fault500: 1}
	srv := smsbattest.NewServer(t, opts)
	dir := t.TempDir()
	ids := writeIDs(t, dir, "camp.csv", 4)
	r := runCLI(t, dir, "", "fetch", "--retries", "1", "--api-url", srv.URL, "--api-key", smsbattest.DefaultAPIKey, ids)
	if r.code != 3 {
		t.Fatalf("exit %d, want 3; stderr:\n%s", r.code, r.stderr)
	}
	db := openTestDB(t, filepath.Join(dir, "batstat.duckdb"))
	if n := queryInt(t, db, "SELECT count(*) FROM fetch_errors WHERE kind = 'server_error' AND attempts = 2"); n != 4 {
		t.Errorf("fetch_errors = %d, want 4", n)
	}
	var outcome string
	db.QueryRow("SELECT outcome FROM runs").Scan(&outcome)
	if outcome != "partial" {
		t.Errorf("outcome = %q, want partial", outcome)
	}
}

// startFetch starts a slow fetch of n IDs in the background and returns it with its db path.
func startFetch(t *testing.T, srvURL, dir string, n int, extra ...string) (*exec.Cmd, *bytes.Buffer, string) {
	t.Helper()
	ids := writeIDs(t, dir, "camp.csv", n)
	db := filepath.Join(dir, "run.duckdb")
	args := append([]string{"fetch", "--db", db, "--api-url", srvURL, "--api-key", smsbattest.DefaultAPIKey,
		"--rate", "0", "--concurrency", "4"}, extra...)
	cmd := exec.Command(binary, append(args, ids)...)
	cmd.Dir = dir
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, &errb, db
}

// notifyAt sets opts.Hook to close the returned channel when the fake receives its n-th
// request for a message.
func notifyAt(opts *smsbattest.Options, n int64) <-chan struct{} {
	reached := make(chan struct{})
	var seen atomic.Int64
	opts.Hook = func(http.ResponseWriter, *http.Request, string, int) bool {
		if seen.Add(1) == n {
			close(reached)
		}
		return false
	}
	return reached
}

// waitFor waits until reached is closed; the bound only ends a test whose child process
// died before it got there.
func waitFor(t *testing.T, reached <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-reached:
	case <-time.After(time.Minute):
		t.Fatalf("waited a minute for %s", what)
	}
}

func TestSignalsFlushAndExit(t *testing.T) {
	for _, tt := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tt.sig.String(), func(t *testing.T) {
			opts := smsbattest.DefaultOptions()
			opts.Latency = 20 * time.Millisecond
			running := notifyAt(&opts, 100)
			srv := smsbattest.NewServer(t, opts)
			dir := t.TempDir()
			cmd, stderr, dbPath := startFetch(t, srv.URL, dir, 5000)
			waitFor(t, running, "the 100th request")
			cmd.Process.Signal(tt.sig)
			err := cmd.Wait()
			code := -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tt.code {
				t.Fatalf("exit %d (%v), want %d; stderr:\n%s", code, err, tt.code, stderr)
			}
			db := openTestDB(t, dbPath)
			var outcome string
			var answered int64
			db.QueryRow("SELECT outcome, answered FROM runs").Scan(&outcome, &answered)
			stored := queryInt(t, db, "SELECT count(*) FROM status_checks")
			if outcome != "interrupted" || stored != answered || stored != srv.Count() || stored >= 5000 {
				t.Errorf("run %s with %d answered, %d stored, %d served; want interrupted and every served answer stored",
					outcome, answered, stored, srv.Count())
			}
		})
	}
}

func TestKill9ThenResume(t *testing.T) {
	opts := smsbattest.DefaultOptions()
	opts.Latency = 5 * time.Millisecond
	running := notifyAt(&opts, 1500)
	srv := smsbattest.NewServer(t, opts)
	dir := t.TempDir()
	cmd, _, dbPath := startFetch(t, srv.URL, dir, 6000)
	waitFor(t, running, "the 1500th request")
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	// The database opens, and holds whole batches only.
	db := openTestDB(t, dbPath)
	if n := queryInt(t, db, "SELECT count(*) FROM messages"); n != 6000 {
		t.Errorf("messages after kill -9 = %d, want 6000 (all loaded before the first request)", n)
	}
	stored := queryInt(t, db, "SELECT count(*) FROM status_checks")
	var answered int64
	db.QueryRow("SELECT answered FROM runs").Scan(&answered)
	if stored != answered {
		t.Errorf("status_checks = %d but runs.answered = %d: counters and rows must commit together", stored, answered)
	}
	db.Close()

	r := runCLI(t, dir, "", "fetch", "--db", dbPath, "--api-url", srv.URL, "--api-key", smsbattest.DefaultAPIKey,
		"--rate", "0", "--concurrency", "16", filepath.Join(dir, "camp.csv"))
	if r.code != 0 {
		t.Fatalf("resume exit %d: %s", r.code, r.stderr)
	}
	db = openTestDB(t, dbPath)
	if n := queryInt(t, db, "SELECT count(*) FROM message_status WHERE deliverystatus IS NULL"); n != 0 {
		t.Errorf("%d messages unanswered after the resume", n)
	}
	if n := queryInt(t, db, "SELECT count(*) FROM (SELECT message_id FROM status_checks GROUP BY message_id, run_id HAVING count(*) > 1)"); n != 0 {
		t.Errorf("%d messages answered twice within one run", n)
	}
	for _, q := range []string{
		"SELECT count(*) - count(DISTINCT message_id) FROM messages",
		"SELECT count(*) - count(DISTINCT message_id) FROM status_latest",
	} {
		if n := queryInt(t, db, q); n != 0 {
			t.Errorf("%s = %d, want no duplicate message", q, n)
		}
	}
	if n := queryInt(t, db, "SELECT count(*) FROM runs WHERE run_id = 1 AND outcome = 'crashed'"); n != 1 {
		t.Errorf("the killed run is not marked crashed")
	}
	// The resume asked again only what the killed run had not stored, plus pending ones.
	var requested int64
	db.QueryRow("SELECT requested FROM runs WHERE run_id = 2").Scan(&requested)
	if requested >= 6000 {
		t.Errorf("resume requested %d, want fewer than 6000", requested)
	}
}

// A second fetch while the first runs waits for the file, saying so; with a short
// --lock-timeout it gives up with exit 75 naming the first; with the default it runs once
// the first has let go.
func TestSecondRunWaitsWhileFirstRuns(t *testing.T) {
	opts := smsbattest.DefaultOptions()
	opts.Latency = 20 * time.Millisecond
	running := notifyAt(&opts, 20)
	srv := smsbattest.NewServer(t, opts)
	dir := t.TempDir()
	first, _, dbPath := startFetch(t, srv.URL, dir, 5000)
	waitFor(t, running, "the 20th request")
	args := []string{"fetch", "--db", dbPath, "--api-url", srv.URL, "--api-key", smsbattest.DefaultAPIKey, "--rate", "0", "--concurrency", "50"}
	r := runCLI(t, dir, "", append(args, "--lock-timeout", "1s", "camp.csv")...)
	pid := fmt.Sprintf("PID %d", first.Process.Pid)
	if r.code != 75 || !strings.Contains(r.stderr, pid+"; waiting up to 1s") || !strings.Contains(r.stderr, "still held after waiting 1s") {
		t.Errorf("second run with --lock-timeout 1s = exit %d, stderr:\n%s\nwant exit 75 after saying it waits for %s", r.code, r.stderr, pid)
	}

	second, stderr := startCLI(t, dir, append(args, "camp.csv")...)
	waitFor(t, stderr.seen(pid+"; waiting up to 5m"), "the second run to say it waits")
	first.Process.Signal(syscall.SIGINT)
	if err := first.Wait(); exitStatus(err) != 130 {
		t.Errorf("the interrupted first run = %v, want exit 130", err)
	}
	if err := second.Wait(); err != nil {
		t.Errorf("the second run = %v, want exit 0 once the first let go; stderr:\n%s", err, stderr)
	}
}

func TestDemoAndReportJSONColumns(t *testing.T) {
	dir := t.TempDir()
	r := runCLI(t, dir, "", "demo")
	if r.code != 0 {
		t.Fatalf("demo exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"delivery", "cost", "fallback", "delivery_rate", "spring-sale"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// A second demo replaces its own file.
	if r := runCLI(t, dir, "", "demo"); r.code != 0 {
		t.Fatalf("second demo exit %d: %s", r.code, r.stderr)
	}
	// It refuses to replace a file it did not make.
	os.WriteFile(filepath.Join(dir, "mine.duckdb"), []byte("precious"), 0o644)
	if r := runCLI(t, dir, "", "demo", "--db", "mine.duckdb"); r.code != 1 {
		t.Errorf("demo over a foreign file = exit %d, want 1", r.code)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "mine.duckdb")); string(b) != "precious" {
		t.Errorf("demo touched a file it did not make")
	}

	// query runs only queries, refused before they run as bad usage; export writes a
	// Parquet file and the database is unchanged.
	for _, q := range []string{"DELETE FROM messages", "COPY messages TO 'copied.csv'"} {
		if r := runCLI(t, dir, "", "query", "--db", "batstat-demo.duckdb", q); r.code != 2 || !strings.Contains(r.stderr, "a statement in it is not a query") {
			t.Errorf("query %q = exit %d, stderr %q; want 2 and refused", q, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "copied.csv")); err == nil {
		t.Errorf("a refused COPY wrote its file")
	}
	if r := runCLI(t, dir, "SELECT count(*) AS n FROM messages", "query", "--db", "batstat-demo.duckdb", "--format", "csv", "-"); r.code != 0 || r.stdout != "n\n3000\n" {
		t.Errorf("query from stdin = exit %d, stdout %q, stderr %q; want n=3000", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, dir, "", "export", "--db", "batstat-demo.duckdb", "--format", "parquet", "--output", "ms.parquet"); r.code != 0 || !strings.Contains(r.stderr, "exported 3000 rows") {
		t.Errorf("export = exit %d, stderr %q", r.code, r.stderr)
	}
	if fi, err := os.Stat(filepath.Join(dir, "ms.parquet")); err != nil || fi.Size() == 0 {
		t.Errorf("export wrote no parquet file: %v", err)
	}
	r = runCLI(t, dir, "", "export", "--db", "batstat-demo.duckdb", "--query", "SELECT campaign, count(*) AS n FROM messages GROUP BY ALL ORDER BY 1")
	if want := "campaign,n\norder-updates,300\notp-codes,700\nspring-sale,1200\nviber-promo,800\n"; r.code != 0 || r.stdout != want {
		t.Errorf("export to stdout = exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, want)
	}

	want := map[string][]string{
		"delivery": {"campaign", "messages", "delivered", "undeliverable", "permanenterror", "scheduled", "processing", "not_found", "other", "unchecked", "delivery_rate"},
		"cost":     {"campaign", "currency", "messages", "parts", "cost", "bill_amount", "cost_per_delivered"},
		"fallback": {"campaign", "messages", "with_fallback", "fallback_used", "fallback_delivered", "fallback_rate"},
		"channels": {"campaign", "channel", "status", "messages"},
	}
	for name, cols := range want {
		r := runCLI(t, dir, "", "report", "--db", "batstat-demo.duckdb", "--format", "json", name)
		if r.code != 0 {
			t.Fatalf("report %s exit %d: %s", name, r.code, r.stderr)
		}
		var rows []json.RawMessage
		if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) == 0 {
			t.Fatalf("report %s: not a non-empty JSON array (%v):\n%s", name, err, r.stdout)
		}
		dec := json.NewDecoder(bytes.NewReader(rows[0]))
		dec.Token()
		var got []string
		for dec.More() {
			tok, _ := dec.Token()
			got = append(got, tok.(string))
			var skip json.RawMessage
			dec.Decode(&skip)
		}
		if !slices.Equal(got, cols) {
			t.Errorf("report %s columns = %v, want %v", name, got, cols)
		}
	}
}

func TestFetchGlobGzipAndStdin(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.Options{})
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "sent"), 0o755)
	writeIDs(t, filepath.Join(dir, "sent"), "alpha.csv", 3)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("Message ID;Phone\r\nbeta-1;380500000001\r\nbeta-2;380500000002\r\n"))
	zw.Close()
	os.WriteFile(filepath.Join(dir, "sent", "beta.csv.gz"), gz.Bytes(), 0o644)
	r := runCLI(t, dir, "gamma-1\ngamma-2\n", "fetch", "--api-url", srv.URL, "--api-key", smsbattest.DefaultAPIKey,
		"--rate", "0", "sent/*", "-")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	db := openTestDB(t, filepath.Join(dir, "batstat.duckdb"))
	rows, err := db.Query(`SELECT campaign, count(*), count(recipient) FROM message_status WHERE deliverystatus IS NOT NULL GROUP BY ALL ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var c string
		var n, withPhone int
		rows.Scan(&c, &n, &withPhone)
		got = append(got, fmt.Sprintf("%s:%d:%d", c, n, withPhone))
	}
	if want := []string{"alpha:3:0", "beta:2:2", "stdin:2:0"}; !slices.Equal(got, want) {
		t.Errorf("campaigns answered = %v, want %v", got, want)
	}
}

// mock-server stops on SIGINT and SIGTERM with the exit status of any interrupted command.
func TestMockServerSignals(t *testing.T) {
	for _, tt := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tt.sig.String(), func(t *testing.T) {
			srv, _, _ := startMockServer(t)
			srv.Process.Signal(tt.sig)
			err := srv.Wait()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != tt.code {
				t.Errorf("mock-server after %v: %v, want exit status %d", tt.sig, err, tt.code)
			}
		})
	}
}

func TestFetchAgainstMockServerCommand(t *testing.T) {
	dir := t.TempDir()
	_, url, _ := startMockServer(t, "--api-key", "k-1", "--username", "u", "--password", "p")
	ids := writeIDs(t, dir, "camp.csv", 30)
	for _, auth := range [][]string{
		{"--api-key", "k-1"},
		{"--username", "u", "--password", "p"},
		{"--api-key", "k-1", "--auth", "key-password"},
	} {
		db := filepath.Join(t.TempDir(), "m.duckdb")
		args := append([]string{"fetch", "--db", db, "--rate", "0", "--api-url", url}, auth...)
		if r := runCLI(t, dir, "", append(args, ids)...); r.code != 0 {
			t.Errorf("fetch %v against mock-server = exit %d: %s", auth, r.code, r.stderr)
			continue
		}
		if n := queryInt(t, openTestDB(t, db), "SELECT count(*) FROM status_checks"); n != 30 {
			t.Errorf("fetch %v: %d answers, want 30", auth, n)
		}
	}
	if r := runCLI(t, dir, "", "fetch", "--db", "bad.duckdb", "--api-url", url, "--api-key", "wrong", ids); r.code != 1 {
		t.Errorf("a wrong key against mock-server = exit %d, want 1", r.code)
	}
}

// A fetch that outgrows --memory-limit fails with exit status 1, says which flag to raise,
// and leaves no message of its half-done load behind.
func TestFetchOutOfMemoryNamesTheFlag(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.DefaultOptions())
	dir := t.TempDir()
	ids := writeIDs(t, dir, "camp.csv", 100_000)
	db := filepath.Join(dir, "oom.duckdb")
	r := runCLI(t, dir, "", "fetch", "--db", db, "--api-url", srv.URL, "--api-key", smsbattest.DefaultAPIKey,
		"--memory-limit", "4MB", "--no-progress", ids)
	if r.code != 1 || !strings.Contains(r.stderr, "raise --memory-limit") {
		t.Fatalf("exit %d, stderr %q; want 1 and the flag to raise", r.code, r.stderr)
	}
	if srv.Count() != 0 {
		t.Errorf("%d requests sent by a run that could not load its inputs", srv.Count())
	}
	h := openTestDB(t, db)
	if n := queryInt(t, h, "SELECT count(*) FROM messages"); n != 0 {
		t.Errorf("%d messages left by a failed load", n)
	}
}

// waitFileOpen waits until process pid has path open: the command has got past its flags
// and set up its signal handling.
func waitFileOpen(t *testing.T, pid int, path string) {
	t.Helper()
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc to see the files a process has open")
	}
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	deadline := time.Now().Add(30 * time.Second)
	for {
		fds, _ := os.ReadDir(fdDir)
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && target == path {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not open %s", pid, path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitCPU waits until process pid has used ticks clock ticks (usually 1/100 s) of CPU
// time: opening a small database takes a few, so a process past that is running its query.
func waitCPU(t *testing.T, pid, ticks int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// The fields after the command name, which is in parentheses: utime and stime
		// are the 12th and 13th of them.
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		var utime, stime int
		fmt.Sscan(fields[11], &utime)
		fmt.Sscan(fields[12], &stime)
		if utime+stime >= ticks {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d used only %d ticks of CPU", pid, utime+stime)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestQueryAndExportInterrupted checks that a signal stops a long query or export with the
// signal's exit status and one line on stderr, not DuckDB's "INTERRUPT Error".
func TestQueryAndExportInterrupted(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "slow.duckdb")
	db, err := store.Open(context.Background(), dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	const slow = "SELECT count(*) FROM range(10000000000)"
	for _, tt := range []struct {
		name string
		args []string
		sig  syscall.Signal
		code int
	}{
		{"query SIGINT", []string{"query", "--db", dbPath, slow}, syscall.SIGINT, 130},
		{"query SIGTERM", []string{"query", "--db", dbPath, "--format", "csv", slow}, syscall.SIGTERM, 143},
		{"export SIGINT", []string{"export", "--db", dbPath, "--query", slow, "--output", filepath.Join(dir, "out.csv")}, syscall.SIGINT, 130},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary, tt.args...)
			cmd.Dir = dir
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			waitFileOpen(t, cmd.Process.Pid, dbPath)
			waitCPU(t, cmd.Process.Pid, 30)
			cmd.Process.Signal(tt.sig)
			err := cmd.Wait()
			code := -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if code != tt.code || len(lines) != 1 || !strings.Contains(lines[0], "interrupted") || strings.Contains(stderr.String(), "INTERRUPT") {
				t.Errorf("%s = exit %d, stderr %q; want %d and one line saying it was interrupted", tt.name, code, stderr.String(), tt.code)
			}
			if stdout.Len() > 0 {
				t.Errorf("%s wrote %q to stdout", tt.name, stdout.String())
			}
		})
	}
}

// TestFetchHeaders checks how fetch reads the first line of an input: a header named as
// people name an ID column loads the IDs under it, an unknown header is an error before
// anything is asked, and --delimiter takes only what its help says.
func TestFetchHeaders(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.Options{})
	dir := t.TempDir()
	api := []string{"--api-url", srv.URL, "--api-key", smsbattest.DefaultAPIKey, "--rate", "0"}
	write := func(name, content string) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return name
	}

	smsID := write("sms.csv", "sms_id\n4100000001\n4100000002\n4100000003\n")
	r := runCLI(t, dir, "", append(append([]string{"fetch", "--db", "sms.duckdb"}, api...), smsID)...)
	if r.code != 0 {
		t.Fatalf("fetch of a file headed sms_id = exit %d: %s", r.code, r.stderr)
	}
	db := openTestDB(t, filepath.Join(dir, "sms.duckdb"))
	rows, err := db.Query("SELECT message_id FROM messages ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	if want := []string{"4100000001", "4100000002", "4100000003"}; !slices.Equal(ids, want) {
		t.Errorf("fetch of a file headed sms_id loaded %q, want %q", ids, want)
	}

	asked := srv.Count()
	unknown := write("ref.csv", "SMS Reference\n4100000004\n4100000005\n")
	r = runCLI(t, dir, "", append(append([]string{"fetch", "--db", "ref.duckdb"}, api...), unknown)...)
	if r.code != 1 || !strings.Contains(r.stderr, `"SMS Reference" looks like a header`) ||
		!strings.Contains(r.stderr, `--id-column "SMS Reference"`) || strings.Count(r.stderr, "batstat: ") != 1 {
		t.Errorf("fetch of a file with an unknown header = exit %d, stderr %q; want 1 and one line naming it and --id-column", r.code, r.stderr)
	}
	if srv.Count() != asked {
		t.Errorf("fetch of a file with an unknown header asked the API %d times", srv.Count()-asked)
	}
	r = runCLI(t, dir, "", append(append([]string{"fetch", "--db", "ref.duckdb", "--id-column", "sms reference"}, api...), unknown)...)
	if r.code != 0 {
		t.Errorf("fetch --id-column of the unknown header = exit %d: %s", r.code, r.stderr)
	}

	comma := write("comma.csv", "messageId,campaign\nc-1,spring\nc-2,spring\n")
	r = runCLI(t, dir, "", append(append([]string{"fetch", "--db", "pipe.duckdb", "--delimiter", "|"}, api...), comma)...)
	if r.code != 2 || !strings.Contains(r.stderr, `--delimiter "|"`) {
		t.Errorf("fetch --delimiter '|' = exit %d, stderr %q; want 2 naming the flag", r.code, r.stderr)
	}
	r = runCLI(t, dir, "", append(append([]string{"fetch", "--db", "pipe.duckdb", "--delimiter", ";"}, api...), comma)...)
	if r.code != 1 || !strings.Contains(r.stderr, "use --delimiter ','") {
		t.Errorf("fetch --delimiter ';' of a comma file = exit %d, stderr %q; want 1 naming ','", r.code, r.stderr)
	}
}

// TestFetchReportsDuplicates runs fetch on inputs that repeat IDs, within a file, across
// files (one from stdin) and against a campaign loaded before: every repeat is a
// rejected row naming its first occurrence as the input was named, the summary counts
// them by kind, the errors report groups them, and none changes the exit status.
func TestFetchReportsDuplicates(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.Options{})
	dir := t.TempDir()
	api := []string{"--db", "d.duckdb", "--api-url", srv.URL, "--api-key", smsbattest.DefaultAPIKey, "--rate", "0"}
	if err := os.WriteFile(filepath.Join(dir, "old.csv"), []byte("messageId\nd-9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, dir, "", append(append([]string{"fetch"}, api...), "old.csv")...); r.code != 0 {
		t.Fatalf("first fetch = exit %d: %s", r.code, r.stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "spring.csv"), []byte("messageId\nd-1\nd-2\nd-1\nd-9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, dir, "messageId,campaign\nd-2,spring\nd-3,spring\n\nd-1,summer\n",
		append(append([]string{"fetch", "--log-format", "json"}, api...), "spring.csv", "-")...)
	if r.code != 0 {
		t.Fatalf("fetch of repeated IDs = exit %d, want 0: %s", r.code, r.stderr)
	}
	var summary struct {
		Rejected   int64            `json:"rejected"`
		RejectedBy map[string]int64 `json:"rejected_by"`
		Requested  int64            `json:"to_ask"`
	}
	for line := range strings.Lines(r.stderr) {
		if strings.Contains(line, `"msg":"fetch finished"`) {
			if err := json.Unmarshal([]byte(line), &summary); err != nil {
				t.Fatal(err)
			}
		}
	}
	if want := map[string]int64{"duplicate": 3, "already_in_campaign": 1}; summary.Rejected != 4 || summary.Requested != 3 || !maps.Equal(summary.RejectedBy, want) {
		t.Errorf("summary = %+v, want 4 rejected by kind %v and 3 requested; stderr:\n%s", summary, want, r.stderr)
	}

	db := openTestDB(t, filepath.Join(dir, "d.duckdb"))
	rows, err := db.Query(`SELECT file || ':' || line || ' ' || campaign || ' ' || reason FROM rejected_rows ORDER BY file, line`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	rows.Close()
	want := []string{
		"-:2 spring duplicate of spring.csv:3",
		"-:5 summer duplicate of spring.csv:2",
		"spring.csv:4 spring duplicate of spring.csv:2",
		"spring.csv:5 spring already in campaign old",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rejected_rows (-want +got):\n%s", diff)
	}
	db.Close()

	r = runCLI(t, dir, "", "report", "--db", "d.duckdb", "--format", "csv", "errors")
	if r.code != 0 || !strings.Contains(r.stdout, "spring,rejected_rows,duplicate,2,2,") ||
		!strings.Contains(r.stdout, "summer,rejected_rows,duplicate,1,1,") ||
		!strings.Contains(r.stdout, "spring,rejected_rows,already in campaign old,1,1,") {
		t.Errorf("report errors = exit %d:\n%s%s\nwant duplicates grouped by campaign", r.code, r.stdout, r.stderr)
	}
}
