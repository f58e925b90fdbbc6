// Package fakeapi is a fake SMSBAT status API as an http.Handler: the server behind
// `batstat demo` and `batstat mock-server`, and, through smsbat/smsbattest, behind the
// tests and benchmarks.
//
// It follows the API that package smsbat speaks: GET /bat/message/{id} with any of the three
// authentication modes, basic and extended answers, the scheduled → processing → terminal
// lifecycle, 404 for unknown IDs, and JSON error bodies. Every answer is a pure function of
// Options.Seed, the ID and how many times that ID was asked, so runs are reproducible across
// processes and a test can ask the Handler what it will answer (Expected, AnswerAt,
// FaultAt) instead of trusting the client under test. Faults (429, 500, garbage bodies,
// connection resets), latency and a server-side rate limit can be switched on.
//
// By default a message's status moves on as it is polled again. With Options.Settle it
// moves on the clock instead, as the real API's does: each message is final some delay
// after the campaign was sent, however often it is asked. The clock is Options.Now, so a
// test can drive it by hand or run the handler under testing/synctest.
//
// The package imports neither testing nor net/http/httptest, so it can live in the
// batstat binary. Serve a Handler like any other:
//
//	h := fakeapi.NewHandler(fakeapi.DefaultOptions())
//	err := http.Serve(ln, h)
package fakeapi

import (
	"bufio"
	"context"
	"crypto/subtle"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/batstat/batstat/smsbat"
)

// Credentials the fake accepts when Options leaves them empty.
const (
	DefaultAPIKey   = "test-key"
	DefaultUsername = "test-user"
	DefaultPassword = "test-pass"
)

// Options configures a Handler. The zero value is a well-behaved server: default
// credentials, every ID found, basic answers only, terminal on the first poll, no faults.
// DefaultOptions gives the livelier mix the demo uses.
//
// The lifecycle is counted in polls (MaxPollsToFinal, StuckRate) unless Settle is set.
//
// Rates are fractions in [0, 1]; values outside are clamped. Per-ID rates (NotFoundRate,
// ExtendedRate, UnknownStatusRate, StuckRate) are decided once per (Seed, ID); fault rates
// per (Seed, ID, n) where n counts the authorised requests for that ID.
type Options struct {
	// Seed picks which IDs get which traits and which requests get which faults: the same
	// seed and options give the same answers, in any process.
	Seed int64

	// Accepted credentials: X-Authorization-Key: APIKey, Basic Username:Password, or Basic
	// "@":APIKey. Empty values get DefaultAPIKey, DefaultUsername and DefaultPassword.
	APIKey, Username, Password string

	// Latency is added before every answer. A request whose context ends while it waits
	// gets no answer.
	Latency time.Duration

	// NotFoundRate is the fraction of IDs that answer 404 on every poll.
	NotFoundRate float64
	// ExtendedRate is the fraction of IDs whose account has fallback configured: their final
	// answer is the extended form (fallbacks, extendedStatuses, rate and bill fields).
	ExtendedRate float64
	// UnknownStatusRate is the fraction of IDs whose final status is outside the documented
	// lifecycle ("sent", "read", "expired" or "failed").
	UnknownStatusRate float64
	// Currencies are the currencies of extended answers, one chosen per ID. Empty means USD.
	Currencies []string

	// MaxPollsToFinal bounds the lifecycle: each ID reaches its final status on answered
	// poll p, chosen per ID uniformly in 1..MaxPollsToFinal (less than 1 counts as 1).
	// Before that it answers "scheduled" on the first poll and "processing" on later ones.
	// Ignored under Settle.
	MaxPollsToFinal int
	// StuckRate is the fraction of IDs that answer "processing" forever. Under Settle,
	// Settle.Never takes its place.
	StuckRate float64

	// Settle, when non-nil, puts the lifecycle on the clock: each message is final a
	// delay after Settle.SentAt, however often it is asked. NewHandler copies it.
	Settle *Settle
	// Now is the handler's clock, read by Settle, RateLimit and the request log; nil means
	// time.Now. A test may pass a manual clock (it must be safe for concurrent use) or run
	// the handler under testing/synctest with nil.
	Now func() time.Time

	// Fault probabilities per request. They are decided together from one draw, so each is
	// exactly the probability of its fault when they sum to at most 1. A faulted request
	// does not advance the ID's lifecycle.
	Fault429     float64 // 429 with a JSON error body and Retry-After: RetryAfter
	Fault500     float64 // 500 with a JSON error body
	FaultGarbage float64 // 200 with truncated JSON (application/json) or an HTML page
	// FaultReset hijacks the connection and closes it with a TCP reset before any answer.
	// Note that Go's http.Transport resends a GET once by itself when a reused keep-alive
	// connection fails this way, so a client may not see every reset.
	FaultReset float64
	// RetryAfter is the Retry-After value on injected 429s; empty sends none.
	RetryAfter string

	// RateLimit, when positive, is a server-side limit in requests per second (a token
	// bucket whose burst equals the limit, at least 1). Requests over it get 429 with
	// Retry-After: 1 and do not advance the lifecycle.
	RateLimit float64

	// Hook, when non-nil, runs first for every authorised request to a message. n is the
	// 1-based count of authorised requests for id, this one included. When Hook returns
	// true it has written the response itself (or hijacked the connection), and nothing
	// else happens for that request.
	Hook func(w http.ResponseWriter, r *http.Request, id string, n int) bool

	// KeepLog makes the handler record every request for Requests. It is off by default
	// because benchmarks make millions of requests; the counters are always kept.
	KeepLog bool
}

// DefaultOptions returns the options of `batstat demo`: 2% of IDs not found, 40% extended
// in UAH and USD, 1% with a status outside the lifecycle, 3% stuck in processing, and the
// final status on the first or second poll — so a single pass sees about half the messages
// final and a second pass all but the stuck ones. No faults, latency or rate limit.
func DefaultOptions() Options {
	return Options{
		Seed:              1,
		NotFoundRate:      0.02,
		ExtendedRate:      0.40,
		UnknownStatusRate: 0.01,
		Currencies:        []string{"UAH", "USD"},
		MaxPollsToFinal:   2,
		StuckRate:         0.03,
	}
}

// Request is one request as the handler saw it, recorded when Options.KeepLog is set.
type Request struct {
	Time    time.Time
	Method  string
	RawPath string // the escaped path as it came on the wire
	ID      string // the decoded message ID; empty when the path is not a message
	// Auth is the credential mode the request used (empty when it sent none), whether or
	// not the credentials were right.
	Auth smsbat.AuthMode
	// Status is the HTTP status answered; 0 when there was none (connection reset, or the
	// client went away during Latency).
	Status int
}

// Fault is what fault injection does to one request.
type Fault int

// The faults Options can inject.
const (
	FaultNone Fault = iota
	Fault429
	Fault500
	FaultGarbage
	FaultReset
)

func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "none"
	case Fault429:
		return "429"
	case Fault500:
		return "500"
	case FaultGarbage:
		return "garbage"
	case FaultReset:
		return "reset"
	}
	return "Fault(" + strconv.Itoa(int(f)) + ")"
}

const numShards = 64

// Handler is the fake API as an http.Handler. It is safe for concurrent use. Create it
// with NewHandler; it keeps per-ID poll counters for its whole life.
//
// A request goes through, in order: Latency; routing (anything but one segment under
// /bat/message/ is a 404, a method other than GET a 405); authentication (401); then, for
// an authorised request, Hook, RateLimit, fault injection, and finally the ID's answer
// for its current poll, or under Settle for the clock's now (200, or 404 for an ID that
// does not exist). Every error body is {"error":{"code":...,"message":...}}.
type Handler struct {
	opts       Options
	limiter    *rate.Limiter // nil without RateLimit
	retryAfter []string      // header value of injected 429s, nil for none

	count  atomic.Int64
	shards [numShards]shard

	logMu sync.Mutex
	log   []Request
}

// shard is one lock's worth of per-ID counters; sharding keeps concurrent requests for
// different IDs off a single mutex. The padding keeps shards on separate cache lines.
type shard struct {
	mu sync.Mutex
	m  map[string]*idState
	_  [48]byte
}

type idState struct {
	requests atomic.Int32 // authorised requests, faults included
	answered atomic.Int32 // requests that got a status or a 404: the lifecycle's clock
}

// NewHandler returns a Handler for opts, with defaults filled in and rates clamped.
func NewHandler(opts Options) *Handler {
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	if opts.Username == "" {
		opts.Username = DefaultUsername
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	for _, p := range []*float64{&opts.NotFoundRate, &opts.ExtendedRate, &opts.UnknownStatusRate,
		&opts.StuckRate, &opts.Fault429, &opts.Fault500, &opts.FaultGarbage, &opts.FaultReset} {
		*p = clamp01(*p)
	}
	if opts.MaxPollsToFinal < 1 {
		opts.MaxPollsToFinal = 1
	}
	if len(opts.Currencies) == 0 {
		opts.Currencies = []string{"USD"}
	} else {
		opts.Currencies = append([]string(nil), opts.Currencies...)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Settle != nil {
		s := *opts.Settle
		s.normalize(opts.Now())
		opts.Settle = &s
	}
	h := &Handler{opts: opts}
	if opts.RetryAfter != "" {
		h.retryAfter = []string{opts.RetryAfter}
	}
	if opts.RateLimit > 0 {
		h.limiter = rate.NewLimiter(rate.Limit(opts.RateLimit), max(1, int(math.Ceil(opts.RateLimit))))
	}
	for i := range h.shards {
		h.shards[i].m = make(map[string]*idState)
	}
	return h
}

func clamp01(v float64) float64 {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	return min(v, 1)
}

// Options returns the options in effect, defaults filled in (Settle.SentAt included).
func (h *Handler) Options() Options {
	o := h.opts
	o.Currencies = append([]string(nil), o.Currencies...)
	if o.Settle != nil {
		s := *o.Settle
		o.Settle = &s
	}
	return o
}

// Auth returns credentials of the given mode that h accepts.
func (h *Handler) Auth(mode smsbat.AuthMode) smsbat.Auth {
	return smsbat.Auth{Mode: mode, APIKey: h.opts.APIKey, Username: h.opts.Username, Password: h.opts.Password}
}

// Count returns how many requests the handler has received, whatever their outcome.
func (h *Handler) Count() int64 { return h.count.Load() }

// CountFor returns how many authorised requests for message id the handler has received.
func (h *Handler) CountFor(id string) int {
	sh := &h.shards[idHash(h.opts.Seed, id)%numShards]
	sh.mu.Lock()
	st := sh.m[id]
	sh.mu.Unlock()
	if st == nil {
		return 0
	}
	return int(st.requests.Load())
}

// Requests returns a copy of the request log, oldest first. It is empty unless
// Options.KeepLog is set.
func (h *Handler) Requests() []Request {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	return append([]Request(nil), h.log...)
}

// Answer is one answer of the fake for a message.
type Answer struct {
	Code int // 200, or 404 for an ID that does not exist
	// Status is what Body decodes to, built from the model rather than by decoding Body,
	// so it can check a client's decoding; nil for a 404.
	Status *smsbat.Status
	Body   []byte // the body exactly as the server writes it
}

// Expectation describes what the fake answers for one ID, computed from the options alone.
type Expectation struct {
	NotFound bool // every poll answers 404
	Stuck    bool // every poll answers "processing" (under Settle: from ProcessingAt on)
	Extended bool // the final answer is the extended form
	// PollsToFinal is the answered poll (1-based) from which the final status is answered;
	// 0 when NotFound or Stuck, and under Settle.
	PollsToFinal int
	// Under Settle, ProcessingAt is when the ID starts answering "processing" and SettleAt
	// when it starts answering Final; before ProcessingAt it answers "scheduled". A message
	// final at once has both equal to Settle.SentAt and never answers "processing". Both are
	// zero when NotFound, SettleAt is zero when Stuck, and both are zero without Settle.
	ProcessingAt, SettleAt time.Time
	// Final is what the ID answers once its lifecycle has run its course: the 404, the
	// terminal (or unknown) status, or for a stuck ID the "processing" answer it gives
	// forever.
	Final Answer
}

// Expected reports what h answers for id once its lifecycle has run its course, and when
// it gets there.
func (h *Handler) Expected(id string) Expectation {
	t := h.traitsOf(id)
	e := Expectation{NotFound: t.notFound, Stuck: t.stuck && !t.notFound, Extended: t.extended}
	if s := h.opts.Settle; s != nil && !e.NotFound {
		e.ProcessingAt = s.SentAt.Add(t.delay / scheduledShare)
		if !e.Stuck {
			e.SettleAt = s.SentAt.Add(t.delay)
		}
	}
	switch {
	case e.NotFound:
		e.Final = h.answer(id, &t, phaseFinal)
	case e.Stuck:
		e.Final = h.answer(id, &t, phaseProcessing)
	default:
		if h.opts.Settle == nil {
			e.PollsToFinal = t.polls
		}
		e.Final = h.answer(id, &t, phaseFinal)
	}
	return e
}

// AnswerAt returns the answer to the poll-th answered request for id (1-based). Requests
// that got an injected fault, a rate-limit 429 or a Hook's response do not count as polls.
// Under Settle the poll plays no part: it returns the answer at the handler's clock now.
func (h *Handler) AnswerAt(id string, poll int) Answer {
	t := h.traitsOf(id)
	return h.answer(id, &t, h.phaseOf(&t, poll))
}

// AnswerAtTime returns the answer for id at time at under Settle. Without Settle time plays
// no part, and it returns the answer to the first poll.
func (h *Handler) AnswerAtTime(id string, at time.Time) Answer {
	t := h.traitsOf(id)
	ph := t.phaseAt(1)
	if s := h.opts.Settle; s != nil {
		ph = t.phaseAtTime(s, at)
	}
	return h.answer(id, &t, ph)
}

func (h *Handler) answer(id string, t *traits, ph phase) Answer {
	if t.notFound {
		return Answer{Code: http.StatusNotFound, Body: errorBody(nil, "NOT_FOUND", "message not found")}
	}
	return Answer{Code: http.StatusOK, Status: t.status(id, ph), Body: t.appendBody(nil, id, ph)}
}

// phaseOf is the phase of the ID with traits t on its poll-th answered request, now.
func (h *Handler) phaseOf(t *traits, poll int) phase {
	if s := h.opts.Settle; s != nil {
		return t.phaseAtTime(s, h.opts.Now())
	}
	return t.phaseAt(poll)
}

// FaultAt returns the fault for the n-th authorised request for id (1-based, counted as
// CountFor counts). A request that the Hook answers or the rate limit refuses gets no
// fault, but it still counts.
func (h *Handler) FaultAt(id string, n int) Fault {
	return h.faultFor(idHash(h.opts.Seed, id), n)
}

func (h *Handler) faultFor(hash uint64, n int) Fault {
	o := &h.opts
	if o.FaultReset+o.Fault500+o.Fault429+o.FaultGarbage == 0 {
		return FaultNone
	}
	u := unit(requestHash(hash, n), saltFault)
	switch {
	case u < o.FaultReset:
		return FaultReset
	case u < o.FaultReset+o.Fault500:
		return Fault500
	case u < o.FaultReset+o.Fault500+o.Fault429:
		return Fault429
	case u < o.FaultReset+o.Fault500+o.Fault429+o.FaultGarbage:
		return FaultGarbage
	}
	return FaultNone
}

// Shared header values: assigning a prepared slice avoids Header.Set's per-call allocation
// on the hot path. The server only reads them.
var (
	ctJSON          = []string{"application/json"}
	ctHTML          = []string{"text/html; charset=utf-8"}
	allowGET        = []string{http.MethodGet}
	retryAfterOne   = []string{"1"}
	wwwAuthenticate = []string{`Basic realm="smsbat"`}
)

const messagePrefix = "/bat/message/"

// bufPool holds body buffers; a status body is a few hundred bytes.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// ServeHTTP answers one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.count.Add(1)
	if !h.opts.KeepLog {
		h.serve(w, r, nil)
		return
	}
	rec := Request{Time: h.opts.Now(), Method: r.Method, RawPath: r.URL.EscapedPath()}
	rec.Status = h.serve(w, r, &rec)
	h.logMu.Lock()
	h.log = append(h.log, rec)
	h.logMu.Unlock()
}

// serve answers r and returns the HTTP status written (0 for none). rec, when non-nil,
// receives the decoded ID and the auth mode for the log.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rec *Request) int {
	if h.opts.Latency > 0 && !sleep(r.Context(), h.opts.Latency) {
		return 0
	}
	rawPath := r.URL.EscapedPath()
	seg, ok := strings.CutPrefix(rawPath, messagePrefix)
	// Literal "." and ".." are dot segments, which URL normalisation (RFC 3986 5.2.4) in
	// servers and proxies removes: the real API would route them elsewhere, so a client
	// must escape such IDs (%2E) and the fake refuses them like a route it does not have.
	if !ok || seg == "" || seg == "." || seg == ".." || strings.Contains(seg, "/") {
		return writeError(w, http.StatusNotFound, "NOT_FOUND", "no such endpoint: only GET /bat/message/{messageId} exists")
	}
	// The ID is exactly one escaped segment: decoding after splitting keeps "a%2Fb" one ID.
	id, err := url.PathUnescape(seg)
	if err != nil {
		return writeError(w, http.StatusBadRequest, "BAD_REQUEST", "malformed escape in message ID")
	}
	mode, authOK := h.authorize(r)
	if rec != nil {
		rec.ID, rec.Auth = id, mode
	}
	if r.Method != http.MethodGet {
		w.Header()["Allow"] = allowGET
		return writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "use GET")
	}
	if !authOK {
		w.Header()["Www-Authenticate"] = wwwAuthenticate
		msg := "invalid credentials"
		if mode == "" {
			msg = "missing credentials: send X-Authorization-Key or Basic authorization"
		}
		return writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", msg)
	}

	hash := idHash(h.opts.Seed, id)
	st := h.state(id, hash)
	n := int(st.requests.Add(1))
	if h.opts.Hook != nil {
		sr := &statusRecorder{ResponseWriter: w}
		if h.opts.Hook(sr, r, id, n) {
			return sr.code
		}
	}
	if h.limiter != nil && !h.limiter.AllowN(h.opts.Now(), 1) {
		w.Header()["Retry-After"] = retryAfterOne
		return writeError(w, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED", "rate limit exceeded")
	}
	switch h.faultFor(hash, n) {
	case FaultReset:
		resetConn(w)
		return 0
	case Fault500:
		return writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", "internal server error")
	case Fault429:
		if h.retryAfter != nil {
			w.Header()["Retry-After"] = h.retryAfter
		}
		return writeError(w, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED", "too many requests")
	case FaultGarbage:
		return h.writeGarbage(w, id, hash, n, int(st.answered.Load())+1)
	}

	poll := int(st.answered.Add(1))
	t := h.traitsFor(hash)
	if t.notFound {
		return writeError(w, http.StatusNotFound, "NOT_FOUND", "message not found")
	}
	bp := bufPool.Get().(*[]byte)
	body := t.appendBody((*bp)[:0], id, h.phaseOf(&t, poll))
	w.Header()["Content-Type"] = ctJSON
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	putBuf(bp, body)
	return http.StatusOK
}

func putBuf(bp *[]byte, b []byte) {
	if cap(b) <= 64<<10 { // a hostile ID can make a huge body; do not keep it around
		*bp = b[:0]
		bufPool.Put(bp)
	}
}

// authorize reports which credential mode r used and whether it was accepted. The API key
// header, when present, decides alone.
func (h *Handler) authorize(r *http.Request) (smsbat.AuthMode, bool) {
	if key := r.Header.Get("X-Authorization-Key"); key != "" {
		return smsbat.AuthHeader, equal(key, h.opts.APIKey)
	}
	user, pass, ok := r.BasicAuth()
	switch {
	case !ok:
		return "", false
	case user == "@":
		return smsbat.AuthKeyPassword, equal(pass, h.opts.APIKey)
	default:
		return smsbat.AuthBasic, equal(user, h.opts.Username) && equal(pass, h.opts.Password)
	}
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func (h *Handler) state(id string, hash uint64) *idState {
	sh := &h.shards[hash%numShards]
	sh.mu.Lock()
	st := sh.m[id]
	if st == nil {
		st = new(idState)
		sh.m[id] = st
	}
	sh.mu.Unlock()
	return st
}

// writeGarbage answers 200 with a body no client can decode: the ID's next answer cut in
// half (what a proxy timing out mid-body delivers), or an HTML error page.
func (h *Handler) writeGarbage(w http.ResponseWriter, id string, hash uint64, n, poll int) int {
	if stream(requestHash(hash, n), saltGarbageKind)&1 == 0 {
		w.Header()["Content-Type"] = ctHTML
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(garbageHTML))
		return http.StatusOK
	}
	t := h.traitsFor(hash)
	body := t.appendBody(nil, id, h.phaseOf(&t, poll))
	w.Header()["Content-Type"] = ctJSON
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body[:len(body)/2])
	return http.StatusOK
}

const garbageHTML = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n" +
	"<body><h1>Bad Gateway</h1><p>The upstream server returned an invalid response.</p></body></html>\n"

// writeError writes a JSON error body in the API's shape and returns code.
func writeError(w http.ResponseWriter, code int, errCode, msg string) int {
	bp := bufPool.Get().(*[]byte)
	body := errorBody((*bp)[:0], errCode, msg)
	w.Header()["Content-Type"] = ctJSON
	w.WriteHeader(code)
	_, _ = w.Write(body)
	putBuf(bp, body)
	return code
}

func errorBody(b []byte, code, msg string) []byte {
	b = append(b, `{"error":{"code":`...)
	b = appendJSONString(b, code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	return append(b, "}}"...)
}

// resetConn drops the connection without an answer. With a hijackable connection it sets
// SO_LINGER 0 so the client sees a reset rather than a clean close; otherwise (HTTP/2) it
// aborts the handler, which resets the stream.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// sleep waits for d and reports whether it did, or returns false as soon as ctx ends.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// statusRecorder notes the status a Hook writes, for the request log. It passes
// Flush and Hijack through so a Hook can stream or drop the connection.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 && code >= 200 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(s.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
