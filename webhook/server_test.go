package webhook_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/webhook"
)

const token = "s3cret-Token"

// startReceiver serves a Receiver with cfg on a loopback port until the test ends, and
// returns its base URL.
func startReceiver(t testing.TB, cfg webhook.Config) (string, *webhook.Receiver) {
	t.Helper()
	if cfg.Spool == "" {
		cfg.Spool = t.TempDir()
	}
	rv, err := webhook.NewReceiver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), rv
}

// spooled returns the message IDs in the spool directory, in file and line order, and
// fails the test on any line that does not read cleanly.
func spooled(t *testing.T, dir string) []string {
	t.Helper()
	var ids []string
	for rec, err := range webhook.ReadSpool(context.Background(), []string{dir}, nil) {
		if err != nil {
			t.Fatalf("reading the spool: %v", err)
		}
		ids = append(ids, rec.Event.MessageID)
	}
	return ids
}

func event(id string) string {
	return `{"messageId":"` + id + `","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z","cost":0.05}`
}

type errorBody struct {
	Error struct{ Code, Message string }
}

func TestReceiverRefuses(t *testing.T) {
	dir := t.TempDir()
	url, _ := startReceiver(t, webhook.Config{Spool: dir, Token: token, MaxBody: 4096})
	good := event("m-1")
	bearer := map[string]string{"Authorization": "Bearer " + token}
	tests := []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		body    string
		chunked bool // no Content-Length
		status  int
		code    string
	}{
		{"bad JSON", "POST", "/smsbat/status", bearer, `{"messageId":`, false, 400, "BAD_EVENT"},
		{"empty body", "POST", "/smsbat/status", bearer, ``, false, 400, "BAD_EVENT"},
		{"form data", "POST", "/smsbat/status", bearer, `messageId=m-1&deliverystatus=delivered`, false, 400, "BAD_EVENT"},
		{"missing messageId", "POST", "/smsbat/status", bearer, `{"deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z"}`, false, 400, "BAD_EVENT"},
		{"empty messageId", "POST", "/smsbat/status", bearer, `{"messageId":"","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z"}`, false, 400, "BAD_EVENT"},
		{"missing deliverystatus", "POST", "/smsbat/status", bearer, `{"messageId":"m-1","timestamp":"2025-01-23T10:30:00Z"}`, false, 400, "BAD_EVENT"},
		{"missing timestamp", "POST", "/smsbat/status", bearer, `{"messageId":"m-1","deliverystatus":"delivered"}`, false, 400, "BAD_EVENT"},
		{"unparseable timestamp", "POST", "/smsbat/status", bearer, `{"messageId":"m-1","deliverystatus":"delivered","timestamp":"yesterday"}`, false, 400, "BAD_EVENT"},
		{"cost with seven decimals", "POST", "/smsbat/status", bearer, `{"messageId":"m-1","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z","cost":0.1234567}`, false, 400, "BAD_EVENT"},
		{"one bad event in a batch", "POST", "/smsbat/status", bearer, `[` + good + `,{"messageId":"m-2"}]`, false, 400, "BAD_EVENT"},
		{"no token", "POST", "/smsbat/status", nil, good, false, 401, "UNAUTHORIZED"},
		{"wrong token", "POST", "/smsbat/status", map[string]string{"Authorization": "Bearer " + token + "x"}, good, false, 401, "UNAUTHORIZED"},
		{"token cut short", "POST", "/smsbat/status", map[string]string{"Authorization": "Bearer " + token[:5]}, good, false, 401, "UNAUTHORIZED"},
		{"token as Basic", "POST", "/smsbat/status", map[string]string{"Authorization": "Basic " + token}, good, false, 401, "UNAUTHORIZED"},
		{"wrong token in the query", "POST", "/smsbat/status?token=nope", nil, good, false, 401, "UNAUTHORIZED"},
		{"token in another query parameter", "POST", "/smsbat/status?key=" + token, nil, good, false, 401, "UNAUTHORIZED"},
		{"GET", "GET", "/smsbat/status", bearer, ``, false, 405, "METHOD_NOT_ALLOWED"},
		{"PUT", "PUT", "/smsbat/status", bearer, good, false, 405, "METHOD_NOT_ALLOWED"},
		{"other path", "POST", "/smsbat/status/x", bearer, good, false, 404, "NOT_FOUND"},
		{"root", "POST", "/", bearer, good, false, 404, "NOT_FOUND"},
		{"POST to healthz", "POST", "/healthz", bearer, good, false, 405, "METHOD_NOT_ALLOWED"},
		{"body over --max-body", "POST", "/smsbat/status", bearer, "[" + strings.Repeat(good+",", 60) + good + "]", false, 413, "TOO_LARGE"},
		{"chunked body over --max-body", "POST", "/smsbat/status", bearer, "[" + strings.Repeat(good+",", 60) + good + "]", true, 413, "TOO_LARGE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length
			}
			req, err := http.NewRequest(tt.method, url+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb errorBody
			if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
				t.Errorf("%s %s: body is not a JSON error: %v", tt.method, tt.path, err)
			}
			if resp.StatusCode != tt.status || eb.Error.Code != tt.code || eb.Error.Message == "" {
				t.Errorf("%s %s = %d %+v, want %d %s with a message", tt.method, tt.path, resp.StatusCode, eb, tt.status, tt.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			switch tt.status {
			case 405:
				if resp.Header.Get("Allow") == "" {
					t.Errorf("405 without Allow")
				}
			case 401:
				if !strings.HasPrefix(resp.Header.Get("Www-Authenticate"), "Bearer") {
					t.Errorf("401 without WWW-Authenticate: Bearer")
				}
			}
		})
	}
	if ids := spooled(t, dir); len(ids) != 0 {
		t.Errorf("refused requests stored %q", ids)
	}
}

func post(t *testing.T, url, body string, headers ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReceiverAccepts(t *testing.T) {
	dir := t.TempDir()
	var log bytes.Buffer
	var logMu sync.Mutex
	url, rv := startReceiver(t, webhook.Config{Spool: dir, Token: token,
		Logger: slog.New(slog.NewJSONHandler(&lockedWriter{w: &log, mu: &logMu}, nil))})
	before := time.Now()
	for _, tt := range []struct {
		path, body string
		headers    []string
		want       string
	}{
		{"/smsbat/status", event("m-1"), []string{"Authorization", "Bearer " + token}, `{"accepted":1}`},
		{"/smsbat/status?token=" + token, "[" + event("m-2") + ",\n  " + event("m-3") + "]", nil, `{"accepted":2}`},
		{"/smsbat/status?token=" + token, "[]", nil, `{"accepted":0}`},
		{"/smsbat/status?token=nope&token=" + token, event("m-4"), []string{"Authorization", "bearer  " + token}, `{"accepted":1}`},
	} {
		if code, body := post(t, url+tt.path, tt.body, tt.headers...); code != 200 || strings.TrimSpace(body) != tt.want {
			t.Errorf("POST %q = %d %s, want 200 %s", tt.body, code, body, tt.want)
		}
	}
	after := time.Now()
	resp, err := http.Get(url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("GET /healthz = %v, %v; want 200", resp, err)
	}
	resp.Body.Close()

	var got []string
	for rec, err := range webhook.ReadSpool(context.Background(), []string{dir}, nil) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec.Event.MessageID)
		if rec.ReceivedAt.Before(before) || rec.ReceivedAt.After(after) || rec.ReceivedAt.Location() != time.UTC {
			t.Errorf("received_at %v, want UTC between %v and %v", rec.ReceivedAt, before, after)
		}
		if host, _, _ := net.SplitHostPort(rec.RemoteAddr); host != "127.0.0.1" {
			t.Errorf("remote_addr = %q, want 127.0.0.1:PORT", rec.RemoteAddr)
		}
		if want := event(rec.Event.MessageID); string(rec.Event.Raw) != want {
			t.Errorf("event = %s, want it as sent: %s", rec.Event.Raw, want)
		}
		if filepath.Base(rec.File) != webhook.FileName(rec.ReceivedAt) {
			t.Errorf("event received at %v is in %s", rec.ReceivedAt, rec.File)
		}
	}
	if want := []string{"m-1", "m-2", "m-3", "m-4"}; !cmp.Equal(got, want) {
		t.Errorf("spooled %q, want %q", got, want)
	}
	if st := rv.Spool().Stats(); st.Events != 4 || st.Appends != 3 || st.Syncs != 3 {
		t.Errorf("stats = %+v, want 4 events in 3 appends, 3 fsyncs", st)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if strings.Contains(log.String(), token) || strings.Contains(log.String(), "nope") {
		t.Errorf("the access log shows the token or the query:\n%s", log.String())
	}
	if n := strings.Count(log.String(), `"msg":"webhook request"`); n != 5 {
		t.Errorf("%d access log lines, want 5:\n%s", n, log.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// A client that sends its header and then trickles its body is cut off at the read
// timeout with 408, and nothing is stored.
func TestReceiverSlowClient(t *testing.T) {
	dir := t.TempDir()
	url, _ := startReceiver(t, webhook.Config{Spool: dir, ReadTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := event("slow")
	fmt.Fprintf(conn, "POST /smsbat/status HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:10])
	// Trickle one more byte now and then, until the server answers.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 10; i < len(body)-1; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte{body[i]}); err != nil {
					return
				}
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a slow client: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("slow client = %d, want 408", resp.StatusCode)
	}
	if ids := spooled(t, dir); len(ids) != 0 {
		t.Errorf("a slow client's event was stored: %q", ids)
	}
}

// A second receiver on the same spool directory is refused at once.
func TestReceiverSpoolInUse(t *testing.T) {
	dir := t.TempDir()
	startReceiver(t, webhook.Config{Spool: dir})
	_, err := webhook.NewReceiver(webhook.Config{Spool: dir})
	if err == nil || !strings.Contains(err.Error(), "in use by another receiver (PID ") {
		t.Errorf("second receiver on %s: %v, want refused naming the PID", dir, err)
	}
}

// A spool file left with a torn last line by a crash is cut back to whole lines when the
// receiver next writes to it, so the new lines read cleanly.
func TestReceiverCutsTornLine(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, webhook.FileName(time.Now()))
	if err := os.WriteFile(name, []byte(line("old")+line("torn")[:40]), 0o640); err != nil {
		t.Fatal(err)
	}
	url, _ := startReceiver(t, webhook.Config{Spool: dir})
	if code, body := post(t, url+"/smsbat/status", event("new")); code != 200 {
		t.Fatalf("POST = %d %s", code, body)
	}
	if got, want := spooled(t, dir), []string{"old", "new"}; !cmp.Equal(got, want) {
		t.Errorf("spool after a torn line = %q, want %q", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	err := webhook.Config{Path: "status", MaxBody: -1, ReadTimeout: -time.Second, Token: "a b"}.Validate()
	for _, field := range []string{"Spool", "Path", "MaxBody", "ReadTimeout", "Token"} {
		var ce *webhook.ConfigError
		found := false
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			if errors.As(e, &ce) && ce.Field == field {
				found = true
			}
		}
		if !found {
			t.Errorf("Validate = %v, want an error for %s", err, field)
		}
	}
	if strings.Contains(err.Error(), "a b") {
		t.Errorf("Validate shows the token: %v", err)
	}
}
