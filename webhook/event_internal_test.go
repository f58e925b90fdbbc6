package webhook

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzScanEvent checks that scanEvent, when it takes an object, takes from it what
// json.Unmarshal takes.
func FuzzScanEvent(f *testing.F) {
	for _, seed := range []string{
		`{"messageId":"a","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z","cost":0.05}`,
		` { "x" : [1, {"messageId": "no"}, "]}"] , "messageId" : "a\"b" , "cost" : null , "messageId":"c"} `,
		`{"MessageId":"a"}`, `{"mess\u0061geId":"a"}`, `{}`, `{"cost":-1.5e-2,"timestamp":{"a":[]}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		var fast, slow wireEvent
		if !scanEvent(raw, &fast) {
			return
		}
		if err := json.Unmarshal(raw, &slow); err != nil {
			return // not an object
		}
		if diff := cmp.Diff(slow, fast); diff != "" {
			t.Errorf("scanEvent(%q) (-json.Unmarshal +scanEvent):\n%s", raw, diff)
		}
	})
}
