package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func testEvent(t *testing.T, id string) Event {
	t.Helper()
	ev, err := ParseEvent([]byte(`{"messageId":"` + id + `","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// readIDs reads the spool in dir and fails on any line that does not read cleanly.
func readIDs(t *testing.T, dir string) []string {
	t.Helper()
	var ids []string
	for rec, err := range ReadSpool(context.Background(), []string{dir}, nil) {
		if err != nil {
			t.Fatalf("reading the spool: %v", err)
		}
		ids = append(ids, rec.Event.MessageID)
	}
	return ids
}

// Appends that arrive while the appender fsyncs share the next fsync: one for the first
// append, one for all the others.
func TestGroupCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		sp, err := OpenSpool(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		calls := 0
		sp.sync = func(f *os.File) error {
			calls++ // only the appender goroutine calls sync
			if calls == 1 {
				<-release
			}
			return f.Sync()
		}
		const n = 50
		at := time.Date(2025, 1, 23, 10, 30, 0, 0, time.UTC)
		errs := make(chan error, n)
		go func() { errs <- sp.Append(context.Background(), at, "192.0.2.1:1", []Event{testEvent(t, "first")}) }()
		synctest.Wait() // the appender is in its first fsync
		for i := 1; i < n; i++ {
			go func() {
				errs <- sp.Append(context.Background(), at, "192.0.2.1:1", []Event{testEvent(t, fmt.Sprint("m-", i)), testEvent(t, fmt.Sprint("m-", i, "-b"))})
			}()
		}
		synctest.Wait() // every other append is queued
		select {
		case err := <-errs:
			t.Fatalf("an append returned (%v) before its fsync", err)
		default:
		}
		close(release)
		for range n {
			if err := <-errs; err != nil {
				t.Errorf("Append: %v", err)
			}
		}
		if st := sp.Stats(); st.Syncs != 2 || st.Appends != n || st.Events != 2*n-1 {
			t.Errorf("stats = %+v, want 2 fsyncs for %d appends of %d events", st, n, 2*n-1)
		}
		if err := sp.Close(); err != nil {
			t.Fatal(err)
		}
		if ids := readIDs(t, dir); len(ids) != 2*n-1 || ids[0] != "first" {
			t.Errorf("spool holds %d events starting %q, want %d starting with the first", len(ids), ids[:1], 2*n-1)
		}
		if err := sp.Append(context.Background(), at, "", []Event{testEvent(t, "late")}); !errors.Is(err, ErrSpoolClosed) {
			t.Errorf("Append after Close = %v, want ErrSpoolClosed", err)
		}
	})
}

// checkingWriter looks at the spool at the moment a handler writes its status.
type checkingWriter struct {
	http.ResponseWriter
	check func(code int)
}

func (c *checkingWriter) WriteHeader(code int) {
	c.check(code)
	c.ResponseWriter.WriteHeader(code)
}

// A 200 is written only once the request's events are in the spool file and fsynced;
// a request whose fsync failed gets 500 (its lines may stay: they are whole), one whose
// write was cut short gets 500 and its partial line is cut off, and the spool reads
// cleanly afterwards.
func TestOKOnlyOnceOnDisk(t *testing.T) {
	dir := t.TempDir()
	rv, err := NewReceiver(Config{Spool: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer rv.Close()
	var mu sync.Mutex
	synced := map[string]int64{} // file → its size at its last successful fsync
	failNext, cutNext := false, false
	rv.spool.writeFile = func(f *os.File, b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if cutNext {
			cutNext = false
			n, _ := f.Write(b[:len(b)/2])
			return n, errors.New("injected short write: no space left on device")
		}
		return f.Write(b)
	}
	rv.spool.sync = func(f *os.File) error {
		mu.Lock()
		defer mu.Unlock()
		if failNext {
			failNext = false
			return errors.New("injected fsync failure")
		}
		if err := f.Sync(); err != nil {
			return err
		}
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		synced[f.Name()] = fi.Size()
		return nil
	}
	var checked int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		rv.ServeHTTP(&checkingWriter{w, func(code int) {
			mu.Lock()
			defer mu.Unlock()
			files, _ := filepath.Glob(filepath.Join(dir, "events-*.ndjson"))
			var onDisk, durable bool
			for _, f := range files {
				b, _ := os.ReadFile(f)
				if i := strings.Index(string(b), `"messageId":"`+id+`"`); i >= 0 {
					onDisk = true
					end := int64(i + strings.IndexByte(string(b[i:]), '\n') + 1)
					durable = synced[f] >= end
				}
			}
			if (code == 200) != (onDisk && durable) {
				t.Errorf("event %s answered %d while in the spool: %v, fsynced: %v", id, code, onDisk, durable)
			}
			checked++
		}}, r)
	}))
	defer srv.Close()
	send := func(id string) int {
		resp, err := http.Post(srv.URL+"/smsbat/status?id="+id, "application/json", strings.NewReader(
			`{"messageId":"`+id+`","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z"}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 5 {
		if code := send(fmt.Sprint("ok-", i)); code != 200 {
			t.Errorf("POST ok-%d = %d", i, code)
		}
	}
	mu.Lock()
	failNext = true
	mu.Unlock()
	if code := send("lost"); code != 500 {
		t.Errorf("POST with a failing fsync = %d, want 500", code)
	}
	if code := send("after"); code != 200 {
		t.Errorf("POST after a failed fsync = %d, want 200", code)
	}
	mu.Lock()
	cutNext = true
	mu.Unlock()
	if code := send("cut"); code != 500 {
		t.Errorf("POST with a short write = %d, want 500", code)
	}
	if code := send("last"); code != 200 {
		t.Errorf("POST after a short write = %d, want 200", code)
	}
	if checked != 9 {
		t.Errorf("%d answers checked, want 9", checked)
	}
	// "lost" is a whole line: it stays, unacknowledged. Half of "cut" is cut off.
	want := []string{"ok-0", "ok-1", "ok-2", "ok-3", "ok-4", "lost", "after", "last"}
	if got := readIDs(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("spool = %q, want %q", got, want)
	}
	if st := rv.spool.Stats(); st.Failed != 2 || st.Appends != 7 {
		t.Errorf("stats = %+v, want 7 appends and 2 failed", st)
	}
}
