package fakeapi_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/internal/fakeapi"
	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/smsbat/smsbattest"
)

// ids returns n IDs shaped like the provider's: 16 hex characters.
func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)
	}
	return out
}

// get makes a raw request with the default API key, outside the client under test.
func get(t *testing.T, hc *http.Client, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Authorization-Key", fakeapi.DefaultAPIKey)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// TestBodyMatchesModel checks, for many IDs and every phase, that the body on the wire
// decodes (with plain encoding/json into smsbat.Status) to exactly the Status the model
// builds, so tests may use either.
func TestBodyMatchesModel(t *testing.T) {
	opts := fakeapi.DefaultOptions()
	opts.MaxPollsToFinal = 3
	opts.UnknownStatusRate = 0.05
	opts.Currencies = []string{"UAH", "USD", "EUR", "XYZ"}
	h := fakeapi.NewHandler(opts)
	all := append(ids(3000), "a/b", "ünï", "quote\"back\\slash", "\x01ctl", "bad\xff\xfeutf8")
	for _, id := range all {
		for poll := 1; poll <= 4; poll++ {
			a := h.AnswerAt(id, poll)
			if a.Code == http.StatusNotFound {
				if !strings.Contains(string(a.Body), `"NOT_FOUND"`) {
					t.Errorf("AnswerAt(%q, %d).Body = %s, want a NOT_FOUND error", id, poll, a.Body)
				}
				continue
			}
			var got smsbat.Status
			if err := json.Unmarshal(a.Body, &got); err != nil {
				t.Fatalf("AnswerAt(%q, %d): body %s: %v", id, poll, a.Body, err)
			}
			if diff := cmp.Diff(a.Status, &got); diff != "" {
				t.Errorf("AnswerAt(%q, %d): body %s decodes differently from Status (-model +body):\n%s", id, poll, a.Body, diff)
			}
		}
	}
}

var (
	moneyField   = regexp.MustCompile(`"(cost|rate|rateAmount|billAmount)":(-?[0-9.eE+-]+)`)
	plainDecimal = regexp.MustCompile(`^\d+(\.\d{0,5}[1-9])?$`)
)

// TestAnswersConsistent checks the invariants a report relies on over many final answers.
func TestAnswersConsistent(t *testing.T) {
	opts := fakeapi.DefaultOptions()
	h := fakeapi.NewHandler(opts)
	var emptyFallbacks, viaFallback int
	currencies := map[string]int{}
	for _, id := range ids(5000) {
		e := h.Expected(id)
		if e.NotFound || e.Stuck {
			continue
		}
		st := e.Final.Status
		fields := moneyField.FindAllStringSubmatch(string(e.Final.Body), -1)
		if len(fields) == 0 {
			t.Errorf("Expected(%q): final answer without cost: %s", id, e.Final.Body)
		}
		for _, m := range fields {
			if m[2] != "0.00" && !plainDecimal.MatchString(m[2]) {
				t.Errorf("Expected(%q): %s literal %s, want a plain decimal with at most 6 places", id, m[1], m[2])
			}
		}
		if !smsbat.IsTerminal(st.DeliveryStatus) && !slices.Contains([]string{"sent", "read", "expired", "failed"}, st.DeliveryStatus) {
			t.Errorf("Expected(%q).DeliveryStatus = %q, want terminal or a known unknown", id, st.DeliveryStatus)
		}
		if st.DeliveryStatus != smsbat.StatusDelivered && st.DeliveryStatus != "sent" && st.DeliveryStatus != "read" && *st.Cost != 0 {
			t.Errorf("Expected(%q): %s with cost %v, want 0", id, st.DeliveryStatus, *st.Cost)
		}
		if !e.Extended {
			if st.Fallbacks != nil || st.ExtendedStatuses != nil || st.BillAmount != nil {
				t.Errorf("Expected(%q): basic answer with extended fields: %s", id, e.Final.Body)
			}
			continue
		}
		currencies[st.BillCurrency]++
		if *st.BillAmount != *st.Cost || st.BillCurrency != st.RateCurrency || *st.RateAmount != *st.Rate*smsbat.Money(*st.PartsCount) {
			t.Errorf("Expected(%q): amounts disagree: %s", id, e.Final.Body)
		}
		if len(st.Fallbacks) == 0 {
			emptyFallbacks++
		}
		if len(st.ExtendedStatuses) != len(st.Fallbacks)+1 {
			t.Errorf("Expected(%q): %d channels for %d fallbacks: %s", id, len(st.ExtendedStatuses), len(st.Fallbacks), e.Final.Body)
		}
		delivered := 0
		for _, fb := range st.Fallbacks {
			if st.ExtendedStatuses[fb.Type] != fb.Status {
				t.Errorf("Expected(%q): fallback %s is %s but extendedStatuses says %s", id, fb.Type, fb.Status, st.ExtendedStatuses[fb.Type])
			}
			if fb.Status == smsbat.StatusDelivered {
				viaFallback++
			}
		}
		for _, s := range st.ExtendedStatuses {
			if s == smsbat.StatusDelivered {
				delivered++
			}
		}
		if want := btoi(st.DeliveryStatus == smsbat.StatusDelivered); delivered != want {
			t.Errorf("Expected(%q): %d channels delivered for status %s, want %d: %s", id, delivered, st.DeliveryStatus, want, e.Final.Body)
		}
		if st.DeliveryStatus == smsbat.StatusDelivered && st.ExtendedStatuses["viber"] == smsbat.StatusDelivered && st.ExtendedStatuses["sms"] != "not_used" {
			t.Errorf("Expected(%q): viber delivered but sms %q, want not_used", id, st.ExtendedStatuses["sms"])
		}
		if st.DeliveryStatus == smsbat.StatusUndeliverable {
			for ch, s := range st.ExtendedStatuses {
				if s != smsbat.StatusUndeliverable {
					t.Errorf("Expected(%q): undeliverable but channel %s is %s", id, ch, s)
				}
			}
		}
	}
	if emptyFallbacks == 0 || viaFallback == 0 {
		t.Errorf("over 5000 IDs: %d with empty fallbacks, %d delivered by a fallback; want some of each", emptyFallbacks, viaFallback)
	}
	if diff := cmp.Diff([]string{"UAH", "USD"}, slices.Sorted(maps.Keys(currencies))); diff != "" {
		t.Errorf("currencies (-want +got):\n%s", diff)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestRates checks that per-ID rates come out near what Options asks for.
func TestRates(t *testing.T) {
	opts := fakeapi.DefaultOptions()
	opts.MaxPollsToFinal = 4
	h := fakeapi.NewHandler(opts)
	const n = 20000
	var notFound, stuck, extended, unknown float64
	polls := map[int]float64{}
	for _, id := range ids(n) {
		e := h.Expected(id)
		switch {
		case e.NotFound:
			notFound++
			continue
		case e.Stuck:
			stuck++
		default:
			polls[e.PollsToFinal]++
			if !smsbat.IsTerminal(e.Final.Status.DeliveryStatus) {
				unknown++
			}
		}
		if e.Extended {
			extended++
		}
	}
	found := n - notFound
	tests := []struct {
		name      string
		got, want float64
	}{
		{"not found", notFound / n, opts.NotFoundRate},
		{"stuck", stuck / found, opts.StuckRate},
		{"extended", extended / found, opts.ExtendedRate},
		{"unknown status", unknown / (found - stuck), opts.UnknownStatusRate},
		{"final on poll 1", polls[1] / (found - stuck), 0.25},
		{"final on poll 4", polls[4] / (found - stuck), 0.25},
	}
	for _, tt := range tests {
		// Binomial standard deviation over n draws is at most 0.0036; allow 4 of them.
		if math.Abs(tt.got-tt.want) > 0.015 {
			t.Errorf("%s rate = %.4f, want %.4f", tt.name, tt.got, tt.want)
		}
	}
	if polls[0] != 0 || polls[5] != 0 {
		t.Errorf("PollsToFinal outside 1..4: %v", polls)
	}
}

func TestDeterminism(t *testing.T) {
	a := fakeapi.NewHandler(fakeapi.Options{Seed: 7, NotFoundRate: 0.1, ExtendedRate: 0.5, MaxPollsToFinal: 3, StuckRate: 0.1, Fault500: 0.2})
	b := fakeapi.NewHandler(fakeapi.Options{Seed: 7, NotFoundRate: 0.1, ExtendedRate: 0.5, MaxPollsToFinal: 3, StuckRate: 0.1, Fault500: 0.2})
	c := fakeapi.NewHandler(fakeapi.Options{Seed: 8, NotFoundRate: 0.1, ExtendedRate: 0.5, MaxPollsToFinal: 3, StuckRate: 0.1, Fault500: 0.2})
	var differ int
	for _, id := range ids(1000) {
		for poll := 1; poll <= 3; poll++ {
			if diff := cmp.Diff(a.AnswerAt(id, poll), b.AnswerAt(id, poll)); diff != "" {
				t.Fatalf("same seed: AnswerAt(%q, %d) differs (-a +b):\n%s", id, poll, diff)
			}
			if a.FaultAt(id, poll) != b.FaultAt(id, poll) {
				t.Fatalf("same seed: FaultAt(%q, %d) = %v, %v", id, poll, a.FaultAt(id, poll), b.FaultAt(id, poll))
			}
			if !cmp.Equal(a.AnswerAt(id, poll), c.AnswerAt(id, poll)) {
				differ++
			}
		}
	}
	if differ < 1000 {
		t.Errorf("seeds 7 and 8 differ in %d of 3000 answers, want most", differ)
	}
	// Pin a few answers: they must be the same in every process and on every platform,
	// and a change of the model (which changes the demo's numbers and every golden file
	// built on them) must be a deliberate one.
	pinned := fakeapi.NewHandler(fakeapi.DefaultOptions())
	for id, want := range map[string]string{
		"0000000000000000": `{"messagelistId":653869,"messageId":"0000000000000000","deliverystatus":"undeliverable","partscount":3,"cost":0.00,"fallbacks":[{"type":"sms","status":"undeliverable"}],"extendedStatuses":{"viber":"undeliverable","sms":"undeliverable"},"rate":0.0125,"rateAmount":0.0375,"rateCurrency":"USD","billAmount":0.00,"billCurrency":"USD"}`,
		"3c6ef372fe94f82a": `{"messagelistId":704675,"messageId":"3c6ef372fe94f82a","deliverystatus":"delivered","partscount":1,"cost":0.0375}`,
		"cc623af8783354e7": `{"messagelistId":355158,"messageId":"cc623af8783354e7","deliverystatus":"delivered","partscount":1,"cost":2.1,"fallbacks":[{"type":"sms","status":"not_used"}],"extendedStatuses":{"viber":"delivered","sms":"not_used"},"rate":2.1,"rateAmount":2.1,"rateCurrency":"UAH","billAmount":2.1,"billCurrency":"UAH"}`,
	} {
		if got := string(pinned.Expected(id).Final.Body); got != want {
			t.Errorf("Expected(%q).Final.Body = %s, want %s", id, got, want)
		}
	}
}

// TestLifecycle polls through the real client and checks the sequence of statuses.
func TestLifecycle(t *testing.T) {
	srv := smsbattest.NewServer(t, fakeapi.Options{Seed: 3, MaxPollsToFinal: 3, StuckRate: 0.2, NotFoundRate: 0.1})
	client := srv.NewClient(t, smsbat.AuthHeader)
	seen := map[string]bool{}
	for _, id := range ids(200) {
		e := srv.Expected(id)
		var want []string
		switch {
		case e.NotFound:
			want = []string{"404", "404", "404", "404"}
			seen["not found"] = true
		case e.Stuck:
			want = []string{"processing", "processing", "processing", "processing"}
			seen["stuck"] = true
		default:
			fin := e.Final.Status.DeliveryStatus
			want = [][]string{
				1: {fin, fin, fin, fin},
				2: {"scheduled", fin, fin, fin},
				3: {"scheduled", "processing", fin, fin},
			}[e.PollsToFinal]
			seen[fmt.Sprint("final at ", e.PollsToFinal)] = true
		}
		var got []string
		for range want {
			res, err := client.Status(context.Background(), id)
			switch {
			case errors.Is(err, smsbat.ErrNotFound):
				got = append(got, "404")
			case err != nil:
				t.Fatalf("Status(%q): %v", id, err)
			default:
				got = append(got, res.Status.DeliveryStatus)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Status(%q) over 4 polls (-want +got):\n%s", id, diff)
		}
		if n := srv.CountFor(id); n != 4 {
			t.Errorf("CountFor(%q) = %d, want 4", id, n)
		}
	}
	if len(seen) != 5 {
		t.Errorf("cases covered: %v, want not found, stuck and final at 1, 2, 3", seen)
	}
}

func TestRouting(t *testing.T) {
	srv := smsbattest.NewServer(t, fakeapi.Options{KeepLog: true})
	tests := []struct {
		name, method, path string
		auth               bool
		wantCode           int
		wantErrCode        string
	}{
		{"message", "GET", "/bat/message/abc", true, 200, ""},
		{"escaped slash is one segment", "GET", "/bat/message/a%2Fb", true, 200, ""},
		{"two segments", "GET", "/bat/message/a/b", true, 404, "NOT_FOUND"},
		{"trailing slash", "GET", "/bat/message/abc/", true, 404, "NOT_FOUND"},
		{"no id", "GET", "/bat/message/", true, 404, "NOT_FOUND"},
		{"other endpoint", "GET", "/bat/messagelist", true, 404, "NOT_FOUND"},
		{"root", "GET", "/", true, 404, "NOT_FOUND"},
		{"post", "POST", "/bat/message/abc", true, 405, "METHOD_NOT_ALLOWED"},
		{"no credentials", "GET", "/bat/message/abc", false, 401, "UNAUTHORIZED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if tt.auth {
				req.Header.Set("X-Authorization-Key", fakeapi.DefaultAPIKey)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error struct{ Code, Message string }
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("%s %s: body is not JSON: %v", tt.method, tt.path, err)
			}
			if resp.StatusCode != tt.wantCode || body.Error.Code != tt.wantErrCode {
				t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, resp.StatusCode, body.Error.Code, tt.wantCode, tt.wantErrCode)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("%s %s: Content-Type = %q, want application/json", tt.method, tt.path, got)
			}
			if tt.wantCode == 405 && resp.Header.Get("Allow") != "GET" {
				t.Errorf("%s %s: Allow = %q, want GET", tt.method, tt.path, resp.Header.Get("Allow"))
			}
		})
	}
	log := srv.Requests()
	if len(log) != len(tests) {
		t.Fatalf("Requests() has %d entries, want %d", len(log), len(tests))
	}
	if got, want := log[1], (fakeapi.Request{Time: log[1].Time, Method: "GET", RawPath: "/bat/message/a%2Fb", ID: "a/b", Auth: smsbat.AuthHeader, Status: 200}); got != want {
		t.Errorf("Requests()[1] = %+v, want %+v", got, want)
	}
	if srv.Count() != int64(len(tests)) {
		t.Errorf("Count() = %d, want %d", srv.Count(), len(tests))
	}
}

func TestAuth(t *testing.T) {
	opts := fakeapi.Options{APIKey: "k", Username: "u", Password: "p", KeepLog: true}
	srv := smsbattest.NewServer(t, opts)
	tests := []struct {
		name     string
		set      func(*http.Request)
		wantCode int
		wantMode smsbat.AuthMode
	}{
		{"header", func(r *http.Request) { r.Header.Set("X-Authorization-Key", "k") }, 200, smsbat.AuthHeader},
		{"basic", func(r *http.Request) { r.SetBasicAuth("u", "p") }, 200, smsbat.AuthBasic},
		{"key as password", func(r *http.Request) { r.SetBasicAuth("@", "k") }, 200, smsbat.AuthKeyPassword},
		{"wrong header", func(r *http.Request) { r.Header.Set("X-Authorization-Key", "K") }, 401, smsbat.AuthHeader},
		{"wrong password", func(r *http.Request) { r.SetBasicAuth("u", "x") }, 401, smsbat.AuthBasic},
		{"key with a user", func(r *http.Request) { r.SetBasicAuth("u", "k") }, 401, smsbat.AuthBasic},
		{"wrong key as password", func(r *http.Request) { r.SetBasicAuth("@", "p") }, 401, smsbat.AuthKeyPassword},
		{"wrong header beats right basic", func(r *http.Request) { r.Header.Set("X-Authorization-Key", "x"); r.SetBasicAuth("u", "p") }, 401, smsbat.AuthHeader},
		{"none", func(*http.Request) {}, 401, ""},
		{"default key refused when another is set", func(r *http.Request) { r.Header.Set("X-Authorization-Key", fakeapi.DefaultAPIKey) }, 401, smsbat.AuthHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/bat/message/m1", nil)
			tt.set(req)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Errorf("GET with %s = %d, want %d", tt.name, resp.StatusCode, tt.wantCode)
			}
			if tt.wantCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("GET with %s: 401 without WWW-Authenticate", tt.name)
			}
			log := srv.Requests()
			if got := log[len(log)-1].Auth; got != tt.wantMode {
				t.Errorf("GET with %s: logged auth %q, want %q", tt.name, got, tt.wantMode)
			}
		})
	}
	if n := srv.CountFor("m1"); n != 3 {
		t.Errorf("CountFor(m1) = %d, want 3 (unauthorised requests do not count)", n)
	}
}

// TestFaults checks that each knob produces what FaultAt predicts and roughly its rate.
func TestFaults(t *testing.T) {
	opts := fakeapi.Options{Seed: 11, Fault429: 0.1, Fault500: 0.1, FaultGarbage: 0.1, FaultReset: 0.1, RetryAfter: "2", KeepLog: true}
	srv := smsbattest.NewServer(t, opts)
	// No keep-alive, so the transport never resends a reset request on its own.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	count := map[fakeapi.Fault]int{}
	const polls = 5
	list := ids(100)
	for _, id := range list {
		answered := 0
		for n := 1; n <= polls; n++ {
			fault := srv.FaultAt(id, n)
			count[fault]++
			req, _ := http.NewRequest("GET", srv.URL+"/bat/message/"+id, nil)
			req.Header.Set("X-Authorization-Key", fakeapi.DefaultAPIKey)
			resp, err := hc.Do(req)
			if fault == fakeapi.FaultReset {
				if err == nil {
					resp.Body.Close()
					t.Errorf("request %d for %s: got HTTP %d, want a network error (reset)", n, id, resp.StatusCode)
				}
				continue
			}
			if err != nil {
				t.Fatalf("request %d for %s (fault %v): %v", n, id, fault, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch fault {
			case fakeapi.Fault429:
				if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" || !strings.Contains(string(body), "RATE_LIMIT_EXCEEDED") {
					t.Errorf("request %d for %s: %d Retry-After %q %s, want 429 Retry-After 2", n, id, resp.StatusCode, resp.Header.Get("Retry-After"), body)
				}
			case fakeapi.Fault500:
				if resp.StatusCode != 500 || !strings.Contains(string(body), "INTERNAL_ERROR") {
					t.Errorf("request %d for %s: %d %s, want 500 INTERNAL_ERROR", n, id, resp.StatusCode, body)
				}
			case fakeapi.FaultGarbage:
				var st smsbat.Status
				if resp.StatusCode != 200 || json.Unmarshal(body, &st) == nil {
					t.Errorf("request %d for %s: %d %s, want 200 with an undecodable body", n, id, resp.StatusCode, body)
				}
			case fakeapi.FaultNone:
				answered++
				if want := srv.AnswerAt(id, answered).Body; resp.StatusCode != 200 || string(body) != string(want) {
					t.Errorf("request %d for %s: %d %s, want 200 %s (poll %d)", n, id, resp.StatusCode, body, want, answered)
				}
			}
		}
		if got := srv.CountFor(id); got != polls {
			t.Errorf("CountFor(%s) = %d, want %d", id, got, polls)
		}
	}
	for _, f := range []fakeapi.Fault{fakeapi.Fault429, fakeapi.Fault500, fakeapi.FaultGarbage, fakeapi.FaultReset} {
		if got := float64(count[f]) / float64(len(list)*polls); got < 0.05 || got > 0.15 {
			t.Errorf("fault %v rate = %.3f, want about 0.1", f, got)
		}
	}
}

func TestGarbageKinds(t *testing.T) {
	srv := smsbattest.NewServer(t, fakeapi.Options{FaultGarbage: 1})
	kinds := map[string]int{}
	for _, id := range ids(40) {
		code, hdr, body := get(t, srv.Client(), srv.URL+"/bat/message/"+id)
		if code != 200 {
			t.Fatalf("GET %s = %d, want 200", id, code)
		}
		kinds[hdr.Get("Content-Type")]++
		if strings.HasPrefix(hdr.Get("Content-Type"), "application/json") && !strings.HasPrefix(body, "{") {
			t.Errorf("GET %s: truncated JSON %q does not start like JSON", id, body)
		}
	}
	if len(kinds) != 2 {
		t.Errorf("garbage content types = %v, want both HTML and truncated JSON", kinds)
	}
}

func TestRateLimit(t *testing.T) {
	srv := smsbattest.NewServer(t, fakeapi.Options{RateLimit: 5})
	var ok, limited int
	for range 20 {
		code, hdr, _ := get(t, srv.Client(), srv.URL+"/bat/message/x")
		switch code {
		case 200:
			ok++
		case 429:
			limited++
			if hdr.Get("Retry-After") != "1" {
				t.Errorf("rate-limited answer: Retry-After = %q, want 1", hdr.Get("Retry-After"))
			}
		default:
			t.Fatalf("GET = %d, want 200 or 429", code)
		}
	}
	// The burst is 5; the 20 requests take a few milliseconds, which may refill one token.
	if ok < 5 || ok > 7 || ok+limited != 20 {
		t.Errorf("20 quick requests at 5/s: %d answered, %d limited; want 5 to 7 answered", ok, limited)
	}
}

func TestHook(t *testing.T) {
	var mu sync.Mutex
	var seen []int
	srv := smsbattest.NewServer(t, fakeapi.Options{KeepLog: true, Hook: func(w http.ResponseWriter, r *http.Request, id string, n int) bool {
		mu.Lock()
		seen = append(seen, n)
		mu.Unlock()
		if n == 2 {
			w.WriteHeader(http.StatusTeapot)
			return true
		}
		return false
	}})
	var codes []int
	for range 3 {
		code, _, _ := get(t, srv.Client(), srv.URL+"/bat/message/h")
		codes = append(codes, code)
	}
	if diff := cmp.Diff([]int{1, 2, 3}, seen); diff != "" {
		t.Errorf("Hook n (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{200, 418, 200}, codes); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	var logged []int
	for _, r := range srv.Requests() {
		logged = append(logged, r.Status)
	}
	if diff := cmp.Diff(codes, logged); diff != "" {
		t.Errorf("logged statuses (-want +got):\n%s", diff)
	}
}

func TestLatencyHonoursCancel(t *testing.T) {
	srv := smsbattest.NewServer(t, fakeapi.Options{Latency: time.Hour, KeepLog: true})
	client := srv.NewClient(t, smsbat.AuthHeader)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := client.Status(ctx, "slow")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Status with an hour of latency and a 50ms deadline: err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Status took %v, want about 50ms", d)
	}
	srv.Close() // waits for the handler: it must have stopped sleeping
	if log := srv.Requests(); len(log) != 1 || log[0].Status != 0 {
		t.Errorf("Requests() = %+v, want one request with no answer", log)
	}
}

func TestKeepLogOff(t *testing.T) {
	srv := smsbattest.NewServer(t, fakeapi.Options{})
	get(t, srv.Client(), srv.URL+"/bat/message/x")
	if len(srv.Requests()) != 0 || srv.Count() != 1 || srv.CountFor("x") != 1 {
		t.Errorf("without KeepLog: %d logged, Count %d, CountFor %d; want 0, 1, 1", len(srv.Requests()), srv.Count(), srv.CountFor("x"))
	}
}

// discard is a minimal ResponseWriter for benchmarks that measure the handler alone.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func BenchmarkHandler(b *testing.B) {
	h := fakeapi.NewHandler(fakeapi.DefaultOptions())
	list := ids(100000)
	reqs := make([]*http.Request, len(list))
	for i, id := range list {
		reqs[i] = httptest.NewRequest("GET", "/bat/message/"+id, nil)
		reqs[i].Header.Set("X-Authorization-Key", fakeapi.DefaultAPIKey)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discard{h: http.Header{}}
		i := 0
		for pb.Next() {
			h.ServeHTTP(w, reqs[i%len(reqs)])
			i += 7
		}
	})
}

// BenchmarkServer measures the fake over loopback HTTP, as the fetch benchmark uses it.
func BenchmarkServer(b *testing.B) {
	srv := smsbattest.NewServer(b, fakeapi.DefaultOptions())
	hc := smsbat.NewHTTPClient(10*time.Second, 32)
	list := ids(100000)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			req, _ := http.NewRequest("GET", srv.URL+"/bat/message/"+list[i%len(list)], nil)
			req.Header.Set("X-Authorization-Key", fakeapi.DefaultAPIKey)
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			i += 13
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// TestDemoData guards what `batstat demo` shows: with DefaultOptions, every sample
// campaign must come out as a mix after two passes, so the reports have something to say.
func TestDemoData(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "demo", "*.csv"))
	if err != nil || len(files) < 3 {
		t.Fatalf("demo campaigns: %v, %v; want at least 3 files", files, err)
	}
	h := fakeapi.NewHandler(fakeapi.DefaultOptions())
	seen := map[string]bool{}
	total := 0
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(fh).ReadAll()
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got := map[string]bool{}
		for _, rec := range recs[1:] {
			id := rec[0]
			if seen[id] {
				t.Errorf("%s: ID %s appears twice in the demo data", f, id)
			}
			seen[id] = true
			a := h.AnswerAt(id, 2)
			if a.Code == http.StatusNotFound {
				got["not_found"] = true
				continue
			}
			got[a.Status.DeliveryStatus] = true
			if len(a.Status.Fallbacks) > 0 {
				got["fallback"] = true
			}
			if a.Status.BillCurrency != "" {
				got[a.Status.BillCurrency] = true
			}
		}
		total += len(recs) - 1
		for _, want := range []string{"delivered", "undeliverable", "permanenterror", "processing", "not_found", "fallback", "UAH", "USD"} {
			if !got[want] {
				t.Errorf("%s after two passes: no %s", filepath.Base(f), want)
			}
		}
	}
	if total < 2500 || total > 3500 {
		t.Errorf("demo data has %d messages, want about 3000", total)
	}
}
