package smsbat_test

import (
	"encoding/json"
	"math"
	"slices"
	"testing"

	"github.com/batstat/batstat/smsbat"
)

func TestParseMoney(t *testing.T) {
	tests := []struct {
		in   string
		want smsbat.Money
	}{
		{"0.05", 50000},
		{"0.0375", 37500},
		{"1e-2", 10000},
		{"5E-2", 50000},
		{"500e-4", 50000},
		{"0.00005e3", 50000},
		{"10e-7", 1}, // six places once the exponent is applied
		{"0.000001", 1},
		{"0.00", 0},
		{"0", 0},
		{"-0", 0},
		{"0e-40", 0},
		{"3", 3000000},
		{"+2", 2000000},
		{"-1.5", -1500000},
		{".5", 500000},
		{"5.", 5000000},
		{"1.2345600", 1234560},
		{"1e+2", 100000000},
		{"123456789012.123456", 123456789012123456},
		{"9223372036854.775807", math.MaxInt64},
	}
	for _, tt := range tests {
		got, err := smsbat.ParseMoney(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseMoney(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{
		"0.0000001", "0.1234567", "1e-7", "0.05e-5", // more than six decimal places
		"", "-", "+", ".", "e5", "1e", "1e+", "abc", "1.2.3", "0x10", "1_000", "1,5", " 1",
		"NaN", "Inf", "--1", "+-1",
		"1e41", "1e30", "99999999999999999999", "9223372036854.775808", // out of range
	} {
		if got, err := smsbat.ParseMoney(in); err == nil {
			t.Errorf("ParseMoney(%q) = %d, nil; want an error", in, got)
		}
	}
}

func TestMoneyString(t *testing.T) {
	tests := []struct {
		in   smsbat.Money
		want string
	}{
		{0, "0.000000"},
		{1, "0.000001"},
		{50000, "0.050000"},
		{-50000, "-0.050000"},
		{2100000, "2.100000"},
		{math.MaxInt64, "9223372036854.775807"},
		{math.MinInt64, "-9223372036854.775808"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Money(%d).String() = %s, want %s", int64(tt.in), got, tt.want)
		}
	}
}

func TestMoneyJSON(t *testing.T) {
	tests := []struct {
		in   string
		want smsbat.Money
		out  string
	}{
		{`0.05`, 50000, `0.05`},
		{`0.0375`, 37500, `0.0375`},
		{`1e-2`, 10000, `0.01`},
		{`"0.1"`, 100000, `0.1`},
		{`" 0.25 "`, 250000, `0.25`},
		{`0.00`, 0, `0.0`},
		{`2`, 2000000, `2.0`},
		{`-0.5`, -500000, `-0.5`},
	}
	for _, tt := range tests {
		var m smsbat.Money
		if err := json.Unmarshal([]byte(tt.in), &m); err != nil || m != tt.want {
			t.Errorf("json.Unmarshal(%s) = %d, %v; want %d", tt.in, m, err, tt.want)
		}
		out, err := json.Marshal(m)
		if err != nil || string(out) != tt.out {
			t.Errorf("json.Marshal(Money(%d)) = %s, %v; want %s", m, out, err, tt.out)
		}
		var back smsbat.Money
		if err := json.Unmarshal(out, &back); err != nil || back != m {
			t.Errorf("round trip of %s = %d, %v; want %d", out, back, err, m)
		}
	}
	for _, in := range []string{`0.1234567`, `"abc"`, `""`, `true`, `[1]`, `{}`} {
		var m smsbat.Money
		if err := json.Unmarshal([]byte(in), &m); err == nil {
			t.Errorf("json.Unmarshal(%s) = %d, nil; want an error", in, m)
		}
	}
}

// TestMoneySumDoesNotDrift is the reason Money exists: a million answers costing 0.05 add up
// to exactly 50000, where float64 does not.
func TestMoneySumDoesNotDrift(t *testing.T) {
	var one smsbat.Money
	if err := json.Unmarshal([]byte(`0.05`), &one); err != nil {
		t.Fatal(err)
	}
	var sum smsbat.Money
	var fsum float64
	for range 1_000_000 {
		sum += one
		fsum += 0.05
	}
	if got := sum.String(); got != "50000.000000" {
		t.Errorf("a million times 0.05 as Money = %s, want 50000.000000", got)
	}
	if fsum == 50000 {
		t.Log("float64 happened not to drift; the Money check above is what matters")
	}
}

func TestIsTerminal(t *testing.T) {
	for s, want := range map[string]bool{
		smsbat.StatusDelivered:      true,
		smsbat.StatusUndeliverable:  true,
		smsbat.StatusPermanentError: true,
		smsbat.StatusScheduled:      false,
		smsbat.StatusProcessing:     false,
		smsbat.StatusNotFound:       false,
		"read":                      false,
		"expired":                   false,
		"Delivered":                 false,
		"":                          false,
	} {
		if got := smsbat.IsTerminal(s); got != want {
			t.Errorf("IsTerminal(%q) = %v, want %v", s, got, want)
		}
	}
}

// TerminalStatuses and IsTerminal agree, and a caller cannot change the list.
func TestTerminalStatuses(t *testing.T) {
	got := smsbat.TerminalStatuses()
	want := []string{smsbat.StatusDelivered, smsbat.StatusUndeliverable, smsbat.StatusPermanentError}
	if !slices.Equal(got, want) {
		t.Errorf("TerminalStatuses() = %q, want %q", got, want)
	}
	for _, s := range got {
		if !smsbat.IsTerminal(s) {
			t.Errorf("IsTerminal(%q) = false for a status of TerminalStatuses", s)
		}
	}
	got[0] = smsbat.StatusScheduled
	if smsbat.IsTerminal(smsbat.StatusScheduled) || !smsbat.IsTerminal(smsbat.StatusDelivered) {
		t.Errorf("changing the slice TerminalStatuses returned changed IsTerminal")
	}
}

// Channel and Currency read an answer as `batstat status` shows it; the bodies are the
// provider's forms, extended and basic, and what fallbacks make of them.
func TestStatusChannelAndCurrency(t *testing.T) {
	tests := []struct {
		name, body        string
		channel, currency string
	}{
		{"basic", `{"deliverystatus":"delivered","cost":0.05}`, "", ""},
		{"early", `{"deliverystatus":"processing","partscount":1}`, "", ""},
		{"primary delivered", `{"deliverystatus":"delivered","fallbacks":[{"type":"sms","status":"not_used"}],
			"extendedStatuses":{"viber":"delivered","sms":"not_used"},"rateCurrency":"USD","billCurrency":"UAH"}`, "viber", "UAH"},
		{"fallback delivered", `{"deliverystatus":"delivered","fallbacks":[{"type":"sms","status":"delivered"}],
			"extendedStatuses":{"viber":"undeliverable","sms":"delivered"},"rateCurrency":"USD"}`, "sms", "USD"},
		{"second fallback delivered", `{"deliverystatus":"delivered",
			"fallbacks":[{"type":"rcs","status":"undeliverable"},{"type":"sms","status":"delivered"}],
			"extendedStatuses":{"viber":"undeliverable","rcs":"undeliverable","sms":"delivered"}}`, "sms", ""},
		{"all failed: the last tried", `{"deliverystatus":"undeliverable",
			"fallbacks":[{"type":"rcs","status":"undeliverable"},{"type":"sms","status":"undeliverable"}],
			"extendedStatuses":{"viber":"undeliverable","rcs":"undeliverable","sms":"undeliverable"}}`, "sms", ""},
		{"fallbacks listed in another order than the object", `{"deliverystatus":"undeliverable",
			"fallbacks":[{"type":"sms","status":"undeliverable"},{"type":"rcs","status":"undeliverable"}],
			"extendedStatuses":{"viber":"undeliverable","rcs":"undeliverable","sms":"undeliverable"}}`, "rcs", ""},
		{"fallback not needed yet", `{"deliverystatus":"read","fallbacks":[{"type":"sms","status":"not_used"}],
			"extendedStatuses":{"viber":"read","sms":"not_used"}}`, "viber", ""},
		{"no fallback configured", `{"deliverystatus":"permanenterror","fallbacks":[],"extendedStatuses":{"sms":"permanenterror"}}`, "sms", ""},
		{"fallbacks without extended statuses", `{"deliverystatus":"delivered",
			"fallbacks":[{"type":"sms","status":"delivered"}]}`, "sms", ""},
		{"nothing tried", `{"deliverystatus":"scheduled","fallbacks":[{"type":"sms","status":"not_used"}],
			"extendedStatuses":{"viber":"","sms":"not_used"}}`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s smsbat.Status
			if err := json.Unmarshal([]byte(tt.body), &s); err != nil {
				t.Fatal(err)
			}
			if got := s.Channel(); got != tt.channel {
				t.Errorf("Channel() = %q, want %q", got, tt.channel)
			}
			if got := s.Currency(); got != tt.currency {
				t.Errorf("Currency() = %q, want %q", got, tt.currency)
			}
		})
	}
}
