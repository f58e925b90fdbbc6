package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/webhook"
)

var received = time.Date(2025, 1, 23, 10, 30, 1, 123456789, time.UTC)

// line is the spool line of an event for message id, as the receiver writes it.
func line(id string) string {
	ev, err := webhook.ParseEvent([]byte(`{"messageId":"` + id + `","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z","cost":0.05}`))
	if err != nil {
		panic(err)
	}
	return string(webhook.AppendLines(nil, received, "203.0.113.7:51234", []webhook.Event{ev}))
}

// got is what reading gives, one string per yielded item: "ID@line→next" for a record,
// "skip@line→next: error" for a skipped line, "error: ..." for anything else.
func readAll(t *testing.T, path string, from webhook.Position) []string {
	t.Helper()
	var got []string
	for rec, err := range webhook.ReadFile(context.Background(), path, from) {
		var le *webhook.LineError
		switch {
		case errors.As(err, &le):
			kind := "skip"
			if le.Torn {
				kind = "torn"
			}
			if le.Line != rec.Line || le.Offset != rec.Offset || le.File != path {
				t.Errorf("LineError at %s:%d+%d, record at %s:%d+%d", le.File, le.Line, le.Offset, rec.File, rec.Line, rec.Offset)
			}
			got = append(got, fmt.Sprintf("%s@%d→%d/%d: %v", kind, rec.Line, rec.Next.Line, rec.Next.Offset, le.Err))
		case err != nil:
			got = append(got, "error: "+err.Error())
		default:
			if !rec.ReceivedAt.Equal(received) || rec.RemoteAddr != "203.0.113.7:51234" || rec.Event.Cost == nil || *rec.Event.Cost != 50000 {
				t.Errorf("record %+v: wrong received_at, remote_addr or cost", rec)
			}
			got = append(got, fmt.Sprintf("%s@%d→%d/%d", rec.Event.MessageID, rec.Line, rec.Next.Line, rec.Next.Offset))
		}
	}
	return got
}

func TestReadFile(t *testing.T) {
	a, b, c := line("a"), line("b"), line("c")
	la, lb := int64(len(a)), int64(len(b))
	reordered := `{ "event": ` + strings.TrimSuffix(strings.SplitN(a, `"event":`, 2)[1], "}\n") +
		`, "remote_addr": "203.0.113.7:51234", "received_at": "2025-01-23T10:30:01.123456789Z" }` + "\r\n"
	tests := []struct {
		name    string
		content string
		from    webhook.Position
		want    []string
	}{
		{"empty file", "", webhook.Position{}, nil},
		{"whole lines", a + b + c, webhook.Position{},
			[]string{fmt.Sprintf("a@1→1/%d", la), fmt.Sprintf("b@2→2/%d", la+lb), fmt.Sprintf("c@3→3/%d", la+lb+int64(len(c)))}},
		{"resumed after the first line", a + b, webhook.Position{Offset: la, Line: 1},
			[]string{fmt.Sprintf("b@2→2/%d", la+lb)}},
		{"resumed at the end", a + b, webhook.Position{Offset: la + lb, Line: 2}, nil},
		{"a torn last line is skipped, and reading resumes at its start",
			a + b[:len(b)/2], webhook.Position{},
			[]string{fmt.Sprintf("a@1→1/%d", la), fmt.Sprintf("torn@2→1/%d: %d bytes without a line end", la, len(b)/2)}},
		{"a last line complete but for its line end is torn too", a + strings.TrimSuffix(b, "\n"), webhook.Position{},
			[]string{fmt.Sprintf("a@1→1/%d", la), fmt.Sprintf("torn@2→1/%d: %d bytes without a line end", la, lb-1)}},
		{"a malformed middle line is skipped", a + "{\"received_at\":\"2025-01\n" + c, webhook.Position{},
			[]string{fmt.Sprintf("a@1→1/%d", la), fmt.Sprintf("skip@2→2/%d: not a spool line: unexpected end of JSON input (at byte 23)", la+24),
				fmt.Sprintf("c@3→3/%d", la+24+int64(len(c)))}},
		{"a line whose event breaks a rule", a + strings.Replace(b, `"timestamp":"2025-01-23T10:30:00Z"`, `"timestamp":"now"`, 1), webhook.Position{},
			[]string{fmt.Sprintf("a@1→1/%d", la), fmt.Sprintf("skip@2→2/%d: event: timestamp: \"now\" is not an RFC 3339 time such as 2025-01-23T10:30:00Z", la+lb-int64(len("2025-01-23T10:30:00Z")-len("now")))}},
		{"a line without received_at", `{"event":{}}` + "\n", webhook.Position{},
			[]string{"skip@1→1/13: not a spool line: no received_at or no event"}},
		{"a blank line", a + "\n" + c, webhook.Position{},
			[]string{fmt.Sprintf("a@1→1/%d", la), fmt.Sprintf("skip@2→2/%d: not a spool line: unexpected end of JSON input (at byte 0)", la+1), fmt.Sprintf("c@3→3/%d", la+1+int64(len(c)))}},
		{"fields in another order, CRLF and spaces: read as JSON", reordered, webhook.Position{},
			[]string{fmt.Sprintf("a@1→1/%d", len(reordered))}},
		{"a line too long", a + `{"x":"` + strings.Repeat("y", webhook.MaxLineBytes) + "\"}\n" + c, webhook.Position{},
			[]string{fmt.Sprintf("a@1→1/%d", la), fmt.Sprintf("skip@2→2/%d: line of %d bytes, over %d", la+int64(webhook.MaxLineBytes)+9, webhook.MaxLineBytes+9, webhook.MaxLineBytes),
				fmt.Sprintf("c@3→3/%d", la+int64(webhook.MaxLineBytes)+9+int64(len(c)))}},
		{"a position past the end", a, webhook.Position{Offset: la + 1, Line: 1},
			[]string{fmt.Sprintf("error: spool F: resume offset %d is past its end (%d bytes): the file was replaced or cut", la+1, la)}},
		{"a position inside a line", a + b, webhook.Position{Offset: 5, Line: 1},
			[]string{"error: spool F: resume offset 5 is not at the start of a line: the file was replaced or cut"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events-20250123T10.ndjson")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got := readAll(t, path, tt.from)
			for i := range got {
				got[i] = strings.ReplaceAll(got[i], path, "F")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReadFile from %+v (-want +got):\n%s", tt.from, diff)
			}
		})
	}
}

// Reading again from each record's Next gives the rest of the file: a loader that stops
// anywhere and resumes loads every line once.
func TestReadFileResumesAnywhere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events-20250123T10.ndjson")
	content := line("a") + line("b") + "garbage\n" + line("c") + line("d")[:10]
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	all := readAll(t, path, webhook.Position{})
	var pos []webhook.Position
	for rec := range webhook.ReadFile(context.Background(), path, webhook.Position{}) {
		pos = append(pos, rec.Next)
	}
	for i, p := range pos {
		if diff := cmp.Diff(all[i+1:], readAll(t, path, p)); diff != "" && i < len(pos)-1 {
			t.Errorf("resumed after item %d at %+v (-want +got):\n%s", i, p, diff)
		}
	}
}

func TestSpoolFilesAndReadSpool(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"events-20250123T11.ndjson":     line("c"),
		"events-20250123T09.ndjson":     line("a") + line("b"),
		"events-20250123T9.ndjson":      line("x"), // not an hour
		"events-20250123T10.ndjson.bak": line("x"),
		"notes.txt":                     "x",
		".lock":                         "123\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(t.TempDir(), "kept.ndjson")
	os.WriteFile(other, []byte(line("z")), 0o644)
	files, err := webhook.SpoolFiles(dir, other, filepath.Join(dir, "events-20250123T09.ndjson"))
	want := []string{filepath.Join(dir, "events-20250123T09.ndjson"), filepath.Join(dir, "events-20250123T11.ndjson"), other}
	if err != nil || !cmp.Equal(files, want) {
		t.Errorf("SpoolFiles = %q, %v; want %q", files, err, want)
	}
	if _, err := webhook.SpoolFiles(filepath.Join(dir, "none")); err == nil {
		t.Errorf("SpoolFiles of a missing path: no error")
	}

	from := map[string]webhook.Position{}
	var ids []string
	for rec, err := range webhook.ReadSpool(context.Background(), []string{dir}, from) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.Event.MessageID)
		from[rec.File] = rec.Next
	}
	if want := []string{"a", "b", "c"}; !cmp.Equal(ids, want) {
		t.Errorf("ReadSpool = %q, want %q", ids, want)
	}
	// More arrives; reading from the positions kept gives only what is new.
	f, _ := os.OpenFile(filepath.Join(dir, "events-20250123T11.ndjson"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(line("d"))
	f.Close()
	ids = nil
	for rec, err := range webhook.ReadSpool(context.Background(), []string{dir}, from) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.Event.MessageID)
	}
	if want := []string{"d"}; !cmp.Equal(ids, want) {
		t.Errorf("ReadSpool resumed = %q, want %q", ids, want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range webhook.ReadSpool(ctx, []string{dir}, nil) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ReadSpool with a cancelled context yields %v, want context.Canceled", err)
		}
	}
}
