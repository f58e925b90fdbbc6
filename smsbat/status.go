package smsbat

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Delivery statuses of the message lifecycle. The API may answer others; they are kept
// verbatim, never coerced.
const (
	StatusScheduled      = "scheduled"
	StatusProcessing     = "processing"
	StatusDelivered      = "delivered"
	StatusUndeliverable  = "undeliverable"
	StatusPermanentError = "permanenterror"
	// StatusNotFound is what batstat records for a 404: an answer, not a failure.
	StatusNotFound = "not_found"
)

// terminal lists the statuses a message never leaves. It is the one list: IsTerminal reads
// it, and the database's is_terminal macro is made from it.
var terminal = [...]string{StatusDelivered, StatusUndeliverable, StatusPermanentError}

// TerminalStatuses returns the statuses a message can never leave, in a new slice. Every
// other status, not_found and values batstat does not know included, may still change.
func TerminalStatuses() []string { return slices.Clone(terminal[:]) }

// IsTerminal reports whether a message in status s can never change again.
func IsTerminal(s string) bool { return slices.Contains(terminal[:], s) }

// Status is one answer of GET /bat/message/{id}, basic or extended. Every field but
// DeliveryStatus may be absent; absent fields are nil, so "absent" and "zero" stay distinct.
type Status struct {
	MessagelistID    *int64            `json:"messagelistId,omitempty"`
	MessageID        string            `json:"messageId,omitempty"`
	DeliveryStatus   string            `json:"deliverystatus"`
	PartsCount       *int64            `json:"partscount,omitempty"`
	Cost             *Money            `json:"cost,omitempty"`
	Fallbacks        []Fallback        `json:"fallbacks,omitempty"`
	ExtendedStatuses map[string]string `json:"extendedStatuses,omitempty"`
	Rate             *Money            `json:"rate,omitempty"`
	RateAmount       *Money            `json:"rateAmount,omitempty"`
	RateCurrency     string            `json:"rateCurrency,omitempty"`
	BillAmount       *Money            `json:"billAmount,omitempty"`
	BillCurrency     string            `json:"billCurrency,omitempty"`
}

// Currency is the currency of the answer's money: BillCurrency, else RateCurrency, else ""
// (a basic answer gives none), as the cost report reads it.
func (s *Status) Currency() string {
	if s.BillCurrency != "" {
		return s.BillCurrency
	}
	return s.RateCurrency
}

// ChannelNotUsed is the status of a fallback channel the message did not need.
const ChannelNotUsed = "not_used"

// Channel names the channel the message went out on, as far as an extended answer tells:
// the first channel whose status is "delivered"; else the last channel tried, one whose
// status is neither "not_used" nor empty; else "" (a basic answer, which names no channel).
// The channels are tried in order: the one of ExtendedStatuses that is no fallback (the
// primary; by name, were there several), then the Fallbacks in their order. A channel's
// status is its ExtendedStatuses value, else its Fallbacks entry's.
func (s *Status) Channel() string {
	order, status := s.channels()
	for _, ch := range order {
		if status[ch] == StatusDelivered {
			return ch
		}
	}
	for _, ch := range slices.Backward(order) {
		if st := status[ch]; st != "" && st != ChannelNotUsed {
			return ch
		}
	}
	return ""
}

// channels returns the channels of the answer in the order tried, and their statuses.
func (s *Status) channels() ([]string, map[string]string) {
	status := make(map[string]string, len(s.ExtendedStatuses)+len(s.Fallbacks))
	fallback := make(map[string]bool, len(s.Fallbacks))
	for _, f := range s.Fallbacks {
		fallback[f.Type] = true
	}
	var order []string
	for ch, st := range s.ExtendedStatuses {
		status[ch] = st
		if !fallback[ch] {
			order = append(order, ch)
		}
	}
	slices.Sort(order)
	for _, f := range s.Fallbacks {
		if _, ok := status[f.Type]; !ok {
			status[f.Type] = f.Status
		}
		if !slices.Contains(order, f.Type) {
			order = append(order, f.Type)
		}
	}
	return order, status
}

// Fallback is one configured fallback channel and what became of it.
type Fallback struct {
	Type   string `json:"type"`
	Status string `json:"status"`
}

// Money is an exact amount in micro-units (1 = 0.000001 of a monetary unit). It decodes
// from a JSON number without passing through float64, so 0.05 stays 0.05 and a million of
// them sum to exactly 50000.
type Money int64

// MoneyScale is the number of decimal places Money keeps.
const MoneyScale = 6

const microsPerUnit = 1_000_000

// ParseMoney parses a decimal number such as "0.05", "-1.5", "3", "5e-2" exactly. It fails
// when the value has more than six significant decimal places or does not fit.
func ParseMoney(s string) (Money, error) {
	orig := s
	neg := false
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	exp := 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 40 || e < -40 {
			return 0, fmt.Errorf("money %q: bad exponent", orig)
		}
		exp, s = e, s[:i]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	digits := intPart + frac
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, fmt.Errorf("money %q: not a decimal number", orig)
	}
	// value = digits * 10^(exp - len(frac)); we want value * 10^6.
	shift := exp - len(frac) + MoneyScale
	digits = strings.TrimLeft(digits, "0")
	if shift < 0 {
		cut := len(digits) + shift
		if cut < 0 {
			cut = 0
		}
		if strings.Trim(digits[cut:], "0") != "" {
			return 0, fmt.Errorf("money %q: more than %d decimal places", orig, MoneyScale)
		}
		digits = digits[:cut]
	} else {
		if digits != "" {
			digits += strings.Repeat("0", shift)
		}
	}
	if digits == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("money %q: out of range", orig)
	}
	if neg {
		v = -v
	}
	return Money(v), nil
}

// String formats m with six decimal places, as DuckDB prints DECIMAL(18,6).
func (m Money) String() string {
	// Negate in uint64: -v overflows for the most negative int64.
	u, sign := uint64(m), ""
	if m < 0 {
		sign, u = "-", -u
	}
	return fmt.Sprintf("%s%d.%06d", sign, u/microsPerUnit, u%microsPerUnit)
}

// UnmarshalJSON decodes a JSON number (or a numeric string, which some gateways send).
func (m *Money) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return nil
	}
	if unq, err := strconv.Unquote(s); err == nil {
		s = strings.TrimSpace(unq)
	}
	v, err := ParseMoney(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// MarshalJSON encodes m as a JSON number with no trailing zeros beyond one decimal.
func (m Money) MarshalJSON() ([]byte, error) {
	s := strings.TrimRight(m.String(), "0")
	if strings.HasSuffix(s, ".") {
		s += "0"
	}
	return []byte(s), nil
}

// decodeStatus decodes a 200 body. The messageId echoed by the server is not trusted for
// identity: the caller keeps the ID it asked for.
func decodeStatus(body []byte) (*Status, error) {
	var st Status
	if !decodeFast(body, &st) {
		st = Status{}
		if err := json.Unmarshal(body, &st); err != nil {
			return nil, err
		}
	}
	if st.DeliveryStatus == "" {
		return nil, fmt.Errorf("no deliverystatus in answer")
	}
	return &st, nil
}
