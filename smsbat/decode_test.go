package smsbat

import (
	"encoding/json"
	"reflect"
	"testing"
)

// decodeSeeds are bodies of every shape: the fake API's basic and extended answers, and
// the forms the fast path leaves to encoding/json.
var decodeSeeds = []string{
	`{"messagelistId":339707,"messageId":"msg-000000001-7f3a9c","deliverystatus":"delivered","partscount":2,"cost":0.075}`,
	`{"messagelistId":653869,"messageId":"0000000000000000","deliverystatus":"undeliverable","partscount":3,"cost":0.00,"fallbacks":[{"type":"sms","status":"undeliverable"}],"extendedStatuses":{"viber":"undeliverable","sms":"undeliverable"},"rate":0.0125,"rateAmount":0.0375,"rateCurrency":"USD","billAmount":0.00,"billCurrency":"USD"}`,
	`{"messagelistId":355158,"messageId":"cc623af8783354e7","deliverystatus":"delivered","partscount":1,"cost":2.1,"fallbacks":[{"type":"sms","status":"not_used"}],"extendedStatuses":{"viber":"delivered","sms":"not_used"},"rate":2.1,"rateAmount":2.1,"rateCurrency":"UAH","billAmount":2.1,"billCurrency":"UAH"}`,
	` { "deliverystatus" : "processing" , "fallbacks" : [ ] , "extendedStatuses" : { } } `,
	`{"deliverystatus":"delivered","fallbacks":[{},{"status":"x"}],"extendedStatuses":{"a":"1","a":"2"}}`,
	`{"deliverystatus":"delivered","cost":"0.05"}`,
	`{"deliverystatus":"delivered","cost":null,"fallbacks":null}`,
	`{"DeliveryStatus":"delivered"}`,
	`{"deliverystatus":"delivered","deliverystatus":"scheduled"}`,
	`{"deliverystatus":"d\u00e9livr\u00e9","messageId":"\"q\""}`,
	`{"deliverystatus":"délivré"}`,
	"{\"deliverystatus\":\"\xff\"}",
	`{"deliverystatus":"delivered","partscount":1.0}`,
	`{"deliverystatus":"delivered","partscount":-0,"messagelistId":99999999999999999999}`,
	`{"deliverystatus":"delivered","cost":1e-2,"rate":-0.5E+1,"billAmount":0.0000001}`,
	`{"deliverystatus":"delivered","extra":1}`,
	`{"deliverystatus":"delivered"} x`,
	`{"deliverystatus":"delivered",}`,
	`{"deliverystatus":"delivered","cost":01}`,
	`{"deliverystatus":"delivered","cost":1.}`,
	`{}`, `[]`, `null`, ``, `{`, `"x"`,
}

// The fast path decodes exactly what encoding/json decodes, or leaves the body to it.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast Status
		if !decodeFast(body, &fast) {
			return
		}
		var slow Status
		if err := json.Unmarshal(body, &slow); err != nil {
			t.Fatalf("fast path decoded %q, encoding/json failed: %v", body, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast path decoded\n%+v\nencoding/json\n%+v", body, fast, slow)
		}
	})
}

// The fake API's answers take the fast path.
func TestDecodeFastTakesPlainAnswers(t *testing.T) {
	for _, s := range decodeSeeds[:4] {
		var st Status
		if !decodeFast([]byte(s), &st) {
			t.Errorf("fast path refused %s", s)
		}
	}
}

func BenchmarkDecodeStatus(b *testing.B) {
	body := []byte(decodeSeeds[2])
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeStatus(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var st Status
			if err := json.Unmarshal(body, &st); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// plainMoney agrees with ParseMoney wherever it takes a number.
func FuzzPlainMoney(f *testing.F) {
	for _, s := range []string{"0", "-0", "0.05", "2.1", "0.075", "-1.5", "123456789012.123456", "1.1234567", "1e2", ".5", "5.", "00.10", "-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, ok := plainMoney([]byte(s))
		if !ok {
			return
		}
		want, err := ParseMoney(s)
		if err != nil || m != want {
			t.Fatalf("plainMoney(%q) = %d, ParseMoney %d, %v", s, m, want, err)
		}
	})
}
