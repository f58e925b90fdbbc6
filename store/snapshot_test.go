package store_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/report"
	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/store"
)

// Helper processes for the tests of snapshots (see TestMain): DuckDB's lock is a POSIX
// lock, held per process, so only another process can find the file held.
const (
	holdRWEnv = "BATSTAT_STORE_TEST_HOLD_RW" // open the file read-write, say "held", wait for stdin to end
	probeEnv  = "BATSTAT_STORE_TEST_PROBE"   // try to open the file read-write and print what happened
)

// snapshotHelper runs the helper process the environment asks for, if any, and exits.
func snapshotHelper() {
	if path := os.Getenv(holdRWEnv); path != "" {
		db, err := store.Open(context.Background(), path, store.Options{})
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("held")
		io.Copy(io.Discard, os.Stdin)
		db.Close()
		os.Exit(0)
	}
	if path := os.Getenv(probeEnv); path != "" {
		db, err := store.Open(context.Background(), path, store.Options{})
		if err == nil {
			db.Close()
			fmt.Println("opened")
		} else {
			fmt.Println(err)
		}
		os.Exit(0)
	}
}

// holdFile holds path read-write in a child process until the test ends, or until the
// returned release is called; it returns the child's PID.
func holdFile(t *testing.T, path string) (pid int, release func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdRWEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { stdin.Close(); cmd.Wait() }) }
	t.Cleanup(release)
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "held\n" {
		t.Fatalf("the holder could not open %s: %s", path, line)
	}
	return cmd.Process.Pid, release
}

// fixture opens a fresh database holding the reports' fixture (testdata/report).
func fixture(t *testing.T) *store.DB {
	t.Helper()
	db := openTemp(t)
	sqlText, err := os.ReadFile(filepath.Join("..", "testdata", "report", "fixture.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(string(sqlText)); err != nil {
		t.Fatalf("load fixture: %v", err)
	}
	return db
}

func openRO(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// dump is everything a reader can ask of a database: its catalog (tables, views, macros,
// sequences, with their SQL), every row of every table and view, and every built-in
// report rendered as JSON.
func dump(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	query := func(key, q string) {
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var b strings.Builder
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, vals...)
		}
		out[key] = b.String()
	}
	query("tables", `SELECT table_name, sql FROM duckdb_tables() WHERE NOT temporary ORDER BY ALL`)
	query("views", `SELECT view_name, sql FROM duckdb_views() WHERE NOT internal AND NOT temporary ORDER BY ALL`)
	query("macros", `SELECT function_name, macro_definition FROM duckdb_functions() WHERE function_type LIKE '%macro%' AND NOT internal ORDER BY ALL`)
	query("sequences", `SELECT sequence_name, last_value FROM duckdb_sequences() ORDER BY ALL`)
	for _, name := range []string{"batstat_meta", "runs", "messages", "status_checks", "status_latest", "fetch_errors", "rejected_rows", "message_status"} {
		query(name, `SELECT * FROM `+name+` ORDER BY ALL`)
	}
	defs, err := report.Defs("")
	if err != nil {
		t.Fatal(err)
	}
	asOf := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, d := range defs {
		res, err := report.Run(ctx, db, d, report.Filter{AsOf: asOf})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := report.Render(&buf, report.FormatJSON, []*report.Result{res}); err != nil {
			t.Fatal(err)
		}
		out["report "+d.Name] = buf.String()
	}
	return out
}

// reopened closes db and opens its file again read-only, as another process would read
// it: the process that wrote a macro or a sequence shows them as written, a later one as
// DuckDB stored them (CAST(x AS "TIMESTAMP WITH TIME ZONE") becomes CAST(x AS TIMESTAMP
// WITH TIME ZONE); a sequence's last_value is the next one).
func reopened(t *testing.T, db *store.DB) *store.DB {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return openRO(t, db.Path)
}

// A snapshot answers what the database answers: the same catalog, rows and reports.
func TestSnapshotAnswersAsTheDatabase(t *testing.T) {
	db := fixture(t)
	st, err := db.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := db.Path + ".snapshot"; st.Path != want || store.SnapshotPath(db.Path) != want {
		t.Errorf("snapshot published at %s, SnapshotPath %s; want %s", st.Path, store.SnapshotPath(db.Path), want)
	}
	want := dump(t, reopened(t, db).DB)
	if len(want["macros"]) == 0 || len(want["views"]) == 0 || len(want["report delivery"]) < 10 {
		t.Fatalf("the fixture's dump lacks macros, views or reports:\n%v", want)
	}
	got := dump(t, openRO(t, st.Path).DB)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the snapshot answers differently from the database (-database +snapshot):\n%s", diff)
	}
	if _, err := os.Stat(st.Path + ".tmp"); err == nil {
		t.Errorf("the temp file is left after publishing")
	}
	if fi, err := os.Stat(st.Path); err != nil || !fi.ModTime().Equal(st.Taken) {
		t.Errorf("snapshot modification time = %v (%v), want the instant it holds, %v", fi.ModTime(), err, st.Taken)
	}
}

// runWriter writes a run through store's write API, as a fetch does.
type runWriter struct {
	t     *testing.T
	db    *store.DB
	runID int64
	ids   []string
	batch *store.Batch
}

// startRun starts a run that loads n messages of campaign, ready for answers.
func startRun(t *testing.T, db *store.DB, campaign string, n int) *runWriter {
	t.Helper()
	ctx := context.Background()
	runID, err := db.StartRun(ctx, store.RunStart{Inputs: campaign + ".csv"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	l, err := db.StartLoad(ctx, conn, store.LoadOptions{RunID: runID, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	w := &runWriter{t: t, db: db, runID: runID}
	for i := range n {
		id := fmt.Sprintf("%s-%06d", campaign, i)
		w.ids = append(w.ids, id)
		if err := l.Stage(&store.Message{MessageID: id, Campaign: campaign, SourceFile: campaign + ".csv", SourceLine: int64(i + 2)}); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 999 {
			if err := l.Settle(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if w.batch, err = db.NewBatch(ctx, runID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.batch.Close() })
	return w
}

// answer commits one batch answering ids.
func (w *runWriter) answer(ids []string) error {
	cost := smsbat.Money(50_000)
	for _, id := range ids {
		if err := w.batch.AddAnswer(&store.Answer{MessageID: id, At: time.Now(), HTTPStatus: 200, Attempts: 1,
			Status: &smsbat.Status{DeliveryStatus: smsbat.StatusDelivered, Cost: &cost, BillCurrency: "UAH"},
			Body:   []byte(`{"deliverystatus":"delivered"}`)}); err != nil {
			return err
		}
	}
	if err := w.batch.Flush(); err != nil {
		return err
	}
	_, err := w.batch.Commit(context.Background(), store.RunTotals{})
	return err
}

// Each snapshot holds every commit made before it and none after.
func TestSnapshotHoldsEveryCommitBeforeIt(t *testing.T) {
	db := openTemp(t)
	w := startRun(t, db, "spring", 3000)
	ctx := context.Background()
	for i := 0; i < 3000; i += 1000 {
		if err := w.answer(w.ids[i : i+1000]); err != nil {
			t.Fatal(err)
		}
		st, err := db.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		snap := openRO(t, st.Path)
		var checks, answered int64
		if err := snap.QueryRow(`SELECT (SELECT count(*) FROM status_checks), (SELECT answered FROM runs)`).Scan(&checks, &answered); err != nil {
			t.Fatal(err)
		}
		if want := int64(i + 1000); checks != want || answered != want {
			t.Errorf("snapshot after %d answers holds %d status_checks, runs.answered %d", want, checks, answered)
		}
		snap.Close()
	}
	if err := db.FinishRun(ctx, w.runID, "ok", nil, store.RunCounts{}); err != nil {
		t.Fatal(err)
	}
	st, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.batch.Close()
	if diff := cmp.Diff(dump(t, reopened(t, db).DB), dump(t, openRO(t, st.Path).DB)); diff != "" {
		t.Errorf("the final snapshot differs from the database (-database +snapshot):\n%s", diff)
	}
}

// Snapshots taken while batches commit and a load settles, from other goroutines, each
// hold whole commits: every answer with its run counters, every answered message in
// status_latest, every chunk of the load whole.
func TestSnapshotsWhileWriting(t *testing.T) {
	db := openTemp(t)
	const n, batch = 20_000, 500
	w := startRun(t, db, "spring", n)
	ctx := context.Background()
	errc := make(chan error, 2)
	go func() {
		for i := 0; i < n; i += batch {
			if err := w.answer(w.ids[i : i+batch]); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	go func() {
		// A second run loading its inputs meanwhile, in chunks of 1000.
		runID, err := db.StartRun(ctx, store.RunStart{})
		if err != nil {
			errc <- err
			return
		}
		conn, err := db.Conn(ctx)
		if err != nil {
			errc <- err
			return
		}
		defer conn.Close()
		l, err := db.StartLoad(ctx, conn, store.LoadOptions{RunID: runID, At: time.Now()})
		if err != nil {
			errc <- err
			return
		}
		defer l.Close()
		for i := range 10_000 {
			if err := l.Stage(&store.Message{MessageID: fmt.Sprintf("summer-%06d", i), Campaign: "summer"}); err != nil {
				errc <- err
				return
			}
			if i%1000 == 999 {
				if err := l.Settle(ctx); err != nil {
					errc <- err
					return
				}
			}
		}
		_, err = l.Finish(ctx)
		errc <- err
	}()
	var snaps []string
	for done := 0; done < 2; {
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
			done++
			continue
		default:
		}
		st, err := db.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Kept to check after the writers are done, so that the check does not slow them.
		keep := fmt.Sprintf("%s.%d", st.Path, len(snaps))
		if err := os.Rename(st.Path, keep); err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, keep)
	}
	if len(snaps) < 3 {
		t.Logf("only %d snapshots were taken while writing", len(snaps))
	}
	for _, p := range snaps {
		snap := openRO(t, p)
		var checks, latest, answered, summer int64
		if err := snap.QueryRow(`SELECT (SELECT count(*) FROM status_checks), (SELECT count(*) FROM status_latest),
			(SELECT answered FROM runs WHERE run_id = 1), (SELECT count(*) FROM messages WHERE campaign = 'summer')`,
		).Scan(&checks, &latest, &answered, &summer); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if checks%batch != 0 || latest != checks || answered != checks || summer%1000 != 0 {
			t.Errorf("%s holds %d status_checks, %d status_latest, runs.answered %d, %d summer messages; want whole batches of %d and chunks of 1000",
				p, checks, latest, answered, summer, batch)
		}
		snap.Close()
	}
}

// Publishing a snapshot keeps the database locked against other processes: DuckDB's
// POSIX lock goes as soon as the process closes any descriptor of the file.
func TestSnapshotKeepsTheLock(t *testing.T) {
	db := fixture(t)
	for i := range 2 {
		if _, err := db.Snapshot(context.Background()); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), probeEnv+"="+db.Path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), "in use by") {
			t.Errorf("after snapshot %d another process opening the database got %q, want it refused as in use", i+1, out)
		}
	}
}

// A read-write open removes the temp file a writer killed while publishing left; a
// read-only open leaves the directory alone.
func TestOpenRemovesSnapshotTemp(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.duckdb")
	tmp := store.SnapshotPath(path) + ".tmp"
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	os.WriteFile(tmp, []byte("half a snapshot"), 0o644)
	ro, err := store.Open(ctx, path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	ro.Close()
	if _, err := os.Stat(tmp); err != nil {
		t.Errorf("a read-only open touched the temp file: %v", err)
	}
	db, err = store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after a read-write open the temp file is still there (%v)", err)
	}
}

func fileState(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x %v", sha256.Sum256(b), fi.ModTime())
}

// While another process holds the database, OpenReader opens its snapshot, says so with
// the run's progress, and writes nothing: not the snapshot, not a WAL beside it.
func TestOpenReaderFallsBackToTheSnapshot(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	w := startRun(t, db, "spring", 3000)
	if err := w.answer(w.ids[:1200]); err != nil {
		t.Fatal(err)
	}
	st, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.batch.Close()
	db.Close()
	path := db.Path

	// Free: the database itself.
	r, err := store.OpenReader(ctx, path, store.Options{}, store.Wait{})
	if err != nil {
		t.Fatal(err)
	}
	if r.FromSnapshot != nil || r.Path != path {
		t.Errorf("OpenReader of a free database opened %s (snapshot %v), want the database", r.Path, r.FromSnapshot)
	}
	r.Close()

	pid, _ := holdFile(t, path)
	before := fileState(t, st.Path)
	r, err = store.OpenReader(ctx, path, store.Options{}, store.Wait{})
	if err != nil {
		t.Fatalf("OpenReader while the database is held: %v", err)
	}
	want := &store.SnapshotInfo{Path: st.Path, Taken: st.Taken,
		Run: &store.RunProgress{RunID: 1, Outcome: store.OutcomeRunning, Requested: 3000, Asked: 1200}}
	if diff := cmp.Diff(want, r.FromSnapshot); diff != "" {
		t.Errorf("OpenReader while PID %d holds the database (-want +got):\n%s", pid, diff)
	}
	var n int64
	if err := r.QueryRow(`SELECT count(*) FROM message_status WHERE deliverystatus IS NOT NULL`).Scan(&n); err != nil || n != 1200 {
		t.Errorf("the snapshot shows %d answered messages (%v), want 1200", n, err)
	}
	if _, err := r.Exec(`INSERT INTO batstat_meta VALUES ('x', 'y')`); err == nil {
		t.Errorf("the snapshot took an INSERT")
	}
	r.Close()
	if after := fileState(t, st.Path); after != before {
		t.Errorf("reading the snapshot changed it: %s, was %s", after, before)
	}
	if _, err := os.Stat(st.Path + ".wal"); err == nil {
		t.Errorf("reading the snapshot left a WAL beside it")
	}
}

// A snapshot of an older schema is not upgraded: upgrading writes, and a snapshot is
// never written but by its writer.
func TestOpenReaderDoesNotUpgradeASnapshot(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.duckdb")
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := os.Rename(oldFile(t, 2), store.SnapshotPath(path)); err != nil {
		t.Fatal(err)
	}
	before := fileState(t, store.SnapshotPath(path))
	r, err := store.OpenReader(ctx, store.SnapshotPath(path), store.Options{}, store.Wait{})
	if err == nil {
		r.Close()
		t.Errorf("OpenReader of PATH.snapshot opened a snapshot of schema 2")
	}
	holdFile(t, path)
	r, err = store.OpenReader(ctx, path, store.Options{}, store.Wait{})
	if err == nil {
		r.Close()
		t.Fatalf("OpenReader opened a snapshot of schema 2")
	}
	if !strings.Contains(err.Error(), "schema version 2") {
		t.Errorf("OpenReader of an old snapshot = %v, want the schema named", err)
	}
	if after := fileState(t, store.SnapshotPath(path)); after != before {
		t.Errorf("OpenReader changed an old snapshot")
	}
}

// A reader given PATH.snapshot itself reads it as a snapshot, saying so.
func TestOpenReaderOfASnapshotPath(t *testing.T) {
	ctx := context.Background()
	db := fixture(t)
	st, err := db.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := store.OpenReader(ctx, st.Path, store.Options{}, store.Wait{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.FromSnapshot == nil || r.FromSnapshot.Path != st.Path || !r.FromSnapshot.Taken.Equal(st.Taken) {
		t.Errorf("OpenReader(%s).FromSnapshot = %+v, want the snapshot taken at %v", st.Path, r.FromSnapshot, st.Taken)
	}
}

// With neither the database nor a snapshot to read, OpenReader waits, and names the
// process that holds the file when the wait runs out; it reads the database as soon as
// it is free.
func TestOpenReaderWaits(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "w.duckdb")
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	pid, release := holdFile(t, path)

	_, err = store.OpenReader(ctx, path, store.Options{}, store.Wait{Timeout: 100 * time.Millisecond})
	var le *store.LockedError
	if !errors.As(err, &le) || le.PID != fmt.Sprint(pid) || le.Waited != 100*time.Millisecond ||
		!strings.Contains(err.Error(), fmt.Sprintf("PID %d", pid)) {
		t.Errorf("OpenReader of a held database without a snapshot = %v, want a LockedError naming PID %d after waiting 100ms", err, pid)
	}

	waiting := make(chan struct{})
	go func() { <-waiting; release() }()
	r, err := store.OpenReader(ctx, path, store.Options{}, store.Wait{Timeout: time.Minute,
		Waiting: func(*store.LockedError) { close(waiting) }})
	if err != nil {
		t.Fatalf("OpenReader once the holder let go: %v", err)
	}
	if r.FromSnapshot != nil {
		t.Errorf("OpenReader read the snapshot %v, want the database", r.FromSnapshot)
	}
	r.Close()
}

// PublishSnapshots publishes while the database changes, and not while it does not.
func TestChanged(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	if _, err := db.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if db.Changed() {
		t.Errorf("Changed right after a snapshot")
	}
	if err := db.SetMeta(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if !db.Changed() {
		t.Errorf("not Changed after a write")
	}
}
