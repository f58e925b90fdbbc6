// Package webhook takes in the statuses the SMSBAT provider pushes (its webhook
// alternative to polling) and keeps them in a spool directory for loading into the
// database later: a hardened HTTP receiver (Receiver), the spool it appends to with group
// commit (Spool), and the reader a loader resumes from (ReadSpool).
//
// The receiver never opens the database, so it runs beside any fetch; the spool is the
// hand-over. A 200 means the events are appended to the spool and fsynced.
package webhook

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults of Config.
const (
	DefaultPath              = "/smsbat/status"
	DefaultMaxBody           = 1 << 20
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultShutdownTimeout   = 60 * time.Second
	DefaultMaxInFlight       = 128
)

// HealthPath answers GET with 200 while the receiver runs; it needs no token.
const HealthPath = "/healthz"

// maxHeaderBytes bounds a request's header: a provider's POST needs little.
const maxHeaderBytes = 16 << 10

// slotWait is how long a request waits for one of MaxInFlight places before it is
// answered 503.
const slotWait = 5 * time.Second

// Config configures a Receiver. Zero fields take the defaults above.
type Config struct {
	// Spool is the spool directory, created if missing.
	Spool string
	// Token, when set, is required of every POST, as "Authorization: Bearer Token" or
	// "?token=Token"; compared in constant time. Empty accepts any request.
	Token string
	// Path is the URL path events are POSTed to.
	Path string
	// MaxBody bounds a request body, in bytes; larger bodies are answered 413.
	MaxBody int64
	// Server timeouts, as net/http.Server's. WriteTimeout counts from the end of the
	// request's header, so it covers reading the body, the fsync and the answer.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// ShutdownTimeout bounds how long Serve waits for requests in flight once ctx ends.
	ShutdownTimeout time.Duration
	// MaxInFlight bounds the requests handled at once (each holds its body in memory);
	// one that finds no place within a few seconds is answered 503 with Retry-After.
	MaxInFlight int
	// Logger receives the access log (one line per request, at info; never the token or
	// the query string) and the receiver's own messages. Nil discards them.
	Logger *slog.Logger
	// Now is the clock of received_at; nil means time.Now.
	Now func() time.Time
}

// ConfigError is a Config field with a value it cannot take.
type ConfigError struct {
	Field string
	Value any
	Rule  string
}

func (e *ConfigError) Error() string { return fmt.Sprintf("%s %v: %s", e.Field, e.Value, e.Rule) }

// Validate checks c, defaults applied, and returns a *ConfigError per bad field.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(field string, v any, rule string) { errs = append(errs, &ConfigError{field, v, rule}) }
	if c.Spool == "" {
		bad("Spool", `""`, "a spool directory is required")
	}
	if !strings.HasPrefix(c.Path, "/") || c.Path == HealthPath {
		bad("Path", strconv.Quote(c.Path), "must start with / and not be "+HealthPath)
	}
	if c.MaxBody < 2 {
		bad("MaxBody", c.MaxBody, "must be at least 2 bytes")
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"ReadHeaderTimeout", c.ReadHeaderTimeout}, {"ReadTimeout", c.ReadTimeout}, {"WriteTimeout", c.WriteTimeout},
		{"IdleTimeout", c.IdleTimeout}, {"ShutdownTimeout", c.ShutdownTimeout}} {
		if d.v < 0 {
			bad(d.field, d.v, "must not be negative")
		}
	}
	if c.MaxInFlight < 0 {
		bad("MaxInFlight", c.MaxInFlight, "must not be negative")
	}
	if strings.ContainsAny(c.Token, " \t\r\n") {
		bad("Token", "(hidden)", "must not contain white space")
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&c.ReadTimeout, DefaultReadTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.ShutdownTimeout, DefaultShutdownTimeout)
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Receiver is the webhook endpoint: an http.Handler that appends the events of each
// accepted POST to its Spool before it answers 200. Create it with NewReceiver, run it
// with Serve (or serve Handler yourself), and Close it.
type Receiver struct {
	cfg      Config
	spool    *Spool
	token    []byte
	slots    chan struct{}
	inFlight atomic.Int64
}

// NewReceiver checks cfg and opens its spool directory (taking its lock).
func NewReceiver(cfg Config) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	sp, err := OpenSpool(cfg.Spool, cfg.Logger)
	if err != nil {
		return nil, err
	}
	return &Receiver{cfg: cfg, spool: sp, token: []byte(cfg.Token), slots: make(chan struct{}, cfg.MaxInFlight)}, nil
}

// Spool returns the receiver's spool.
func (rv *Receiver) Spool() *Spool { return rv.spool }

// Close closes the spool after storing what is queued. Requests handled after Close are
// answered 503.
func (rv *Receiver) Close() error { return rv.spool.Close() }

// Serve serves the receiver on ln until ctx ends, then shuts down gracefully: it stops
// accepting, lets the requests in flight finish (their fsync included) for at most
// Config.ShutdownTimeout, and closes the spool. It returns nil after a shutdown asked for
// by ctx, and an error when it could not serve.
func (rv *Receiver) Serve(ctx context.Context, ln net.Listener) error {
	c := rv.cfg
	srv := &http.Server{
		Handler:           rv,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(c.Logger.Handler(), slog.LevelWarn),
	}
	log := c.Logger
	// Shutdown runs this once it has closed the listener: from this line on, no new
	// connection is accepted.
	stopping := make(chan struct{})
	srv.RegisterOnShutdown(func() {
		log.Info("webhook receiver stopping: finishing the requests in flight", "in_flight", rv.inFlight.Load())
		close(stopping)
	})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		rv.Close()
		return fmt.Errorf("webhook receiver: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("webhook receiver: requests still in flight at the shutdown timeout are cut off", "in_flight", rv.inFlight.Load(), "err", err)
		srv.Close()
	}
	<-stopping
	err := rv.Close()
	st := rv.spool.Stats()
	log.Info("webhook receiver stopped", "events", st.Events, "appends", st.Appends, "fsyncs", st.Syncs, "failed_appends", st.Failed)
	if err != nil {
		return fmt.Errorf("webhook receiver: close spool: %w", err)
	}
	return nil
}

// Shared header values, assigned rather than Set on the hot path.
var (
	ctJSON       = []string{"application/json"}
	allowPOST    = []string{http.MethodPost}
	allowGET     = []string{"GET, HEAD"}
	bearerRealm  = []string{`Bearer realm="batstat webhook"`}
	retryLater   = []string{"5"}
	noStore      = []string{"no-store"}
	healthOKBody = []byte(`{"status":"ok"}` + "\n")
)

// outcome is what the access log says of one request.
type outcome struct {
	status int
	events int
	bytes  int
	reason string
}

// ServeHTTP handles one request. In order: /healthz; any other path than Config.Path is
// 404; a method other than POST 405; a missing or wrong token 401; a Content-Length over
// MaxBody 413; then the body is read (413 past MaxBody, 408 when the client is too slow),
// checked as a whole (400, nothing stored), appended and fsynced (500 when that fails),
// and answered 200 {"accepted":N}.
func (rv *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rv.inFlight.Add(1)
	defer rv.inFlight.Add(-1)
	w.Header()["Cache-Control"] = noStore
	o := rv.handle(w, r)
	level := slog.LevelInfo
	if o.status >= 500 {
		level = slog.LevelError
	}
	if !rv.cfg.Logger.Enabled(r.Context(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", truncate(r.Method, 20)),
		slog.String("path", truncate(r.URL.Path, 200)), // never the query: it may hold the token
		slog.Int("status", o.status),
		slog.Int("events", o.events),
		slog.Int("bytes", o.bytes),
		slog.Float64("ms", float64(time.Since(start).Microseconds())/1000),
		slog.String("remote_addr", r.RemoteAddr),
	}
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		attrs = append(attrs, slog.String("forwarded_for", truncate(xff, 200)))
	}
	if o.reason != "" {
		attrs = append(attrs, slog.String("error", truncate(o.reason, 500)))
	}
	rv.cfg.Logger.LogAttrs(r.Context(), level, "webhook request", attrs...)
}

func (rv *Receiver) handle(w http.ResponseWriter, r *http.Request) outcome {
	c := &rv.cfg
	if r.URL.Path == HealthPath {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header()["Allow"] = allowGET
			return writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "use GET")
		}
		w.Header()["Content-Type"] = ctJSON
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(healthOKBody)
		}
		return outcome{status: http.StatusOK}
	}
	if r.URL.Path != c.Path {
		return writeError(w, http.StatusNotFound, "NOT_FOUND", "no such endpoint")
	}
	if r.Method != http.MethodPost {
		w.Header()["Allow"] = allowPOST
		return writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "use POST")
	}
	if !rv.authorized(r) {
		w.Header()["Www-Authenticate"] = bearerRealm
		return writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "missing or wrong token: send Authorization: Bearer TOKEN")
	}
	if r.ContentLength > c.MaxBody {
		return writeError(w, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("body over %d bytes", c.MaxBody))
	}

	select {
	case rv.slots <- struct{}{}:
	default:
		t := time.NewTimer(slotWait)
		select {
		case rv.slots <- struct{}{}:
			t.Stop()
		case <-t.C:
			w.Header()["Retry-After"] = retryLater
			return writeError(w, http.StatusServiceUnavailable, "BUSY", "too many requests in flight; retry later")
		case <-r.Context().Done():
			t.Stop()
			return outcome{status: 499, reason: "client went away while waiting"}
		}
	}
	defer func() { <-rv.slots }()

	body, err := readBody(w, r, c.MaxBody)
	if err != nil {
		var mbe *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mbe):
			return writeError(w, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("body over %d bytes", c.MaxBody))
		case errors.As(err, &ne) && ne.Timeout():
			return writeError(w, http.StatusRequestTimeout, "TIMEOUT", "body not received in time")
		default:
			o := writeError(w, http.StatusBadRequest, "BAD_REQUEST", "cannot read body")
			o.reason = "read body: " + err.Error()
			return o
		}
	}
	receivedAt := c.Now()
	events, err := ParseBody(body)
	if err != nil {
		o := writeError(w, http.StatusBadRequest, "BAD_EVENT", err.Error())
		o.bytes = len(body)
		return o
	}
	if err := rv.spool.Append(r.Context(), receivedAt, r.RemoteAddr, events); err != nil {
		var o outcome
		if errors.Is(err, ErrSpoolClosed) {
			w.Header()["Retry-After"] = retryLater
			o = writeError(w, http.StatusServiceUnavailable, "SHUTTING_DOWN", "the receiver is stopping; retry later")
		} else {
			o = writeError(w, http.StatusInternalServerError, "SPOOL_ERROR", "events not stored; retry later")
			o.reason = err.Error()
		}
		o.bytes = len(body)
		return o
	}
	w.Header()["Content-Type"] = ctJSON
	w.WriteHeader(http.StatusOK)
	var b [32]byte
	out := append(strconv.AppendInt(append(b[:0], `{"accepted":`...), int64(len(events)), 10), "}\n"...)
	_, _ = w.Write(out)
	return outcome{status: http.StatusOK, events: len(events), bytes: len(body)}
}

// authorized reports whether r carries the token, in its Authorization header or its
// query. Both are checked so that the time taken does not tell which one was tried.
func (rv *Receiver) authorized(r *http.Request) bool {
	if len(rv.token) == 0 {
		return true
	}
	ok := 0
	if scheme, cred, found := strings.Cut(r.Header.Get("Authorization"), " "); found && strings.EqualFold(scheme, "Bearer") {
		ok |= subtle.ConstantTimeCompare([]byte(strings.TrimSpace(cred)), rv.token)
	}
	if q := r.URL.RawQuery; q != "" {
		vals, _ := url.ParseQuery(q) // what parses of a malformed query still counts
		for _, v := range vals["token"] {
			ok |= subtle.ConstantTimeCompare([]byte(v), rv.token)
		}
	}
	return ok == 1
}

// readBody reads the body, at most max bytes.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	size := 512
	if r.ContentLength > 0 {
		size = int(r.ContentLength) + 1 // +1 so that ReadAll sees EOF without growing
	}
	buf := make([]byte, 0, size)
	lr := http.MaxBytesReader(w, r.Body, max)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// ParseBody checks a request body: one event object or a JSON array of them. Every event
// must pass ParseEvent, or the whole body is refused; the error names the first bad one.
// An empty array gives no events and no error.
func ParseBody(body []byte) ([]Event, error) {
	trimmed := trimSpace(body)
	if len(trimmed) == 0 {
		return nil, errors.New("empty body: want an event object or a JSON array of them")
	}
	switch trimmed[0] {
	case '{':
		ev, err := ParseEvent(trimmed)
		if err != nil {
			return nil, err
		}
		return []Event{ev}, nil
	case '[':
		var raws []json.RawMessage
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, fmt.Errorf("body is not valid JSON: %s", jsonReason(err))
		}
		events := make([]Event, len(raws))
		for i, raw := range raws {
			ev, err := ParseEvent(raw)
			if err != nil {
				return nil, fmt.Errorf("event %d of %d: %w", i+1, len(raws), err)
			}
			events[i] = ev
		}
		return events, nil
	}
	return nil, errors.New("body is not a JSON object or array")
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isJSONSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isJSONSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// writeError writes {"error":{"code":...,"message":...}}, the shape of the SMSBAT API's
// own errors.
func writeError(w http.ResponseWriter, status int, code, msg string) outcome {
	body, _ := json.Marshal(map[string]map[string]string{"error": {"code": code, "message": msg}})
	w.Header()["Content-Type"] = ctJSON
	w.Header()["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
	return outcome{status: status, reason: msg}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
