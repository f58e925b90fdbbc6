package store

import (
	"encoding/json"
	"testing"

	"github.com/batstat/batstat/smsbat"
)

// The staged text of the JSON columns is json.Marshal's encoding, byte for byte, for
// plain values and for those it escapes alike.
func TestStagedJSONIsMarshals(t *testing.T) {
	values := []string{"", "sms", "viber", "not_used", "delivered", "a<b", "x&y", `q"uote`, `back\slash`,
		"tab\there", "ünï", "\u2028", "\xff", "~", "zzz", "AAA"}
	var fallbacks [][]smsbat.Fallback
	var maps []map[string]string
	fallbacks = append(fallbacks, []smsbat.Fallback{})
	maps = append(maps, map[string]string{})
	for i, a := range values {
		for j, b := range values {
			fallbacks = append(fallbacks, []smsbat.Fallback{{Type: a, Status: b}, {Type: values[(i+j)%len(values)], Status: a}})
			maps = append(maps, map[string]string{a: b, b: a, values[(i*7+j)%len(values)]: "sms"})
		}
	}
	var buf []byte
	var keys []string
	for _, fs := range fallbacks {
		want, _ := json.Marshal(fs)
		if buf = fallbacksJSON(buf[:0], fs); string(buf) != string(want) {
			t.Errorf("fallbacksJSON(%q) = %s, json.Marshal %s", fs, buf, want)
		}
	}
	for _, m := range maps {
		want, _ := json.Marshal(m)
		if buf, keys = stringMapJSON(buf[:0], keys, m); string(buf) != string(want) {
			t.Errorf("stringMapJSON(%q) = %s, json.Marshal %s", m, buf, want)
		}
	}
}
