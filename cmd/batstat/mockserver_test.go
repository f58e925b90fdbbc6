package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/internal/fakeapi"
	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/webhook"
)

// startMockServer runs `batstat mock-server` with args on a free port, stops it when the
// test ends, and returns the process, its base URL and the lines it wrote before the one
// naming it.
func startMockServer(t *testing.T, args ...string) (srv *exec.Cmd, url string, before []string) {
	t.Helper()
	srv = exec.Command(binary, append([]string{"mock-server", "--listen", "127.0.0.1:0"}, args...)...)
	pipe, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() })
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), "listening on "); ok {
			url, _, _ = strings.Cut(rest, " ")
			break
		}
		before = append(before, sc.Text())
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("mock-server %v said %q, want the address it listens on", args, before)
	}
	return srv, url, before
}

// TestMockServerSettleFlags fetches from `mock-server --settle-*` and checks every stored
// status against what the fake, given the same options, says the message answers now:
// the flags reach the handler, and the lifecycle runs on the clock.
func TestMockServerSettleFlags(t *testing.T) {
	dir := t.TempDir()
	ids := writeIDs(t, dir, "camp.csv", 300)
	settle := fakeapi.Settle{AtOnce: 0.3, Never: 0.1, Median: 10 * time.Second, Sigma: 1, Max: 5 * time.Minute}
	flags := []string{"--seed", "7", "--settle-at-once", "0.3", "--settle-never", "0.1",
		"--settle-median", "10s", "--settle-sigma", "1", "--settle-max", "5m"}
	tests := []struct {
		name   string
		sentAt string
		// want counts statuses: a campaign sent long ago has settled but for --settle-never;
		// one not sent yet is scheduled throughout.
		want func(status string) bool
	}{
		{"sent long ago", "2020-01-01T00:00:00Z", func(s string) bool { return s != "scheduled" }},
		{"not sent yet", "2999-01-01T00:00:00Z", func(s string) bool { return s == "scheduled" || s == "not_found" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, url, said := startMockServer(t, append(flags, "--settle-sent-at", tt.sentAt)...)
			if want := []string{"statuses settle on the clock from " + tt.sentAt}; !cmp.Equal(said, want) {
				t.Errorf("mock-server said %q before listening, want %q", said, want)
			}
			db := filepath.Join(t.TempDir(), "s.duckdb")
			if r := runCLI(t, dir, "", "fetch", "--db", db, "--rate", "0", "--api-url", url, "--api-key", fakeapi.DefaultAPIKey, ids); r.code != 0 {
				t.Fatalf("fetch against mock-server = exit %d: %s", r.code, r.stderr)
			}
			rows, err := openTestDB(t, db).Query(`SELECT message_id, deliverystatus FROM message_status`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			got := map[string]string{}
			for rows.Next() {
				var id, status string
				if err := rows.Scan(&id, &status); err != nil {
					t.Fatal(err)
				}
				got[id] = status
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}

			opts := fakeapi.DefaultOptions()
			opts.Seed = 7
			s := settle
			s.SentAt, _ = time.Parse(time.RFC3339, tt.sentAt)
			opts.Settle = &s
			h := fakeapi.NewHandler(opts)
			want := map[string]string{}
			kinds := map[string]int{}
			now := time.Now()
			for id := range got {
				a := h.AnswerAtTime(id, now)
				want[id] = "not_found"
				if a.Status != nil {
					want[id] = a.Status.DeliveryStatus
				}
				if !tt.want(got[id]) {
					t.Errorf("message %s = %s, unexpected for a campaign %s", id, got[id], tt.name)
				}
				kinds[got[id]]++
			}
			if len(got) != 300 {
				t.Errorf("message_status has %d rows, want 300", len(got))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("stored statuses (-fake +stored):\n%s", diff)
			}
			t.Logf("statuses: %v", kinds)
		})
	}
}

func TestMockServerSettleUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		flag string
	}{
		{[]string{"--settle-sent-at", "yesterday"}, "--settle-sent-at"},
		{[]string{"--settle-median", "10s", "--max-polls", "3"}, "--max-polls"},
	} {
		r := runCLI(t, dir, "", append([]string{"mock-server", "--listen", "127.0.0.1:0"}, tt.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.flag) {
			t.Errorf("batstat mock-server %v = exit %d, stderr:\n%s\nwant exit 2 naming %s", tt.args, r.code, r.stderr, tt.flag)
		}
	}
}

// TestMockServerPushes runs `mock-server --push-url` against `webhook serve`: the spool
// ends up with every status change the fake says its messages go through (and nothing
// else), some twice, some out of order.
func TestMockServerPushes(t *testing.T) {
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	ids := writeIDs(t, dir, "camp.csv", 300)
	rcv := startReceiverProc(t, spool, "--token", "tok")
	sentAt := "2020-01-01T00:00:00Z" // long ago: every change is due at once
	mock := startProc(t, "listening on", "mock-server", "--listen", "127.0.0.1:0", "--seed", "7",
		"--settle-sent-at", sentAt, "--settle-never", "0.1", "--settle-at-once", "0.2",
		"--push-url", rcv.url+webhook.DefaultPath, "--push-token", "tok", "--push-ids", ids,
		"--push-duplicates", "0.2", "--push-reorder", "0.3")
	done := mock.waitLine(t, "pushed ")
	if !strings.Contains(done, "given up 0") && !strings.Contains(done, " 0 given up") {
		t.Errorf("mock-server: %s", done)
	}

	// What the fake says, with the same options.
	opts := fakeapi.DefaultOptions()
	opts.Seed = 7
	s := fakeapi.Settle{Never: 0.1, AtOnce: 0.2, Median: 10 * time.Second, Sigma: 1, Max: 5 * time.Minute}
	s.SentAt, _ = time.Parse(time.RFC3339, sentAt)
	opts.Settle = &s
	h := fakeapi.NewHandler(opts)
	type change struct {
		id, status string
		at         int64
	}
	want := map[change]bool{}
	for i := range 300 {
		id := fmt.Sprintf("camp-%06d", i)
		e := h.Expected(id)
		if e.NotFound {
			continue
		}
		if e.ProcessingAt.After(s.SentAt) {
			want[change{id, "scheduled", s.SentAt.UnixNano()}] = true
		}
		if e.Stuck || e.SettleAt.After(e.ProcessingAt) {
			want[change{id, "processing", e.ProcessingAt.UnixNano()}] = true
		}
		if !e.Stuck {
			want[change{id, e.Final.Status.DeliveryStatus, e.SettleAt.UnixNano()}] = true
		}
	}
	got := map[change]int{}
	lines, late := 0, 0
	final := map[string]bool{}
	for rec, err := range webhook.ReadSpool(context.Background(), []string{spool}, nil) {
		if err != nil {
			t.Fatalf("reading the spool: %v", err)
		}
		lines++
		ev := rec.Event
		got[change{ev.MessageID, ev.DeliveryStatus, ev.Timestamp.UnixNano()}]++
		if smsbat.IsTerminal(ev.DeliveryStatus) {
			final[ev.MessageID] = true
		} else if final[ev.MessageID] {
			late++ // a non-terminal status after the message's terminal one
		}
	}
	for c := range want {
		if got[c] == 0 {
			t.Errorf("change %v not in the spool", c)
		}
	}
	for c := range got {
		if !want[c] {
			t.Errorf("spool has %v, not a change of the fake", c)
		}
	}
	if lines <= len(want) || late == 0 {
		t.Errorf("%d lines for %d changes, %d after their final status: want duplicates and reordering", lines, len(want), late)
	}
	t.Logf("%d changes, %d lines, %d arriving after the final status", len(want), lines, late)
}

func TestMockServerPushOptions(t *testing.T) {
	dir := t.TempDir()
	ids := writeIDs(t, dir, "camp.csv", 3)
	o, err := parse(t, mockServerCommand, "", "mock-server", "--push-url", "http://127.0.0.1:1/hook", "--push-ids", ids,
		"--push-token", "tok", "--push-duplicates", "0.1")
	if err != nil || o.push == nil || o.push.URL != "http://127.0.0.1:1/hook" || o.push.Token != "tok" || o.push.Duplicates != 0.1 ||
		!slices.Equal(o.pushFiles, []string{ids}) || o.fake.Settle == nil {
		t.Errorf("mock-server --push-* = %+v, %v; want the push options and statuses on the clock", o, err)
	}
	checkUsage(t, mockServerCommand, []usageCase{
		{[]string{"mock-server", "--push-ids", ids}, 2, []string{"--push-ids needs --push-url"}},
		{[]string{"mock-server", "--push-url", "http://127.0.0.1:1/"}, 2, []string{"--push-ids FILE"}},
		{[]string{"mock-server", "--push-url", "ftp://x/", "--push-ids", ids}, 2, []string{"--push-url"}},
		{[]string{"mock-server", "--push-url", "http://x/", "--push-ids", ids, "--push-reorder", "1.5"}, 2, []string{"--push-reorder 1.5"}},
		{[]string{"mock-server", "--push-url", "http://x/", "--push-ids", ids, "--max-polls", "3"}, 2, []string{"--max-polls"}},
		{[]string{"mock-server", "--push-url", "http://x/", "--push-ids", filepath.Join(dir, "none-*.csv")}, 1, []string{"no files match"}},
	})
}
