// Package smsbat is a client for the SMSBAT message status API:
// GET {base}/bat/message/{messageId} with any of the three authentication modes.
//
// Errors are typed so a caller can decide what to do without reading their text:
// *APIError for any non-2xx answer (with Retryable, and RetryAfter holding the wait a 429
// or 503 asked for), *DecodeError for a 200 whose body is not a status, ErrNotFound
// (matched with errors.Is) for 404, and ErrUnauthorized for 401/403, after which every
// further request would fail too.
package smsbat

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultBaseURL is the provider's public API endpoint.
const DefaultBaseURL = "https://restapi.smsbat.com"

// MaxBodyBytes bounds how much of any response body is read: a status is a few hundred
// bytes, and a misbehaving proxy must not make batstat buffer gigabytes.
const MaxBodyBytes = 1 << 20

// AuthMode selects how credentials go on the wire.
type AuthMode string

// The three authentication modes of the API.
const (
	AuthHeader      AuthMode = "header"       // X-Authorization-Key: <key>
	AuthBasic       AuthMode = "basic"        // Authorization: Basic base64(user:password)
	AuthKeyPassword AuthMode = "key-password" // Authorization: Basic base64("@:" + key)
)

// Auth holds credentials. Its String method never prints secrets.
type Auth struct {
	Mode     AuthMode
	APIKey   string
	Username string
	Password string
}

// String describes the auth mode without secrets, for logs.
func (a Auth) String() string {
	if a.Mode == AuthBasic {
		return fmt.Sprintf("basic (user %s)", a.Username)
	}
	return string(a.Mode)
}

// Validate checks that the credentials needed by Mode are present and can be sent. A
// credential with a control character (a byte below 0x20 but tab, or 0x7f) cannot: net/http
// refuses such a header value before the request leaves, every request would fail alike,
// and in the Basic modes, whose credentials travel base64-encoded, it could only be a key
// file with a stray escape sequence or line. The error names the byte and its position,
// never the credential.
func (a Auth) Validate() error {
	type secret struct{ name, value string }
	var used []secret
	switch a.Mode {
	case AuthHeader, AuthKeyPassword:
		if a.APIKey == "" {
			return fmt.Errorf("auth %s needs an API key", a.Mode)
		}
		used = []secret{{"API key", a.APIKey}}
	case AuthBasic:
		if a.Username == "" || a.Password == "" {
			return errors.New("auth basic needs a username and a password")
		}
		used = []secret{{"username", a.Username}, {"password", a.Password}}
	default:
		return fmt.Errorf("unknown auth mode %q (want header, basic or key-password)", a.Mode)
	}
	for _, s := range used {
		if i := invalidHeaderByte(s.value); i >= 0 {
			return fmt.Errorf("the %s holds a control character (byte 0x%02x at position %d of %d), which cannot be sent in an HTTP header; "+
				"a key file must hold the key alone on its first line", s.name, s.value[i], i+1, len(s.value))
		}
	}
	return nil
}

// invalidHeaderByte returns the index of the first byte that an HTTP header value may not
// hold (the rule of golang.org/x/net/http/httpguts.ValidHeaderFieldValue, which net/http
// applies: control characters but tab), or -1.
func invalidHeaderByte(v string) int {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < ' ' && b != '\t' || b == 0x7f {
			return i
		}
	}
	return -1
}

func (a Auth) apply(req *http.Request) {
	switch a.Mode {
	case AuthHeader:
		req.Header.Set("X-Authorization-Key", a.APIKey)
	case AuthBasic:
		req.SetBasicAuth(a.Username, a.Password)
	case AuthKeyPassword:
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("@:"+a.APIKey)))
	}
}

// ErrUnauthorized is matched (errors.Is) by the *APIError of a 401 or 403 answer.
var ErrUnauthorized = errors.New("authentication rejected")

// ErrNotFound is matched (errors.Is) by the *APIError of a 404 answer.
var ErrNotFound = errors.New("no such message")

// APIError is a non-2xx answer.
type APIError struct {
	StatusCode int
	Code       string // the error.code of a JSON error body, if any
	Message    string // the error.message of a JSON error body, if any
	Body       string // the start of the body as received
	// RetryAfter is the wait the server asked for (429 and 503), 0 when it gave none.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is lets errors.Is match ErrUnauthorized and ErrNotFound.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	}
	return false
}

// Retryable reports whether asking again later may succeed: 408, 425, 429 and 5xx.
func (e *APIError) Retryable() bool {
	switch {
	case e.StatusCode == http.StatusTooManyRequests,
		e.StatusCode == http.StatusRequestTimeout,
		e.StatusCode == http.StatusTooEarly,
		e.StatusCode >= 500:
		return true
	}
	return false
}

// DecodeError is a 2xx answer whose body is not a status (truncated JSON, HTML from a
// proxy, an empty body). It is worth retrying: such bodies are usually transient.
type DecodeError struct {
	StatusCode int
	Body       string
	Err        error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("undecodable answer (HTTP %d): %v", e.StatusCode, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Result is a successful answer: the decoded status and the body as received.
type Result struct {
	Status     *Status
	StatusCode int
	Body       []byte
}

// Client asks the API for message statuses. It is safe for concurrent use.
type Client struct {
	base *url.URL
	auth Auth
	http *http.Client
	// UserAgent is sent with every request.
	UserAgent string

	// header is every request's headers, made at the first request (see requestHeader)
	// for the UserAgent of that time, userAgent.
	once      sync.Once
	header    http.Header
	userAgent string
}

// NewClient returns a client for the API at baseURL. A nil httpClient gets NewHTTPClient(10s, 16).
func NewClient(baseURL string, auth Auth, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("api url %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("api url %q: want http:// or https:// and a host", baseURL)
	}
	if err := auth.Validate(); err != nil {
		return nil, err
	}
	if httpClient == nil {
		httpClient = NewHTTPClient(10*time.Second, 16)
	}
	return &Client{base: u, auth: auth, http: httpClient, UserAgent: "batstat"}, nil
}

// NewHTTPClient returns an *http.Client tuned for many concurrent requests to one host:
// keep-alive with as many idle connections per host as there are workers (the default of 2
// makes every extra worker open and close a TLS connection per request), and a timeout that
// bounds each request including reading its body.
func NewHTTPClient(timeout time.Duration, concurrency int) *http.Client {
	if concurrency < 1 {
		concurrency = 1
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = concurrency * 2
	t.MaxIdleConnsPerHost = concurrency * 2
	t.MaxConnsPerHost = 0
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = timeout
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{
		Transport: t,
		Timeout:   timeout,
		// The API does not redirect; following one could send credentials elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// URL returns the status URL for id, the ID escaped as exactly one path segment.
func (c *Client) URL(id string) string {
	return c.messageURL(id, escapeSegment(id)).String()
}

// messageURL is the status URL of id, whose escaped path segment is seg.
func (c *Client) messageURL(id, seg string) *url.URL {
	u := *c.base
	u.Path = strings.TrimRight(c.base.Path, "/") + "/bat/message/" + id
	u.RawPath = strings.TrimRight(c.base.EscapedPath(), "/") + "/bat/message/" + seg
	u.RawQuery, u.Fragment = "", ""
	return &u
}

// escapeSegment is id escaped as exactly one path segment (see URL).
func escapeSegment(id string) string {
	if id == "." || id == ".." {
		// PathEscape leaves dots alone, but a bare "." or ".." segment is a dot segment that
		// URL normalisation removes (RFC 3986 5.2.4): "/bat/message/.." would ask for
		// "/bat/". Escaped dots are not dot segments.
		return strings.Repeat("%2E", len(id))
	}
	return url.PathEscape(id)
}

// requestHeader returns the headers of a request. They are made once and then shared:
// a request's Header is only read on its way out (by net/http, and by a RoundTripper,
// which must not modify the request), and making the map, its canonical keys and the
// Basic credentials for every request was a tenth of the client's CPU per status. A
// UserAgent changed after the first request gets a map of its own each time.
func (c *Client) requestHeader() http.Header {
	c.once.Do(func() { c.header, c.userAgent = c.buildHeader(), c.UserAgent })
	if c.userAgent != c.UserAgent {
		return c.buildHeader()
	}
	return c.header
}

func (c *Client) buildHeader() http.Header {
	req := &http.Request{Header: make(http.Header, 3)}
	req.Header.Set("Accept", "application/json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	c.auth.apply(req)
	return req.Header
}

// Status asks for the status of message id. A 404 returns an *APIError matching ErrNotFound.
func (c *Client) Status(ctx context.Context, id string) (*Result, error) {
	if id == "" {
		// "/bat/message/" is not a message: the 404 it gets would read as "not found".
		return nil, errors.New("empty message ID")
	}
	// The request is made by hand, not by http.NewRequestWithContext, which would parse
	// again the URL just built. What NewRequest would set and net/http reads is set here:
	// a GET without a body has ContentLength 0 and a nil Body.
	u := c.messageURL(id, escapeSegment(id))
	req := (&http.Request{
		Method:     http.MethodGet,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     c.requestHeader(),
		Host:       strings.TrimSuffix(u.Host, ":"), // as NewRequest drops an empty port
	}).WithContext(ctx)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return nil, fmt.Errorf("read body (HTTP %d): %w", resp.StatusCode, err)
	}
	if len(body) > MaxBodyBytes {
		if resp.StatusCode/100 == 2 {
			return nil, &DecodeError{StatusCode: resp.StatusCode, Body: snippet(body), Err: fmt.Errorf("body exceeds %d bytes", MaxBodyBytes)}
		}
		body = body[:MaxBodyBytes]
	}
	if resp.StatusCode/100 != 2 {
		return nil, newAPIError(resp, body, time.Now())
	}
	st, err := decodeStatus(body)
	if err != nil {
		return nil, &DecodeError{StatusCode: resp.StatusCode, Body: snippet(body), Err: err}
	}
	return &Result{Status: st, StatusCode: resp.StatusCode, Body: body}, nil
}

// readBody reads at most MaxBodyBytes+1 bytes of resp's body. With a Content-Length it
// reads into a buffer of that size, one allocation; io.ReadAll would start at 512 bytes
// and grow, copying, and leave a buffer up to twice the body's size to be kept with the
// answer until it is stored.
func readBody(resp *http.Response) ([]byte, error) {
	n := resp.ContentLength
	if n < 0 || n > MaxBodyBytes {
		return io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	}
	// One byte more than announced, so that the read that finds the end of the body is
	// made here (net/http then puts the connection back at once), and a body longer than
	// announced, which net/http does not let through, would not go unnoticed.
	buf := make([]byte, n+1)
	read, err := io.ReadFull(resp.Body, buf)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return buf[:read], nil
	case err != nil:
		return nil, err
	}
	// Longer than announced: read the rest as io.ReadAll would, within the bound.
	rest, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1-int64(len(buf))))
	return append(buf, rest...), err
}

func newAPIError(resp *http.Response, body []byte, now time.Time) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, Body: snippet(body)}
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
	}
	e.RetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), now)
	return e
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date. It returns 0
// for an absent, malformed, zero or past value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > 1<<31 {
			secs = 1 << 31
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// IsUnreachable reports whether err, from Status, is a request that never reached the API:
// the name did not resolve, the connection was refused or timed out, a proxy could not
// connect, or the TLS handshake failed (http.ErrSchemeMismatch included: an https URL to a
// plain-HTTP server). An error after the connection was made (a reset,
// a timeout awaiting the answer, an answer of any status) is not: the API is there.
func IsUnreachable(err error) bool {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var recErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &opErr) && (opErr.Op == "dial" || opErr.Op == "proxyconnect"),
		errors.Is(err, http.ErrSchemeMismatch):
		return true
	case errors.As(err, &dnsErr), errors.As(err, &recErr), errors.As(err, &certErr), errors.As(err, &alert),
		errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalid):
		return true
	}
	return false
}

func snippet(b []byte) string {
	const max = 512
	if len(b) > max {
		b = b[:max]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
