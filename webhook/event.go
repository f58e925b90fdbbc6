package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/batstat/batstat/ingest/idlist"
	"github.com/batstat/batstat/smsbat"
)

// MaxEventBytes bounds one event object, in bytes as received. An event is four short
// fields; anything near this size is not one, and the bound keeps every spool line small.
const MaxEventBytes = 64 << 10

// maxStatusLength bounds deliverystatus, in bytes.
const maxStatusLength = 256

// Event is one pushed status change: the provider's
// {"messageId","deliverystatus","timestamp","cost"}.
//
// Required: messageId (a non-empty JSON string of at most idlist.MaxIDLength bytes
// without control characters, kept with surrounding white space trimmed, as fetch keeps
// IDs read from a CSV), deliverystatus (a non-empty JSON string, kept verbatim: a value
// batstat does not know is still a status) and timestamp (an RFC 3339 string, such as
// 2025-01-23T10:30:00Z or 2025-01-23T12:30:00.123+02:00). Optional: cost (a JSON number
// or numeric string with at most six decimal places, as smsbat.Money reads it; absent or
// null when the event carries none). Other fields are allowed and kept in Raw.
type Event struct {
	MessageID      string
	DeliveryStatus string
	Timestamp      time.Time     // as sent, with its offset; compare with Equal
	Cost           *smsbat.Money // nil when absent or null
	// Raw is the event object as received, with the white space between JSON tokens
	// removed so that it fits on one spool line. It is valid UTF-8 JSON.
	Raw json.RawMessage
}

// FieldError is an event that breaks a rule of Event: the receiver answers it with 400.
type FieldError struct {
	Field  string // "messageId", "deliverystatus", "timestamp", "cost", or "" for the whole event
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// wireEvent holds the fields of an event undecoded, so that each gets its own check and
// error message rather than encoding/json's, which names Go types.
type wireEvent struct {
	MessageID      json.RawMessage `json:"messageId"`
	DeliveryStatus json.RawMessage `json:"deliverystatus"`
	Timestamp      json.RawMessage `json:"timestamp"`
	Cost           json.RawMessage `json:"cost"`
}

// ParseEvent checks one event object and returns it with its fields decoded. raw must be
// a single JSON value; its white space is removed for Event.Raw. The error is a
// *FieldError when the event breaks a rule, and says why.
func ParseEvent(raw []byte) (Event, error) { return parseEvent(raw, true) }

// parseEvent is ParseEvent; without compact it keeps raw as Event.Raw as it is (the
// reader's case: a spool line's event is compact already, and raw is the caller's copy).
func parseEvent(raw []byte, compact bool) (Event, error) {
	if len(raw) > MaxEventBytes {
		return Event{}, &FieldError{Reason: fmt.Sprintf("event is %d bytes, more than %d", len(raw), MaxEventBytes)}
	}
	if !utf8.Valid(raw) {
		return Event{}, &FieldError{Reason: "event is not valid UTF-8"}
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return Event{}, &FieldError{Reason: "event is not a JSON object"}
	}
	var w wireEvent
	if !json.Valid(raw) || !scanEvent(raw, &w) {
		w = wireEvent{}
		if err := json.Unmarshal(raw, &w); err != nil {
			return Event{}, &FieldError{Reason: "event is not valid JSON: " + jsonReason(err)}
		}
	}
	var ev Event
	var err error
	if ev.MessageID, err = stringField("messageId", w.MessageID, idlist.MaxIDLength); err != nil {
		return Event{}, err
	}
	ev.MessageID = strings.TrimSpace(ev.MessageID)
	if ev.MessageID == "" {
		return Event{}, &FieldError{"messageId", "empty"}
	}
	if i := strings.IndexFunc(ev.MessageID, isControl); i >= 0 {
		return Event{}, &FieldError{"messageId", fmt.Sprintf("control character %U at byte %d", []rune(ev.MessageID[i:])[0], i)}
	}
	if ev.DeliveryStatus, err = stringField("deliverystatus", w.DeliveryStatus, maxStatusLength); err != nil {
		return Event{}, err
	}
	if ev.DeliveryStatus == "" {
		return Event{}, &FieldError{"deliverystatus", "empty"}
	}
	ts, err := stringField("timestamp", w.Timestamp, 64)
	if err != nil {
		return Event{}, err
	}
	if ev.Timestamp, err = time.Parse(time.RFC3339Nano, ts); err != nil {
		return Event{}, &FieldError{"timestamp", fmt.Sprintf("%q is not an RFC 3339 time such as 2025-01-23T10:30:00Z", ts)}
	}
	if len(w.Cost) > 0 && string(w.Cost) != "null" {
		var m smsbat.Money
		if err := m.UnmarshalJSON(w.Cost); err != nil {
			return Event{}, &FieldError{"cost", err.Error()}
		}
		ev.Cost = &m
	}
	if !compact {
		ev.Raw = raw
		return ev, nil
	}
	var b bytes.Buffer
	b.Grow(len(raw))
	if err := json.Compact(&b, raw); err != nil { // cannot fail: raw was decoded above
		return Event{}, &FieldError{Reason: "event is not valid JSON: " + jsonReason(err)}
	}
	ev.Raw = b.Bytes()
	return ev, nil
}

// eventFields are wireEvent's JSON names.
var eventFields = [...]string{"messageId", "deliverystatus", "timestamp", "cost"}

// scanEvent fills w from raw, a valid JSON object, as json.Unmarshal would, several times
// faster: the reader takes every spool line through here. It returns false, leaving the
// work to json.Unmarshal, for a key that json.Unmarshal would take for a field in another
// spelling (it matches case-insensitively) or that has escapes.
func scanEvent(raw []byte, w *wireEvent) bool {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return false
	}
	i = skipSpace(raw, i+1)
	for i < len(raw) && raw[i] != '}' {
		if raw[i] != '"' {
			return false
		}
		end := stringEnd(raw, i)
		key := raw[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return false
		}
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return false
		}
		start := skipSpace(raw, i+1)
		end = valueEnd(raw, start)
		if end <= start {
			return false
		}
		val := json.RawMessage(raw[start:end])
		switch string(key) {
		case "messageId":
			w.MessageID = val
		case "deliverystatus":
			w.DeliveryStatus = val
		case "timestamp":
			w.Timestamp = val
		case "cost":
			w.Cost = val
		default:
			for _, f := range eventFields {
				if bytes.EqualFold(key, []byte(f)) {
					return false
				}
			}
		}
		i = skipSpace(raw, end)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	return true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	return i
}

// stringEnd returns the index just past the string that starts with the quote at b[i].
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// valueEnd returns the index just past the JSON value that starts at b[i], in valid JSON.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = stringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && !isJSONSpace(b[j]) {
		j++
	}
	return j
}

// stringField decodes a required JSON string of at most max bytes.
func stringField(name string, raw json.RawMessage, max int) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", &FieldError{name, "missing"}
	}
	if raw[0] != '"' {
		return "", &FieldError{name, "not a JSON string"}
	}
	// raw was checked as part of a valid JSON object: without escapes, the string is the
	// bytes between its quotes.
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 {
		if len(inner) > max {
			return "", &FieldError{name, fmt.Sprintf("%d bytes, more than %d", len(inner), max)}
		}
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &FieldError{name, jsonReason(err)}
	}
	if len(s) > max {
		return "", &FieldError{name, fmt.Sprintf("%d bytes, more than %d", len(s), max)}
	}
	return s, nil
}

func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError
}

// jsonReason is encoding/json's error without its "json: " prefix and Go type names.
func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s where %s was expected", te.Value, te.Field)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
