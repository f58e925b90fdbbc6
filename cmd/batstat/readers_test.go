package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/smsbat/smsbattest"
	"github.com/batstat/batstat/store"
)

// These tests run readers and writers of one database as separate processes, as an
// analyst and a cron job do: DuckDB's lock is per process.

// watchedBuffer collects a child's output and tells when a text appears in it.
type watchedBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	watches map[string]chan struct{}
}

func (w *watchedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for text, ch := range w.watches {
		if strings.Contains(w.buf.String(), text) {
			close(ch)
			delete(w.watches, text)
		}
	}
	return len(p), nil
}

// seen returns a channel closed once text has appeared.
func (w *watchedBuffer) seen(text string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	if strings.Contains(w.buf.String(), text) {
		close(ch)
		return ch
	}
	if w.watches == nil {
		w.watches = map[string]chan struct{}{}
	}
	w.watches[text] = ch
	return ch
}

func (w *watchedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// startCLI starts the binary in dir with args and returns it with its stderr; it is killed
// when the test ends.
func startCLI(t *testing.T, dir string, args ...string) (*exec.Cmd, *watchedBuffer) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	stderr := &watchedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, stderr
}

func exitStatus(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// noticeRE is the line of a reader that reads a snapshot: of a run in progress, as the
// contract writes it, or of one that ended (the writer published its last snapshot and
// has not yet let go of the file).
var noticeRE = regexp.MustCompile(`(?m)^reading snapshot of (\d\d:\d\d:\d\d), run (\d+) (in progress|ended ok): asked (\d+) of (\d+)$`)

// notice parses the snapshot line of a reader's stderr; ok is false when there is none.
func notice(stderr string) (asked, of int64, ok bool) {
	m := noticeRE.FindStringSubmatch(stderr)
	if m == nil {
		return 0, 0, false
	}
	asked, _ = strconv.ParseInt(m[4], 10, 64)
	of, _ = strconv.ParseInt(m[5], 10, 64)
	return asked, of, true
}

// parquetCount reads the column n of the one-row Parquet file at path.
func parquetCount(t *testing.T, path string) int64 {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(`SELECT n FROM read_parquet($1)`, path).Scan(&n); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return n
}

// While a slow fetch runs, report, query and export in other processes succeed, say they
// read the snapshot, and never see a number go back; the snapshot's run progress agrees
// with its data. Once the fetch is done, the main file and its last snapshot give the same
// reports.
func TestReadersWhileFetchRuns(t *testing.T) {
	opts := smsbattest.DefaultOptions()
	opts.Latency = 20 * time.Millisecond
	srv := smsbattest.NewServer(t, opts)
	dir := t.TempDir()
	const n = 600
	ids := writeIDs(t, dir, "camp.csv", n)
	db := filepath.Join(dir, "run.duckdb")
	fetch, fetchErr := startCLI(t, dir, "fetch", "--db", db, "--api-url", srv.URL, "--api-key", smsbattest.DefaultAPIKey,
		"--rate", "0", "--concurrency", "2", "--snapshot-every", "100ms", "--no-progress", ids)
	waitFor(t, fetchErr.seen("fetch starting"), "the fetch to open the database")
	done := make(chan error, 1)
	go func() { done <- fetch.Wait() }()

	type reading struct {
		what                  string
		asked, answered, rows int64
	}
	var readings []reading
	var fetchResult error
	running := true
	for i := 0; running; i++ {
		select {
		case fetchResult = <-done:
			running = false
			continue
		default:
		}
		var r reading
		var res result
		switch i % 3 {
		case 0:
			r.what = "report"
			res = runCLI(t, dir, "", "report", "--db", db, "--format", "json", "delivery")
			var rows []struct{ Messages, Unchecked int64 }
			if res.code == 0 {
				// No row while the run loads: message_status hides its messages until then.
				if err := json.Unmarshal([]byte(res.stdout), &rows); err != nil || len(rows) > 1 {
					t.Fatalf("report delivery: %v\n%s", err, res.stdout)
				}
				for _, row := range rows {
					r.answered, r.rows = row.Messages-row.Unchecked, row.Messages
				}
			}
		case 1:
			r.what = "query"
			res = runCLI(t, dir, "", "query", "--db", db, "--format", "json",
				"SELECT count(*) AS answered, (SELECT count(*) FROM messages) AS rows FROM status_latest")
			var rows []struct{ Answered, Rows int64 }
			if res.code == 0 {
				if err := json.Unmarshal([]byte(res.stdout), &rows); err != nil || len(rows) != 1 {
					t.Fatalf("query: %v\n%s", err, res.stdout)
				}
				r.answered, r.rows = rows[0].Answered, rows[0].Rows
			}
		case 2:
			r.what = "export"
			out := filepath.Join(dir, fmt.Sprintf("export-%d.parquet", i))
			res = runCLI(t, dir, "", "export", "--db", db, "--format", "parquet", "--output", out,
				"--query", "SELECT count(*) AS n FROM status_checks")
			if res.code == 0 {
				r.answered, r.rows = parquetCount(t, out), n
			}
		}
		if res.code != 0 {
			t.Fatalf("%s while the fetch runs = exit %d, stderr:\n%s\nstdout:\n%s", r.what, res.code, res.stderr, res.stdout)
		}
		if strings.Contains(res.stderr, "run 1 in progress: loading its inputs\n") {
			continue // a snapshot published while the run loaded
		}
		asked, of, ok := notice(res.stderr)
		if !ok {
			// The fetch ended (the database is free) or had not loaded yet (no snapshot
			// and not yet waiting), or the line is wrong: only the first is fine.
			select {
			case fetchResult = <-done:
				running = false
				continue
			default:
			}
			if strings.Contains(res.stderr, "reading snapshot") {
				t.Fatalf("%s: the snapshot line %q does not read as the contract says", r.what, res.stderr)
			}
			continue
		}
		if of != n || r.rows != n {
			t.Errorf("%s read a snapshot of %d messages, run asked %d of %d; want %d", r.what, r.rows, asked, of, n)
		}
		if asked != r.answered {
			t.Errorf("%s: the snapshot says the run asked %d, but holds %d answers", r.what, asked, r.answered)
		}
		r.asked = asked
		if last := len(readings) - 1; last >= 0 && (r.asked < readings[last].asked || r.answered < readings[last].answered) {
			t.Errorf("%s read %+v after %+v: a number went back", r.what, r, readings[last])
		}
		readings = append(readings, r)
	}
	if fetchResult != nil {
		t.Fatalf("fetch = %v, stderr:\n%s", fetchResult, fetchErr)
	}
	seen := map[string]bool{}
	for _, r := range readings {
		seen[r.what] = true
	}
	if len(seen) < 3 || readings[len(readings)-1].asked == readings[0].asked {
		t.Errorf("readings from snapshots %+v: want each command to read one, and the run to move on between them", readings)
	}
	t.Logf("%d readings from snapshots, asked %d to %d", len(readings), readings[0].asked, readings[len(readings)-1].asked)

	main := runCLI(t, dir, "", "report", "--db", db, "--format", "json", "delivery", "cost", "fallback", "runs")
	snap := runCLI(t, dir, "", "report", "--db", store.SnapshotPath(db), "--format", "json", "delivery", "cost", "fallback", "runs")
	if main.code != 0 || snap.code != 0 || main.stderr != "" {
		t.Fatalf("reports after the fetch: main exit %d %q, snapshot exit %d %q", main.code, main.stderr, snap.code, snap.stderr)
	}
	if diff := cmp.Diff(main.stdout, snap.stdout); diff != "" {
		t.Errorf("reports of the database and of its last snapshot differ (-database +snapshot):\n%s", diff)
	}
}

// A fetch that finds the database held by a reader waits for it, saying so, then runs.
func TestFetchWaitsForReader(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.Options{})
	dir := t.TempDir()
	ids := writeIDs(t, dir, "camp.csv", 50)
	db := filepath.Join(dir, "held.duckdb")
	api := []string{"--api-url", srv.URL, "--api-key", smsbattest.DefaultAPIKey, "--rate", "0"}
	if r := runCLI(t, dir, "", append(append([]string{"fetch", "--db", db}, api...), ids)...); r.code != 0 {
		t.Fatalf("first fetch = exit %d: %s", r.code, r.stderr)
	}

	query, _ := startCLI(t, dir, "query", "--db", db, "SELECT count(*) FROM range(10000000000)")
	waitFileOpen(t, query.Process.Pid, db)
	fetch, fetchErr := startCLI(t, dir, append(append([]string{"fetch", "--db", db, "--refresh", "all"}, api...), ids)...)
	waitFor(t, fetchErr.seen(fmt.Sprintf("database %s is in use by PID %d; waiting up to 5m", db, query.Process.Pid)),
		"the fetch to say it waits for the query")
	query.Process.Signal(syscall.SIGINT)
	if err := query.Wait(); exitStatus(err) != 130 {
		t.Errorf("the interrupted query = %v, want exit 130", err)
	}
	if err := fetch.Wait(); err != nil {
		t.Fatalf("the fetch that waited = %v, want exit 0; stderr:\n%s", err, fetchErr)
	}
	if !strings.Contains(fetchErr.String(), "answered=50") {
		t.Errorf("the fetch that waited did not ask again:\n%s", fetchErr)
	}
}

// A reader that finds the database held and no snapshot waits up to --lock-timeout, then
// exits 75 naming the process that holds the file; so does a second writer.
func TestLockTimeoutExits75(t *testing.T) {
	opts := smsbattest.DefaultOptions()
	opts.Latency = 20 * time.Millisecond
	running := notifyAt(&opts, 20)
	srv := smsbattest.NewServer(t, opts)
	dir := t.TempDir()
	fetch, _, db := startFetch(t, srv.URL, dir, 5000, "--snapshot-every", "0")
	waitFor(t, running, "the 20th request")
	pid := fmt.Sprintf("PID %d", fetch.Process.Pid)
	for _, args := range [][]string{
		{"report", "--db", db, "--lock-timeout", "300ms"},
		{"query", "--db", db, "--lock-timeout", "300ms", "SELECT 1"},
		{"export", "--db", db, "--lock-timeout", "0s", "--format", "csv"},
		{"fetch", "--db", db, "--lock-timeout", "300ms", "--api-url", srv.URL, "--api-key", smsbattest.DefaultAPIKey, "camp.csv"},
	} {
		r := runCLI(t, dir, "", args...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		last := lines[len(lines)-1]
		if r.code != 75 || !strings.Contains(last, pid) || !strings.Contains(last, "in use") {
			t.Errorf("batstat %s while a fetch holds the database = exit %d, stderr:\n%s\nwant exit 75 naming %s", args[0], r.code, r.stderr, pid)
		}
		if waits := args[4] != "0s"; waits != strings.Contains(r.stderr, "waiting up to 300ms") {
			t.Errorf("batstat %s --lock-timeout %s: stderr %q; want a line saying it waits exactly when it may", args[0], args[4], r.stderr)
		}
	}
	// webhook load is a writer like fetch.
	spool := filepath.Join(dir, "spool")
	if err := os.Mkdir(spool, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, dir, "", "webhook", "load", "--db", db, "--lock-timeout", "300ms", spool); r.code != 75 ||
		!strings.Contains(r.stderr, pid) || !strings.Contains(r.stderr, "waiting up to 300ms") {
		t.Errorf("batstat webhook load while a fetch holds the database = exit %d, stderr:\n%s\nwant exit 75 naming %s after waiting", r.code, r.stderr, pid)
	}
	// demo does not wait (it makes its own file), but a held file is busy, not foreign.
	if r := runCLI(t, dir, "", "demo", "--db", db); r.code != 75 || !strings.Contains(r.stderr, pid) || strings.Contains(r.stderr, "not a demo database") {
		t.Errorf("batstat demo on a held database = exit %d, stderr:\n%s\nwant exit 75 naming %s", r.code, r.stderr, pid)
	}
	if _, err := os.Stat(store.SnapshotPath(db)); err == nil {
		t.Errorf("--snapshot-every 0 published a snapshot")
	}
}

// inotify watches dir for the events in mask and sends the name of each file they concern.
func inotify(t *testing.T, dir string, mask uint32) <-chan string {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, mask); err != nil {
		t.Fatal(err)
	}
	names := make(chan string, 1024)
	go func() {
		defer close(names)
		buf := make([]byte, 64<<10)
		for {
			n, err := syscall.Read(fd, buf)
			if err != nil || n <= 0 {
				return
			}
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
				names <- string(bytes.TrimRight(name, "\x00"))
				off += syscall.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}()
	t.Cleanup(func() { syscall.Close(fd) })
	return names
}

// waitName waits until names sends name.
func waitName(t *testing.T, names <-chan string, name string) {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case got, ok := <-names:
			if !ok {
				t.Fatalf("the watch ended before %s", name)
			}
			if got == name {
				return
			}
		case <-timeout:
			t.Fatalf("waited a minute for %s", name)
		}
	}
}

// kill -9 of the writer while it publishes a snapshot: the last snapshot and the database
// still open, each holding whole batches, and the next run removes the half-written temp
// file and completes.
func TestKill9DuringSnapshot(t *testing.T) {
	opts := smsbattest.DefaultOptions()
	opts.Latency = time.Millisecond
	srv := smsbattest.NewServer(t, opts)
	dir := t.TempDir()
	db := filepath.Join(dir, "run.duckdb")
	snapshot, tmp := store.SnapshotPath(db), store.SnapshotPath(db)+".tmp"
	events := inotify(t, dir, syscall.IN_CREATE|syscall.IN_MOVED_TO)
	fetch, _, _ := startFetch(t, srv.URL, dir, 20_000, "--snapshot-every", "1ms")
	// Snapshots are published (renamed into place): up to three while the run starts and
	// loads, then one per batch of answers. Once five are, the next one begins: kill it.
	for range 5 {
		waitName(t, events, filepath.Base(snapshot))
	}
	waitName(t, events, filepath.Base(tmp))
	fetch.Process.Signal(syscall.SIGKILL)
	fetch.Wait()
	if _, err := os.Stat(tmp); err != nil {
		t.Errorf("no temp file after kill -9 during a snapshot (%v): the kill came too late to test its removal", err)
	}

	for _, path := range []string{snapshot, db} {
		h, err := store.Open(context.Background(), path, store.Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("open %s after kill -9: %v", filepath.Base(path), err)
		}
		checks := queryInt(t, h, "SELECT count(*) FROM status_checks")
		answered := queryInt(t, h, "SELECT answered FROM runs WHERE run_id = 1")
		if checks != answered || checks == 0 && path == snapshot {
			t.Errorf("%s after kill -9: %d status_checks, runs.answered %d; want whole batches", filepath.Base(path), checks, answered)
		}
		h.Close()
	}

	// The next fetch, publishing no snapshot (which would replace the temp file), removes
	// it; the one after publishes one that answers as the database.
	api := []string{"--db", db, "--api-url", srv.URL, "--api-key", smsbattest.DefaultAPIKey, "--rate", "0", "--concurrency", "16"}
	r := runCLI(t, dir, "", append(append([]string{"fetch", "--snapshot-every", "0"}, api...), "camp.csv")...)
	if r.code != 0 {
		t.Fatalf("the next fetch = exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(tmp); err == nil {
		t.Errorf("the next fetch left the killed writer's temp file")
	}
	if r := runCLI(t, dir, "", append(append([]string{"fetch"}, api...), "camp.csv")...); r.code != 0 {
		t.Fatalf("the fetch after = exit %d: %s", r.code, r.stderr)
	}
	main := runCLI(t, dir, "", "report", "--db", db, "--format", "json", "delivery", "runs")
	snap := runCLI(t, dir, "", "report", "--db", snapshot, "--format", "json", "delivery", "runs")
	if diff := cmp.Diff(main.stdout, snap.stdout); main.code != 0 || diff != "" {
		t.Errorf("after the next fetch, the snapshot differs from the database (-database +snapshot):\n%s", diff)
	}
}
