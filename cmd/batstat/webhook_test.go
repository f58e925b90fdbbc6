package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/batstat/batstat/webhook"
)

func TestWebhookServeOptions(t *testing.T) {
	o, err := parse(t, webhookServeCommand, "", "serve", "--listen", "127.0.0.1:0", "--spool", "sp")
	if err != nil {
		t.Fatal(err)
	}
	c := o.config
	if o.listen != "127.0.0.1:0" || c.Spool != "sp" || c.Token != "" || c.Path != webhook.DefaultPath ||
		c.MaxBody != webhook.DefaultMaxBody || c.ReadTimeout != webhook.DefaultReadTimeout || c.MaxInFlight != webhook.DefaultMaxInFlight {
		t.Errorf("webhook serve defaults = %+v", o)
	}
	t.Setenv("BATSTAT_WEBHOOK_TOKEN", "from-env")
	if o, err := parse(t, webhookServeCommand, "", "serve", "--listen", ":8090", "--spool", "sp"); err != nil || o.config.Token != "from-env" {
		t.Errorf("BATSTAT_WEBHOOK_TOKEN: token %q, %v", o.config.Token, err)
	}
	checkUsage(t, webhookServeCommand, []usageCase{
		{[]string{"serve", "--spool", "sp"}, 2, []string{"--listen is required"}},
		{[]string{"serve", "--listen", ":1"}, 2, []string{"--spool is required"}},
		{[]string{"serve", "--listen", "8090", "--spool", "sp"}, 2, []string{"--listen"}},
		{[]string{"serve", "--listen", ":1", "--spool", "sp", "--path", "status"}, 2, []string{"--path"}},
		{[]string{"serve", "--listen", ":1", "--spool", "sp", "--path", "/healthz"}, 2, []string{"--path"}},
		{[]string{"serve", "--listen", ":1", "--spool", "sp", "--max-body", "0"}, 2, []string{"--max-body 0"}},
		{[]string{"serve", "--listen", ":1", "--spool", "sp", "--read-timeout", "-1s"}, 2, []string{"--read-timeout"}},
		{[]string{"serve", "--listen", ":1", "--spool", "sp", "--token", "a b"}, 2, []string{"--token"}},
		{[]string{"serve", "--listen", ":1", "--spool", "sp", "extra"}, 2, []string{"no arguments"}},
	})
}

// proc is a child process of the binary and the lines it writes on stderr, drained as
// they come so that it never blocks on a full pipe.
type proc struct {
	cmd  *exec.Cmd
	url  string // for a server, its base URL, without the path
	mu   sync.Mutex
	log  []string
	more chan struct{} // closed and replaced on each new line
	done chan struct{} // closed when stderr ends
}

// startProc runs the binary with args and waits until it writes a line containing ready.
func startProc(t *testing.T, ready string, args ...string) *proc {
	t.Helper()
	p := &proc{more: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	pipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			p.mu.Lock()
			p.log = append(p.log, sc.Text())
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	line := p.waitLine(t, ready)
	if _, rest, ok := strings.Cut(line, "listening on "); ok {
		rest, _, _ = strings.Cut(rest, " ")
		p.url = strings.TrimSuffix(strings.Trim(rest, `"`), webhook.DefaultPath)
	}
	return p
}

// startReceiverProc runs `batstat webhook serve` on a free port with spool dir.
func startReceiverProc(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	return startProc(t, "listening on http://", append([]string{"webhook", "serve", "--listen", "127.0.0.1:0", "--spool", dir}, args...)...)
}

// waitLine waits for a line of stderr containing s; the bound only ends a test whose child
// died.
func (p *proc) waitLine(t *testing.T, s string) string {
	t.Helper()
	deadline := time.After(time.Minute)
	for i := 0; ; {
		p.mu.Lock()
		for ; i < len(p.log); i++ {
			if strings.Contains(p.log[i], s) {
				l := p.log[i]
				p.mu.Unlock()
				return l
			}
		}
		more := p.more
		p.mu.Unlock()
		select {
		case <-more:
		case <-p.done:
			t.Fatalf("webhook serve ended without saying %q:\n%s", s, p.stderr())
		case <-deadline:
			t.Fatalf("webhook serve did not say %q in a minute:\n%s", s, p.stderr())
		}
	}
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.log, "\n")
}

// wait waits for the process to end and returns its exit status.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	<-p.done
	err := p.cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatal(err)
	return -1
}

func hookEvent(id string) string {
	return `{"messageId":"` + id + `","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z","cost":0.05}`
}

// readSpoolIDs reads the spool and returns the IDs read, the lines skipped for being torn,
// and any other problem as text.
func readSpoolIDs(t *testing.T, dir string) (ids map[string]int, torn int, problems []string) {
	t.Helper()
	ids = map[string]int{}
	for rec, err := range webhook.ReadSpool(context.Background(), []string{dir}, nil) {
		var le *webhook.LineError
		switch {
		case errors.As(err, &le) && le.Torn:
			torn++
		case err != nil:
			problems = append(problems, err.Error())
		default:
			ids[rec.Event.MessageID]++
		}
	}
	return ids, torn, problems
}

// kill -9 of the receiver while senders post: every event that got a 200 is in the spool
// afterwards, and the spool reads cleanly (but for a torn last line, skipped).
func TestWebhookKill9KeepsEveryAcknowledgedEvent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	p := startReceiverProc(t, dir, "--token", "tok")
	url := p.url + webhook.DefaultPath
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}

	const senders = 8
	var acked sync.Map // id → true, for every event in a 200 answer
	var nAcked, seq atomic.Int64
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				// Batches of 1 to 5 events, each with an ID of its own.
				n := 1 + i%5
				ids := make([]string, n)
				parts := make([]string, n)
				for k := range n {
					ids[k] = fmt.Sprintf("g%d-%d", g, seq.Add(1))
					parts[k] = hookEvent(ids[k])
				}
				body := parts[0]
				if n > 1 {
					body = "[" + strings.Join(parts, ",") + "]"
				}
				req, _ := http.NewRequest("POST", url, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer tok")
				resp, err := client.Do(req)
				if err != nil {
					return // the receiver is gone
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("POST = %d", resp.StatusCode)
					return
				}
				for _, id := range ids {
					acked.Store(id, true)
				}
				if nAcked.Add(int64(n)) >= 3000 {
					once.Do(func() { close(enough) })
				}
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(2 * time.Minute):
		t.Fatalf("senders got only %d events acknowledged", nAcked.Load())
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	wg.Wait()
	p.wait(t)

	ids, torn, problems := readSpoolIDs(t, dir)
	if len(problems) > 0 {
		t.Errorf("the spool does not read cleanly after kill -9: %q", problems)
	}
	missing := 0
	acked.Range(func(k, _ any) bool {
		if ids[k.(string)] != 1 {
			missing++
		}
		return true
	})
	if missing > 0 {
		t.Errorf("%d of %d acknowledged events are not in the spool once", missing, nAcked.Load())
	}
	t.Logf("%d events acknowledged, %d in the spool, %d torn lines", nAcked.Load(), len(ids), torn)

	// A receiver started again on the spool cuts any torn line off and appends after it.
	p = startReceiverProc(t, dir, "--token", "tok")
	req, _ := http.NewRequest("POST", p.url+webhook.DefaultPath+"?token=tok", strings.NewReader(hookEvent("after-restart")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST after restart: %v %v", resp, err)
	}
	resp.Body.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Errorf("webhook serve after SIGTERM = exit %d, want 0", code)
	}
	ids2, torn2, problems2 := readSpoolIDs(t, dir)
	if torn2 != 0 || len(problems2) != 0 || ids2["after-restart"] != 1 || len(ids2) != len(ids)+1 {
		t.Errorf("after a restart: %d events (want %d), torn %d, problems %q", len(ids2), len(ids)+1, torn2, problems2)
	}
}

// SIGTERM with a request in flight: the request completes with 200 and its event stored,
// then the receiver exits 0.
func TestWebhookSIGTERMFinishesInFlight(t *testing.T) {
	dir := t.TempDir()
	p := startReceiverProc(t, dir)
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := hookEvent("in-flight")
	// Expect: 100-continue makes the server say when the handler starts reading the body:
	// from then on the request is in flight.
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", webhook.DefaultPath, len(body))
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, "100") {
		t.Fatalf("want 100 Continue, got %q %v", status, err)
	}
	br.ReadString('\n') // the blank line after it
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLine(t, "finishing the requests in flight")
	// New connections are refused from now on.
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(p.url, "http://"), 5*time.Second); err == nil {
		c.Close()
		t.Errorf("a new connection was accepted during shutdown")
	}
	io.WriteString(conn, body)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the request in flight got no answer: %v\n%s", err, p.stderr())
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"accepted":1}` {
		t.Errorf("request in flight = %d %s, want 200", resp.StatusCode, b)
	}
	if code := p.wait(t); code != 0 {
		t.Errorf("webhook serve after SIGTERM = exit %d, want 0:\n%s", code, p.stderr())
	}
	if ids, torn, problems := readSpoolIDs(t, dir); ids["in-flight"] != 1 || torn != 0 || len(problems) != 0 {
		t.Errorf("spool after SIGTERM = %v (torn %d, problems %q), want the event in flight", ids, torn, problems)
	}
	if !strings.Contains(p.stderr(), "webhook receiver stopped") {
		t.Errorf("no closing line:\n%s", p.stderr())
	}
}

func TestWebhookServeExitStatuses(t *testing.T) {
	dir := t.TempDir()
	p := startReceiverProc(t, dir)
	r := runCLI(t, t.TempDir(), "", "webhook", "serve", "--listen", "127.0.0.1:0", "--spool", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "in use by another receiver") {
		t.Errorf("a second receiver on the spool = exit %d, stderr %q; want 1 and in use", r.code, r.stderr)
	}
	r = runCLI(t, t.TempDir(), "", "webhook", "serve", "--listen", strings.TrimPrefix(p.url, "http://"), "--spool", t.TempDir())
	if r.code != 1 || !strings.Contains(r.stderr, "address already in use") {
		t.Errorf("a receiver on a port in use = exit %d, stderr %q; want 1", r.code, r.stderr)
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(t); code != 0 {
		t.Errorf("webhook serve after SIGINT = exit %d, want 0", code)
	}
}
