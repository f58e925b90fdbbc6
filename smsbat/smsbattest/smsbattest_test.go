package smsbattest_test

import (
	"context"
	"net/http"
	"testing"

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
