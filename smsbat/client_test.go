package smsbat_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/smsbat/smsbattest"
)

// answering starts a fake whose every authorised request for a message is answered with
// code, headers and body; it stands in for a proxy or a misbehaving API.
func answering(t *testing.T, code int, header http.Header, body string) *smsbattest.Server {
	t.Helper()
	return smsbattest.NewServer(t, smsbattest.Options{KeepLog: true, Hook: func(w http.ResponseWriter, _ *http.Request, _ string, _ int) bool {
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
		return true
	}})
}

// lastRequest returns the last request the fake logged.
func lastRequest(t *testing.T, srv *smsbattest.Server) smsbattest.Request {
	t.Helper()
	log := srv.Requests()
	if len(log) == 0 {
		t.Fatal("the server saw no request")
	}
	return log[len(log)-1]
}

func ptr[T any](v T) *T { return &v }

func TestAuthModes(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.Options{APIKey: "k3y", Username: "ann", Password: "s3cret", KeepLog: true})
	tests := []struct {
		name    string
		auth    smsbat.Auth
		wantErr error
	}{
		{"header", smsbat.Auth{Mode: smsbat.AuthHeader, APIKey: "k3y"}, nil},
		{"basic", smsbat.Auth{Mode: smsbat.AuthBasic, Username: "ann", Password: "s3cret"}, nil},
		{"key as password", smsbat.Auth{Mode: smsbat.AuthKeyPassword, APIKey: "k3y"}, nil},
		{"header, wrong key", smsbat.Auth{Mode: smsbat.AuthHeader, APIKey: "k3Y"}, smsbat.ErrUnauthorized},
		{"basic, wrong password", smsbat.Auth{Mode: smsbat.AuthBasic, Username: "ann", Password: "secret"}, smsbat.ErrUnauthorized},
		{"basic, wrong user", smsbat.Auth{Mode: smsbat.AuthBasic, Username: "bob", Password: "s3cret"}, smsbat.ErrUnauthorized},
		{"basic with the key as password", smsbat.Auth{Mode: smsbat.AuthBasic, Username: "ann", Password: "k3y"}, smsbat.ErrUnauthorized},
		{"key as password, wrong key", smsbat.Auth{Mode: smsbat.AuthKeyPassword, APIKey: "s3cret"}, smsbat.ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := smsbat.NewClient(srv.URL, tt.auth, srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Status(context.Background(), "abc123def456")
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Status(abc123def456) with %s: err = %v, want %v", tt.name, err, tt.wantErr)
			}
			if got := lastRequest(t, srv).Auth; got != tt.auth.Mode {
				t.Errorf("with %s the server saw auth mode %q, want %q", tt.name, got, tt.auth.Mode)
			}
			if err == nil {
				return
			}
			var ae *smsbat.APIError
			if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized || ae.Code != "UNAUTHORIZED" || ae.Retryable() {
				t.Errorf("Status with %s: err = %#v, want a non-retryable 401 UNAUTHORIZED *APIError", tt.name, err)
			}
			if errors.Is(err, smsbat.ErrNotFound) {
				t.Errorf("Status with %s: err matches ErrNotFound", tt.name)
			}
		})
	}

	t.Run("no credentials", func(t *testing.T) {
		resp, err := srv.Client().Get(srv.URL + "/bat/message/abc123def456")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"code":"UNAUTHORIZED"`) {
			t.Errorf("GET without credentials = %d %s, want 401 with an UNAUTHORIZED error body", resp.StatusCode, body)
		}
	})
	t.Run("403", func(t *testing.T) {
		srv := answering(t, http.StatusForbidden, nil, `{"error":{"code":"FORBIDDEN","message":"account suspended"}}`)
		_, err := srv.NewClient(t, smsbat.AuthHeader).Status(context.Background(), "m")
		if !errors.Is(err, smsbat.ErrUnauthorized) {
			t.Errorf("Status on 403: err = %v, want ErrUnauthorized", err)
		}
	})
}

func TestAuthStringHidesSecrets(t *testing.T) {
	for _, a := range []smsbat.Auth{
		{Mode: smsbat.AuthHeader, APIKey: "SECRETKEY"},
		{Mode: smsbat.AuthKeyPassword, APIKey: "SECRETKEY"},
		{Mode: smsbat.AuthBasic, Username: "ann", Password: "SECRETKEY"},
	} {
		if s := a.String(); strings.Contains(s, "SECRETKEY") {
			t.Errorf("Auth{Mode: %s}.String() = %q, want no secret", a.Mode, s)
		}
	}
}

func TestNewClientRejects(t *testing.T) {
	good := smsbat.Auth{Mode: smsbat.AuthHeader, APIKey: "k"}
	tests := []struct {
		name, url string
		auth      smsbat.Auth
	}{
		{"no scheme", "restapi.smsbat.com", good},
		{"ftp", "ftp://restapi.smsbat.com", good},
		{"no host", "https://", good},
		{"unparsable", "http://[::1", good},
		{"header without key", "https://h", smsbat.Auth{Mode: smsbat.AuthHeader}},
		{"key-password without key", "https://h", smsbat.Auth{Mode: smsbat.AuthKeyPassword}},
		{"basic without password", "https://h", smsbat.Auth{Mode: smsbat.AuthBasic, Username: "u"}},
		{"unknown mode", "https://h", smsbat.Auth{Mode: "token", APIKey: "k"}},
	}
	for _, tt := range tests {
		if _, err := smsbat.NewClient(tt.url, tt.auth, nil); err == nil {
			t.Errorf("NewClient(%q, %s) = nil error, want one (%s)", tt.url, tt.auth, tt.name)
		}
	}
}

func TestURL(t *testing.T) {
	tests := []struct{ base, id, want string }{
		{"https://restapi.smsbat.com", "abc123def456", "https://restapi.smsbat.com/bat/message/abc123def456"},
		{"https://restapi.smsbat.com/", "abc", "https://restapi.smsbat.com/bat/message/abc"},
		{"https://eu.example.com/api/v1/", "a/b", "https://eu.example.com/api/v1/bat/message/a%2Fb"},
		{"https://h/x%2Fy", "id", "https://h/x%2Fy/bat/message/id"},
		{"https://h/?debug=1#top", "x?y=1#z", "https://h/bat/message/x%3Fy=1%23z"},
		{"https://h", "100%", "https://h/bat/message/100%25"},
		{"https://h", "a%2Fb", "https://h/bat/message/a%252Fb"},
		{"https://h", "..", "https://h/bat/message/%2E%2E"},
		{"https://h", ".", "https://h/bat/message/%2E"},
		{"https://h", "...", "https://h/bat/message/..."},
		{"https://h", "ünï", "https://h/bat/message/%C3%BCn%C3%AF"},
	}
	for _, tt := range tests {
		c, err := smsbat.NewClient(tt.base, smsbat.Auth{Mode: smsbat.AuthHeader, APIKey: "k"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.URL(tt.id); got != tt.want {
			t.Errorf("NewClient(%q).URL(%q) = %s, want %s", tt.base, tt.id, got, tt.want)
		}
	}
}

// TestHostileIDs checks on the server side that every ID arrives as exactly one path
// segment that decodes to the ID itself: an ID is data, never URL structure.
func TestHostileIDs(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.Options{KeepLog: true})
	client := srv.NewClient(t, smsbat.AuthHeader)
	for _, id := range []string{
		"a/b", "x?y=1", "#frag", "100%", "..", ".", "...", "with space", "ünï", "a%2Fb",
		"a+b", "semi;colon", "comma,", "~tilde", "@at:colon", "tab\there", "ctl\x01",
		"bad\xffutf8", "/leading", "trailing/", strings.Repeat("long", 1000),
	} {
		res, err := client.Status(context.Background(), id)
		if err != nil {
			t.Errorf("Status(%q): %v", id, err)
			continue
		}
		got := lastRequest(t, srv)
		seg, ok := strings.CutPrefix(got.RawPath, "/bat/message/")
		if !ok || seg == "" || strings.Contains(seg, "/") || seg == "." || seg == ".." {
			t.Errorf("Status(%q) requested path %q, want /bat/message/ and one segment", id, got.RawPath)
		}
		if got.ID != id {
			t.Errorf("Status(%q): the server decoded ID %q", id, got.ID)
		}
		if want := strings.ToValidUTF8(id, "\uFFFD"); res.Status.MessageID != want && id != "bad\xffutf8" {
			t.Errorf("Status(%q).MessageID = %q, want %q", id, res.Status.MessageID, want)
		}
	}
	before := srv.Count()
	if _, err := client.Status(context.Background(), ""); err == nil || errors.Is(err, smsbat.ErrNotFound) {
		t.Errorf(`Status("") = %v, want an error that is not ErrNotFound: an empty ID is no message`, err)
	}
	if srv.Count() != before {
		t.Error(`Status("") made a request`)
	}
}

// TestRegionalBaseURL: a base URL with a path prefix, as an account manager may hand out.
func TestRegionalBaseURL(t *testing.T) {
	h := smsbattest.NewHandler(smsbattest.Options{KeepLog: true})
	ts := httptest.NewServer(http.StripPrefix("/eu/v2", h))
	defer ts.Close()
	c, err := smsbat.NewClient(ts.URL+"/eu/v2/", h.Auth(smsbat.AuthHeader), ts.Client())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(context.Background(), "a/b"); err != nil {
		t.Fatalf("Status(a/b) via /eu/v2: %v", err)
	}
	if log := h.Requests(); len(log) != 1 || log[0].ID != "a/b" {
		t.Errorf("Requests() = %+v, want one request for ID a/b", log)
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, body string
		want       *smsbat.Status
	}{
		{
			name: "basic",
			body: `{"messagelistId": 123456, "messageId": "abc123def456", "deliverystatus": "delivered", "partscount": 1, "cost": 0.05}`,
			want: &smsbat.Status{MessagelistID: ptr[int64](123456), MessageID: "abc123def456", DeliveryStatus: "delivered", PartsCount: ptr[int64](1), Cost: ptr[smsbat.Money](50000)},
		},
		{
			name: "extended",
			body: `{"messagelistId":123456,"messageId":"abc123def456","deliverystatus":"delivered","partscount":1,"cost":0.05,
				"fallbacks":[{"type":"sms","status":"not_used"}],"extendedStatuses":{"viber":"delivered","sms":"not_used"},
				"rate":0.05,"rateAmount":0.05,"rateCurrency":"USD","billAmount":0.05,"billCurrency":"USD"}`,
			want: &smsbat.Status{
				MessagelistID: ptr[int64](123456), MessageID: "abc123def456", DeliveryStatus: "delivered",
				PartsCount: ptr[int64](1), Cost: ptr[smsbat.Money](50000),
				Fallbacks:        []smsbat.Fallback{{Type: "sms", Status: "not_used"}},
				ExtendedStatuses: map[string]string{"viber": "delivered", "sms": "not_used"},
				Rate:             ptr[smsbat.Money](50000), RateAmount: ptr[smsbat.Money](50000), RateCurrency: "USD",
				BillAmount: ptr[smsbat.Money](50000), BillCurrency: "USD",
			},
		},
		{
			name: "scheduled carries only some fields",
			body: `{"deliverystatus":"scheduled","partscount":1}`,
			want: &smsbat.Status{DeliveryStatus: "scheduled", PartsCount: ptr[int64](1)},
		},
		{"status alone", `{"deliverystatus":"processing"}`, &smsbat.Status{DeliveryStatus: "processing"}},
		{"unknown status kept verbatim", `{"deliverystatus":"read"}`, &smsbat.Status{DeliveryStatus: "read"}},
		{"status case kept verbatim", `{"deliverystatus":"Delivered "}`, &smsbat.Status{DeliveryStatus: "Delivered "}},
		{"zero is not absent", `{"deliverystatus":"undeliverable","partscount":0,"cost":0.00}`, &smsbat.Status{DeliveryStatus: "undeliverable", PartsCount: ptr[int64](0), Cost: ptr[smsbat.Money](0)}},
		{"null cost is absent", `{"deliverystatus":"delivered","cost":null}`, &smsbat.Status{DeliveryStatus: "delivered"}},
		{"cost 0.0375", `{"deliverystatus":"delivered","cost":0.0375}`, &smsbat.Status{DeliveryStatus: "delivered", Cost: ptr[smsbat.Money](37500)}},
		{"cost 1e-2", `{"deliverystatus":"delivered","cost":1e-2}`, &smsbat.Status{DeliveryStatus: "delivered", Cost: ptr[smsbat.Money](10000)}},
		{"cost 5E-2", `{"deliverystatus":"delivered","cost":5E-2}`, &smsbat.Status{DeliveryStatus: "delivered", Cost: ptr[smsbat.Money](50000)}},
		{"cost as string", `{"deliverystatus":"delivered","cost":"0.1"}`, &smsbat.Status{DeliveryStatus: "delivered", Cost: ptr[smsbat.Money](100000)}},
		{"six decimals", `{"deliverystatus":"delivered","cost":0.123456}`, &smsbat.Status{DeliveryStatus: "delivered", Cost: ptr[smsbat.Money](123456)}},
		{"trailing zeros past six", `{"deliverystatus":"delivered","cost":0.1000000}`, &smsbat.Status{DeliveryStatus: "delivered", Cost: ptr[smsbat.Money](100000)}},
		{"negative refund", `{"deliverystatus":"delivered","billAmount":-0.05}`, &smsbat.Status{DeliveryStatus: "delivered", BillAmount: ptr[smsbat.Money](-50000)}},
		{"empty fallbacks", `{"deliverystatus":"delivered","fallbacks":[]}`, &smsbat.Status{DeliveryStatus: "delivered", Fallbacks: []smsbat.Fallback{}}},
		{"unknown fields ignored", `{"deliverystatus":"delivered","channel":{"x":[1,2]},"webhook":true}`, &smsbat.Status{DeliveryStatus: "delivered"}},
	}
	bodies := map[string]string{}
	for _, tt := range tests {
		bodies[tt.name] = tt.body
	}
	srv := smsbattest.NewServer(t, smsbattest.Options{Hook: func(w http.ResponseWriter, _ *http.Request, id string, _ int) bool {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, bodies[id])
		return true
	}})
	client := srv.NewClient(t, smsbat.AuthHeader)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := client.Status(context.Background(), tt.name)
			if err != nil {
				t.Fatalf("Status(%s) on %s: %v", tt.name, tt.body, err)
			}
			// cmp tells a nil slice from an empty one: "fallbacks":[] must stay distinct
			// from no fallbacks at all.
			if diff := cmp.Diff(tt.want, res.Status); diff != "" {
				t.Errorf("Status(%s) on %s (-want +got):\n%s", tt.name, tt.body, diff)
			}
			if string(res.Body) != tt.body || res.StatusCode != 200 {
				t.Errorf("Status(%s): Result = HTTP %d %q, want 200 and the body as received", tt.name, res.StatusCode, res.Body)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ name, contentType, body string }{
		{"more than six decimals", "application/json", `{"deliverystatus":"delivered","cost":0.0000005}`},
		{"exponent below micro-units", "application/json", `{"deliverystatus":"delivered","cost":1e-7}`},
		{"cost not a number", "application/json", `{"deliverystatus":"delivered","cost":"n/a"}`},
		{"cost out of range", "application/json", `{"deliverystatus":"delivered","cost":1e30}`},
		{"no deliverystatus", "application/json", `{"messageId":"m","partscount":1}`},
		{"null deliverystatus", "application/json", `{"deliverystatus":null}`},
		{"truncated JSON", "application/json", `{"messagelistId":123456,"messageId":"m","delivers`},
		{"HTML from a proxy", "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>"},
		{"empty body", "application/json", ""},
		{"JSON null", "application/json", "null"},
		{"JSON array", "application/json", `[{"deliverystatus":"delivered"}]`},
		{"partscount as string", "application/json", `{"deliverystatus":"delivered","partscount":"1"}`},
	}
	bodies := map[string][2]string{}
	for _, tt := range tests {
		bodies[tt.name] = [2]string{tt.contentType, tt.body}
	}
	srv := smsbattest.NewServer(t, smsbattest.Options{Hook: func(w http.ResponseWriter, _ *http.Request, id string, _ int) bool {
		w.Header().Set("Content-Type", bodies[id][0])
		_, _ = io.WriteString(w, bodies[id][1])
		return true
	}})
	client := srv.NewClient(t, smsbat.AuthHeader)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := client.Status(context.Background(), tt.name)
			var de *smsbat.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Status(%s) on %q = %+v, %v; want a *DecodeError", tt.name, tt.body, res, err)
			}
			if de.StatusCode != 200 || de.Body != tt.body || de.Err == nil {
				t.Errorf("Status(%s): DecodeError = %+v, want HTTP 200, the body and the cause", tt.name, de)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	inTwoHours := time.Now().Add(2 * time.Hour).UTC().Format(http.TimeFormat)
	tests := []struct {
		name          string
		code          int
		header        http.Header
		body          string
		wantIs        error
		wantRetryable bool
		wantCode      string
		wantMessage   string
		// RetryAfter must fall in [minRetry, maxRetry].
		minRetry, maxRetry time.Duration
	}{
		{name: "400", code: 400, body: `{"error":{"code":"INVALID_RECIPIENT","message":"bad number"}}`, wantCode: "INVALID_RECIPIENT", wantMessage: "bad number"},
		{name: "401", code: 401, body: `{"error":{"code":"UNAUTHORIZED","message":"invalid key"}}`, wantIs: smsbat.ErrUnauthorized, wantCode: "UNAUTHORIZED", wantMessage: "invalid key"},
		{name: "404", code: 404, body: `{"error":{"code":"NOT_FOUND","message":"message not found"}}`, wantIs: smsbat.ErrNotFound, wantCode: "NOT_FOUND", wantMessage: "message not found"},
		{name: "404 without body", code: 404, wantIs: smsbat.ErrNotFound},
		{name: "408", code: 408, wantRetryable: true},
		{name: "429 seconds", code: 429, header: http.Header{"Retry-After": {"7"}}, body: `{"error":{"code":"RATE_LIMIT_EXCEEDED","message":"slow down"}}`,
			wantRetryable: true, wantCode: "RATE_LIMIT_EXCEEDED", wantMessage: "slow down", minRetry: 7 * time.Second, maxRetry: 7 * time.Second},
		{name: "429 HTTP date", code: 429, header: http.Header{"Retry-After": {inTwoHours}}, wantRetryable: true,
			minRetry: 2*time.Hour - time.Minute, maxRetry: 2 * time.Hour},
		{name: "429 date in the past", code: 429, header: http.Header{"Retry-After": {"Wed, 21 Oct 2015 07:28:00 GMT"}}, wantRetryable: true},
		{name: "429 zero", code: 429, header: http.Header{"Retry-After": {"0"}}, wantRetryable: true},
		{name: "429 malformed", code: 429, header: http.Header{"Retry-After": {"soon"}}, wantRetryable: true},
		{name: "429 without Retry-After", code: 429, wantRetryable: true},
		{name: "500", code: 500, body: `{"error":{"code":"INTERNAL_ERROR","message":"oops"}}`, wantRetryable: true, wantCode: "INTERNAL_ERROR", wantMessage: "oops"},
		{name: "500 HTML", code: 500, body: "<html><body>Internal Server Error</body></html>", wantRetryable: true},
		{name: "502 empty", code: 502, wantRetryable: true},
		{name: "503 Retry-After", code: 503, header: http.Header{"Retry-After": {"120"}}, wantRetryable: true, minRetry: 2 * time.Minute, maxRetry: 2 * time.Minute},
		{name: "redirect not followed", code: 302, header: http.Header{"Location": {"https://elsewhere.example/steal"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := answering(t, tt.code, tt.header, tt.body)
			_, err := srv.NewClient(t, smsbat.AuthHeader).Status(context.Background(), "m1")
			var ae *smsbat.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("Status on HTTP %d = %v, want an *APIError", tt.code, err)
			}
			if ae.StatusCode != tt.code || ae.Code != tt.wantCode || ae.Message != tt.wantMessage || ae.Body != tt.body {
				t.Errorf("Status on HTTP %d = %+v, want code %q message %q and the body", tt.code, ae, tt.wantCode, tt.wantMessage)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Status on HTTP %d: errors.Is(err, %v) = false, want true", tt.code, tt.wantIs)
			}
			for _, other := range []error{smsbat.ErrNotFound, smsbat.ErrUnauthorized} {
				if other != tt.wantIs && errors.Is(err, other) {
					t.Errorf("Status on HTTP %d: errors.Is(err, %v) = true, want false", tt.code, other)
				}
			}
			if ae.Retryable() != tt.wantRetryable {
				t.Errorf("Status on HTTP %d: Retryable() = %v, want %v", tt.code, ae.Retryable(), tt.wantRetryable)
			}
			if ae.RetryAfter < tt.minRetry || ae.RetryAfter > tt.maxRetry {
				t.Errorf("Status on HTTP %d with Retry-After %q: RetryAfter = %v, want %v..%v", tt.code, tt.header.Get("Retry-After"), ae.RetryAfter, tt.minRetry, tt.maxRetry)
			}
			if n := srv.Count(); n != 1 {
				t.Errorf("the server saw %d requests, want 1", n)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 23, 10, 30, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"  ", 0},
		{"0", 0},
		{"-5", 0},
		{"1", time.Second},
		{" 30 ", 30 * time.Second},
		{"1.5", 0},
		{"Thu, 23 Jan 2025 10:31:00 GMT", time.Minute},
		{"Thursday, 23-Jan-25 10:30:10 GMT", 10 * time.Second}, // RFC 850, still valid per RFC 9110
		{"Thu Jan 23 10:30:05 2025", 5 * time.Second},          // asctime
		{"Thu, 23 Jan 2025 10:29:00 GMT", 0},
		{"Thu, 23 Jan 2025 10:30:00 GMT", 0},
		{"tomorrow", 0},
		// A server once asked for 484,289 hours; the value is capped, never overflowed.
		{"99999999999999999", time.Duration(1<<31) * time.Second},
	}
	for _, tt := range tests {
		if got := smsbat.ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestBodyBounded(t *testing.T) {
	const pad = `{"deliverystatus":"delivered","pad":"`
	exactly := pad + strings.Repeat("x", smsbat.MaxBodyBytes-len(pad)-2) + `"}`

	t.Run("200 of exactly MaxBodyBytes decodes", func(t *testing.T) {
		srv := answering(t, 200, nil, exactly)
		res, err := srv.NewClient(t, smsbat.AuthHeader).Status(context.Background(), "m")
		if err != nil || res.Status.DeliveryStatus != "delivered" {
			t.Fatalf("Status on a %d-byte body = %v, %v; want delivered", len(exactly), res, err)
		}
	})
	t.Run("200 one byte over", func(t *testing.T) {
		srv := answering(t, 200, nil, exactly+" ")
		_, err := srv.NewClient(t, smsbat.AuthHeader).Status(context.Background(), "m")
		var de *smsbat.DecodeError
		if !errors.As(err, &de) || len(de.Body) > 512 {
			t.Fatalf("Status on a %d-byte body = %v, want a *DecodeError with a short Body", len(exactly)+1, err)
		}
	})
	t.Run("500 of 3 MiB", func(t *testing.T) {
		srv := answering(t, 500, nil, strings.Repeat("<p>error</p>", 3<<20/12))
		_, err := srv.NewClient(t, smsbat.AuthHeader).Status(context.Background(), "m")
		var ae *smsbat.APIError
		if !errors.As(err, &ae) || !ae.Retryable() || len(ae.Body) > 512 || !strings.HasPrefix(ae.Body, "<p>error</p>") {
			t.Fatalf("Status on a 3 MiB 500 = %v, want a retryable *APIError with a short Body", err)
		}
	})
	t.Run("endless 200", func(t *testing.T) {
		// A proxy that never stops sending: the client must stop reading at the bound
		// rather than buffer until memory runs out.
		const limit = 256 << 20
		var sent atomic.Int64
		srv := smsbattest.NewServer(t, smsbattest.Options{Hook: func(w http.ResponseWriter, _ *http.Request, _ string, _ int) bool {
			chunk := []byte(strings.Repeat("[", 64<<10))
			for sent.Load() < limit {
				n, err := w.Write(chunk)
				sent.Add(int64(n))
				if err != nil {
					break
				}
			}
			return true
		}})
		_, err := srv.NewClient(t, smsbat.AuthHeader).Status(context.Background(), "m")
		var de *smsbat.DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("Status on an endless body = %v, want a *DecodeError", err)
		}
		srv.Close() // wait for the hook to notice the closed connection
		if n := sent.Load(); n >= limit {
			t.Errorf("the server wrote %d bytes before the client hung up, want far fewer than %d", n, limit)
		}
	})
}

// TestFaultsAtClient checks what each fault knob of the fake looks like to the client.
func TestFaultsAtClient(t *testing.T) {
	tests := []struct {
		name  string
		opts  smsbattest.Options
		check func(error) bool
		want  string
	}{
		{"429", smsbattest.Options{Fault429: 1, RetryAfter: "3"}, func(err error) bool {
			var ae *smsbat.APIError
			return errors.As(err, &ae) && ae.StatusCode == 429 && ae.Retryable() && ae.RetryAfter == 3*time.Second
		}, "a retryable 429 *APIError with RetryAfter 3s"},
		{"500", smsbattest.Options{Fault500: 1}, func(err error) bool {
			var ae *smsbat.APIError
			return errors.As(err, &ae) && ae.StatusCode == 500 && ae.Retryable() && ae.Code == "INTERNAL_ERROR"
		}, "a retryable 500 *APIError"},
		{"garbage", smsbattest.Options{FaultGarbage: 1}, func(err error) bool {
			var de *smsbat.DecodeError
			return errors.As(err, &de)
		}, "a *DecodeError"},
		{"reset", smsbattest.Options{FaultReset: 1}, func(err error) bool {
			var ae *smsbat.APIError
			var de *smsbat.DecodeError
			var ue *url.Error
			return err != nil && !errors.As(err, &ae) && !errors.As(err, &de) && errors.As(err, &ue)
		}, "a network error (*url.Error), neither *APIError nor *DecodeError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smsbattest.NewServer(t, tt.opts)
			client := srv.NewClient(t, smsbat.AuthHeader)
			for _, id := range []string{"a", "b", "c"} {
				if _, err := client.Status(context.Background(), id); !tt.check(err) {
					t.Errorf("Status(%s) with fault %s = %v (%T), want %s", id, tt.name, err, err, tt.want)
				}
			}
		})
	}
}

func TestServerRateLimitAtClient(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.Options{RateLimit: 0.001}) // a burst of 1, then nothing for ~17 minutes
	client := srv.NewClient(t, smsbat.AuthHeader)
	if _, err := client.Status(context.Background(), "a"); err != nil {
		t.Fatalf("first Status under a rate limit: %v", err)
	}
	_, err := client.Status(context.Background(), "b")
	var ae *smsbat.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 429 || ae.RetryAfter != time.Second || !ae.Retryable() {
		t.Errorf("second Status under a rate limit = %v, want a retryable 429 with RetryAfter 1s", err)
	}
}

func TestContextCancel(t *testing.T) {
	srv := smsbattest.NewServer(t, smsbattest.Options{Latency: time.Hour})
	client := srv.NewClient(t, smsbat.AuthHeader)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := client.Status(ctx, "m"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Status past its deadline: err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Status took %v after a 20ms deadline", d)
	}
}

// TestAgainstModel polls many IDs concurrently until their lifecycle ends and compares
// what the client decoded with what the fake says it answers, computed without the client.
func TestAgainstModel(t *testing.T) {
	opts := smsbattest.DefaultOptions()
	opts.MaxPollsToFinal = 3
	srv := smsbattest.NewServer(t, opts)
	client := srv.NewClient(t, smsbat.AuthKeyPassword)
	idc := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for id := range idc {
				want := srv.Expected(id)
				var res *smsbat.Result
				var err error
				for range 3 {
					res, err = client.Status(context.Background(), id)
				}
				switch {
				case want.NotFound:
					if !errors.Is(err, smsbat.ErrNotFound) {
						t.Errorf("Status(%s) = %v, want ErrNotFound", id, err)
					}
				case err != nil:
					t.Errorf("Status(%s): %v", id, err)
				default:
					if diff := cmp.Diff(want.Final.Status, res.Status); diff != "" {
						t.Errorf("Status(%s) after 3 polls (-want +got):\n%s", id, diff)
					}
					if string(res.Body) != string(want.Final.Body) {
						t.Errorf("Status(%s).Body = %s, want %s", id, res.Body, want.Final.Body)
					}
				}
			}
		})
	}
	for i := range 1000 {
		idc <- fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)
	}
	close(idc)
	wg.Wait()
}

// A credential net/http cannot put in a header is refused by Validate, before any request;
// Validate applies net/http's rule, byte for byte.
func TestValidateRefusesUnsendableCredentials(t *testing.T) {
	dialed := errors.New("dialed")
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return nil, dialed }}
	for b := 0; b < 256; b++ {
		key := "key-" + string([]byte{byte(b)}) + "-42"
		req, _ := http.NewRequest(http.MethodGet, "http://smsbat.test/bat/message/1", nil)
		req.Header.Set("X-Authorization-Key", key)
		_, err := tr.RoundTrip(req)
		sendable := errors.Is(err, dialed)
		verr := smsbat.Auth{Mode: smsbat.AuthHeader, APIKey: key}.Validate()
		if (verr == nil) != sendable {
			t.Errorf("byte 0x%02x: Validate = %v, but net/http says %v", b, verr, err)
		}
		if verr != nil && (!strings.Contains(verr.Error(), fmt.Sprintf("byte 0x%02x at position 5", b)) || strings.Contains(verr.Error(), "-42")) {
			t.Errorf("byte 0x%02x: Validate = %q, want the byte and its position, not the key", b, verr)
		}
	}
	for _, a := range []smsbat.Auth{
		{Mode: smsbat.AuthKeyPassword, APIKey: "k\ney"},
		{Mode: smsbat.AuthBasic, Username: "ann\r", Password: "pw"},
		{Mode: smsbat.AuthBasic, Username: "ann", Password: "p\x00w"},
	} {
		if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "control character") {
			t.Errorf("Validate(%v) = %v, want a control character refused", a, err)
		}
		if _, err := smsbat.NewClient("http://smsbat.test", a, nil); err == nil {
			t.Errorf("NewClient with %v = nil error", a)
		}
	}
	if err := (smsbat.Auth{Mode: smsbat.AuthBasic, Username: "anna maria", Password: "pässwort\t"}).Validate(); err != nil {
		t.Errorf("Validate of spaces, a tab and UTF-8 = %v, want nil: net/http sends them", err)
	}
}

// IsUnreachable tells an API that was never reached from one that was and failed.
func TestIsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := "http://" + ln.Addr().String()
	ln.Close()
	plain := smsbattest.NewServer(t, smsbattest.Options{})
	hangUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
	}))
	t.Cleanup(hangUp.Close)
	status := func(base string) error {
		c, err := smsbat.NewClient(base, smsbat.Auth{Mode: smsbat.AuthHeader, APIKey: smsbattest.DefaultAPIKey}, smsbat.NewHTTPClient(5*time.Second, 1))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Status(context.Background(), "m-1")
		return err
	}
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", status(closedPort), true},
		{"TLS to a plain server", status(strings.Replace(plain.URL, "http:", "https:", 1)), true},
		{"name not found", &url.Error{Op: "Get", URL: "https://x.invalid", Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}}, true},
		{"hung up after connecting", status(hangUp.URL), false},
		{"an answer", status(plain.URL + "/nowhere"), false},
		{"nil", nil, false},
	} {
		if got := smsbat.IsUnreachable(tt.err); got != tt.want {
			t.Errorf("IsUnreachable(%s: %v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}
