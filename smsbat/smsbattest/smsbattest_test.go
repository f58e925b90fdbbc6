package smsbattest_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/smsbat/smsbattest"
)

// TestNewServer checks the wrapper's promises: a client of every auth mode gets the
// handler's answers over HTTP, and the server is gone once the test that made it ends.
func TestNewServer(t *testing.T) {
	var url string
	t.Run("serve", func(t *testing.T) {
		srv := smsbattest.NewServer(t, smsbattest.DefaultOptions())
		url = srv.URL
		const id = "538454127b096493"
		for i, mode := range []smsbat.AuthMode{smsbat.AuthHeader, smsbat.AuthBasic, smsbat.AuthKeyPassword} {
			res, err := srv.NewClient(t, mode).Status(context.Background(), id)
			if err != nil {
				t.Fatalf("Status(%q) with %s auth: %v", id, mode, err)
			}
			if diff := cmp.Diff(srv.AnswerAt(id, i+1).Status, res.Status); diff != "" {
				t.Errorf("Status(%q) with %s auth, poll %d (-want +got):\n%s", id, mode, i+1, diff)
			}
		}
		if got := srv.CountFor(id); got != 3 {
			t.Errorf("CountFor(%q) = %d, want 3", id, got)
		}
	})
	resp, err := http.Get(url + "/bat/message/x")
	if err == nil {
		resp.Body.Close()
		t.Errorf("GET after the test ended = %d, want a refused connection", resp.StatusCode)
	}
}

// TestNewInProcessClient checks that the in-process client gets the handler's answers,
// its latency on the bubble's clock, and its resets as errors.
func TestNewInProcessClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := smsbattest.NewHandler(smsbattest.Options{Latency: time.Second, ExtendedRate: 0.5})
		client := smsbattest.NewInProcessClient(t, h, smsbat.AuthKeyPassword)
		start := time.Now()
		for _, id := range []string{"a", "b/c", "d e"} {
			res, err := client.Status(context.Background(), id)
			if err != nil {
				t.Fatalf("Status(%q): %v", id, err)
			}
			if want := h.AnswerAt(id, 1).Body; string(res.Body) != string(want) {
				t.Errorf("Status(%q) body = %s, want %s", id, res.Body, want)
			}
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("three answers with 1s latency took %v of the bubble's time, want 3s", got)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if _, err := client.Status(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Status with a deadline inside the latency: err = %v, want DeadlineExceeded", err)
		}
	})

	h := smsbattest.NewHandler(smsbattest.Options{FaultReset: 1})
	_, err := smsbattest.NewInProcessClient(t, h, smsbat.AuthHeader).Status(context.Background(), "x")
	var apiErr *smsbat.APIError
	if err == nil || errors.As(err, &apiErr) {
		t.Errorf("Status with every connection reset: err = %v, want a transport error", err)
	}
}
