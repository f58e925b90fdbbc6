package webhook_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/batstat/batstat/smsbat"
	"github.com/batstat/batstat/webhook"
)

func money(m smsbat.Money) *smsbat.Money { return &m }

func TestParseBody(t *testing.T) {
	ts := time.Date(2025, 1, 23, 10, 30, 0, 0, time.UTC)
	tests := []struct {
		name string
		body string
		want []webhook.Event
		err  string // substring of the error; "" for none
	}{
		{"the documented event",
			`{"messageId": "abc123def456", "deliverystatus": "delivered",
			  "timestamp": "2025-01-23T10:30:00Z", "cost": 0.05}`,
			[]webhook.Event{{MessageID: "abc123def456", DeliveryStatus: "delivered", Timestamp: ts, Cost: money(50000),
				Raw: []byte(`{"messageId":"abc123def456","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z","cost":0.05}`)}}, ""},
		{"an array, cost absent, null and as a string, other fields kept",
			` [{"messageId":"a","deliverystatus":"scheduled","timestamp":"2025-01-23T12:30:00.5+02:00"},
			   {"messageId":" b ","deliverystatus":"read","timestamp":"2025-01-23T10:30:00Z","cost":null,"x":[1, 2]},
			   {"messageId":"c\u00e9","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z","cost":"0.1000000"}] `,
			[]webhook.Event{
				{MessageID: "a", DeliveryStatus: "scheduled", Timestamp: ts.Add(500 * time.Millisecond),
					Raw: []byte(`{"messageId":"a","deliverystatus":"scheduled","timestamp":"2025-01-23T12:30:00.5+02:00"}`)},
				{MessageID: "b", DeliveryStatus: "read", Timestamp: ts,
					Raw: []byte(`{"messageId":" b ","deliverystatus":"read","timestamp":"2025-01-23T10:30:00Z","cost":null,"x":[1,2]}`)},
				{MessageID: "cé", DeliveryStatus: "delivered", Timestamp: ts, Cost: money(100000),
					Raw: []byte(`{"messageId":"c\u00e9","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z","cost":"0.1000000"}`)},
			}, ""},
		{"an empty array", `[]`, []webhook.Event{}, ""},
		{"a refund", `{"messageId":"a","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z","cost":-1.5e-1}`,
			[]webhook.Event{{MessageID: "a", DeliveryStatus: "delivered", Timestamp: ts, Cost: money(-150000),
				Raw: []byte(`{"messageId":"a","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z","cost":-1.5e-1}`)}}, ""},

		{"empty body", " \n", nil, "empty body"},
		{"not JSON", `messageId=a`, nil, "not a JSON object or array"},
		{"truncated JSON", `{"messageId":"a","deliverystatus":"delivered"`, nil, "not valid JSON"},
		{"two objects", `{"messageId":"a","deliverystatus":"d","timestamp":"2025-01-23T10:30:00Z"} {}`, nil, "not valid JSON"},
		{"truncated array", `[{"messageId":"a"}`, nil, "not valid JSON"},
		{"a number in an array", `[1]`, nil, "event 1 of 1: event is not a JSON object"},
		{"missing messageId", `{"deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z"}`, nil, "messageId: missing"},
		{"null messageId", `{"messageId":null,"deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z"}`, nil, "messageId: missing"},
		{"empty messageId", `{"messageId":"","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z"}`, nil, "messageId: empty"},
		{"blank messageId", `{"messageId":"  ","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z"}`, nil, "messageId: empty"},
		{"numeric messageId", `{"messageId":123,"deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z"}`, nil, "messageId: not a JSON string"},
		{"control character in messageId", `{"messageId":"a\u0000b","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z"}`, nil, "messageId: control character U+0000"},
		{"messageId too long", `{"messageId":"` + strings.Repeat("x", 257) + `","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z"}`, nil, "messageId: 257 bytes"},
		{"missing deliverystatus", `{"messageId":"a","timestamp":"2025-01-23T10:30:00Z"}`, nil, "deliverystatus: missing"},
		{"empty deliverystatus", `{"messageId":"a","deliverystatus":"","timestamp":"2025-01-23T10:30:00Z"}`, nil, "deliverystatus: empty"},
		{"missing timestamp", `{"messageId":"a","deliverystatus":"delivered"}`, nil, "timestamp: missing"},
		{"unparseable timestamp", `{"messageId":"a","deliverystatus":"delivered","timestamp":"23/01/2025 10:30"}`, nil, "timestamp: \"23/01/2025 10:30\" is not an RFC 3339 time"},
		{"timestamp without zone", `{"messageId":"a","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00"}`, nil, "timestamp:"},
		{"numeric timestamp", `{"messageId":"a","deliverystatus":"delivered","timestamp":1737628200}`, nil, "timestamp: not a JSON string"},
		{"cost with seven decimals", `{"messageId":"a","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z","cost":0.0500001}`, nil, "cost: money \"0.0500001\": more than 6 decimal places"},
		{"cost not a number", `{"messageId":"a","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z","cost":true}`, nil, "cost:"},
		{"a bad event in a batch", `[{"messageId":"a","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z"},{"messageId":"b","deliverystatus":"delivered"}]`, nil, "event 2 of 2: timestamp: missing"},
		{"invalid UTF-8", "{\"messageId\":\"a\xff\",\"deliverystatus\":\"delivered\",\"timestamp\":\"2025-01-23T10:30:00Z\"}", nil, "not valid UTF-8"},
		{"an event too large", `{"messageId":"a","deliverystatus":"delivered","timestamp":"2025-01-23T10:30:00Z","pad":"` + strings.Repeat("x", webhook.MaxEventBytes) + `"}`, nil, "bytes, more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := webhook.ParseBody([]byte(tt.body))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseBody(%.80q) = %v, %v; want an error with %q", tt.body, got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseBody(%.80q) = %v", tt.body, err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("ParseBody(%.80q) (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

// A rule broken by an event is a *FieldError naming the field, for callers that report it.
func TestParseEventFieldError(t *testing.T) {
	_, err := webhook.ParseEvent([]byte(`{"messageId":"a","deliverystatus":"delivered","timestamp":"soon"}`))
	var fe *webhook.FieldError
	if !errors.As(err, &fe) || fe.Field != "timestamp" {
		t.Errorf("ParseEvent with a bad timestamp = %v, want a *FieldError for timestamp", err)
	}
}
