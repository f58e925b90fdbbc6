// Package smsbattest runs the fake SMSBAT status API for tests, in the spirit of
// net/http/httptest: NewServer starts it on a loopback port and closes it when the test
// ends, and NewClient gives an smsbat client that talks to it.
//
// The fake itself (what it answers, its options, faults and lifecycles) lives in an
// internal package so that the batstat binary can serve it without linking testing and
// net/http/httptest; this package re-exports its names, so tests need only this import.
//
// The usual call in a test:
//
//	srv := smsbattest.NewServer(t, smsbattest.DefaultOptions())
//	client := srv.NewClient(t, smsbat.AuthHeader)
//	res, err := client.Status(ctx, "0f3a9c2e7b1d4a58")
package smsbattest

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/batstat/batstat/internal/fakeapi"
	"github.com/batstat/batstat/smsbat"
)

// Credentials the fake accepts when Options leaves them empty.
const (
	DefaultAPIKey   = fakeapi.DefaultAPIKey
	DefaultUsername = fakeapi.DefaultUsername
	DefaultPassword = fakeapi.DefaultPassword
)

type (
	// Options configures a Handler; see fakeapi.Options.
	Options = fakeapi.Options
	// Settle is the lifecycle on the clock of Options.Settle; see fakeapi.Settle.
	Settle = fakeapi.Settle
	// Handler is the fake API as an http.Handler; see fakeapi.Handler.
	Handler = fakeapi.Handler
	// Request is one request in a Handler's log; see fakeapi.Request.
	Request = fakeapi.Request
	// Answer is one answer of the fake for a message; see fakeapi.Answer.
	Answer = fakeapi.Answer
	// Expectation is what the fake answers for one ID; see fakeapi.Expectation.
	Expectation = fakeapi.Expectation
	// Fault is what fault injection does to one request; see fakeapi.Fault.
	Fault = fakeapi.Fault
)

// The faults Options can inject.
const (
	FaultNone    = fakeapi.FaultNone
	Fault429     = fakeapi.Fault429
	Fault500     = fakeapi.Fault500
	FaultGarbage = fakeapi.FaultGarbage
	FaultReset   = fakeapi.FaultReset
)

// DefaultOptions returns the options of `batstat demo`; see fakeapi.DefaultOptions.
func DefaultOptions() Options { return fakeapi.DefaultOptions() }

// NewHandler returns a Handler for opts, for a test that serves it itself.
func NewHandler(opts Options) *Handler { return fakeapi.NewHandler(opts) }

// Server is a Handler listening on a loopback httptest.Server. Its URL is the base URL to
// give smsbat.NewClient.
type Server struct {
	*httptest.Server
	*Handler
}

// NewServer starts a Server for opts and closes it when the test ends. tb.Cleanup(Close)
// waits for outstanding requests, so a Hook must not block forever.
func NewServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	h := NewHandler(opts)
	s := &Server{Server: httptest.NewServer(h), Handler: h}
	tb.Cleanup(s.Close)
	return s
}

// NewClient returns an smsbat client for s using credentials of the given mode that s
// accepts, with a 10-second timeout. Its idle connections are closed when the test ends.
func (s *Server) NewClient(tb testing.TB, mode smsbat.AuthMode) *smsbat.Client {
	tb.Helper()
	hc := smsbat.NewHTTPClient(10*time.Second, 8)
	tb.Cleanup(hc.CloseIdleConnections)
	c, err := smsbat.NewClient(s.URL, s.Auth(mode), hc)
	if err != nil {
		tb.Fatalf("smsbattest: client for %s: %v", s.URL, err)
	}
	return c
}

// NewInProcessClient returns an smsbat client whose requests h serves in the calling
// goroutine, with no sockets, so that a test can run a client and the fake together inside
// a testing/synctest bubble (where a real listener would keep the clock from advancing).
// A FaultReset, or a Hook that drops the connection, comes back as an error of the request,
// as a reset would. Create h inside the bubble when its clock matters: Settle.SentAt
// defaults to the time NewHandler runs.
func NewInProcessClient(tb testing.TB, h *Handler, mode smsbat.AuthMode) *smsbat.Client {
	tb.Helper()
	hc := &http.Client{Transport: InProcessTransport(h), Timeout: 10 * time.Second}
	c, err := smsbat.NewClient(inProcessURL, h.Auth(mode), hc)
	if err != nil {
		tb.Fatalf("smsbattest: in-process client: %v", err)
	}
	return c
}

// inProcessURL is the base URL of in-process clients; nothing ever resolves it.
const inProcessURL = "http://smsbat.invalid"

// errReset is what an in-process request gets when the handler drops the connection.
var errReset = errors.New("smsbattest: connection reset by the fake API")

// InProcessTransport returns an http.RoundTripper that serves each request with h in the
// calling goroutine, as NewInProcessClient's client does; a test wraps it to watch or alter
// the requests of such a client.
func InProcessTransport(h http.Handler) http.RoundTripper { return inProcess{h} }

// inProcess is the transport of InProcessTransport.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The handler gets a request shaped as a server would hand it over.
	sreq := req.Clone(ctx)
	sreq.RequestURI = req.URL.RequestURI()
	sreq.RemoteAddr = "192.0.2.1:49152"
	rec := httptest.NewRecorder()
	if !serve(t.h, rec, sreq) {
		return nil, errReset
	}
	// A handler that saw the request's context end (during Latency) wrote nothing.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// serve runs h and reports false when it aborted the connection: the fake resets one by
// hijacking it, which a recorder cannot do, so it panics with http.ErrAbortHandler, as a
// real server would then drop the connection.
func serve(h http.Handler, w http.ResponseWriter, r *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			ok = false
		}
	}()
	h.ServeHTTP(w, r)
	return true
}
