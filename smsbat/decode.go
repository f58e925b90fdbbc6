package smsbat

import (
	"unicode/utf8"
)

// decodeFast decodes body into st, which must be zero, when body is a status in the plain
// form the API answers with: one object whose keys are Status's JSON names as they are
// spelled, each at most once, with values of their own type; strings without escapes;
// integers without fraction or exponent; money as JSON numbers; no nulls. It reports
// false for anything else, st then being left in any state: decodeStatus then decodes
// with encoding/json, which takes every form it takes and fails as it fails. So the fast
// path changes how fast a status is decoded, never what it decodes to
// (FuzzDecodeFast compares the two).
//
// encoding/json's reflection over Status, its map, and a Money's UnmarshalJSON (a copy
// and a strconv.Unquote per amount) took 30% of the client's CPU per status: as much as
// net/http's work on the request.
func decodeFast(body []byte, st *Status) bool {
	d := decoder{b: body}
	if !d.consume('{') {
		return false
	}
	// A fresh allocation for the fields a status points to, one for all of them.
	var store struct {
		ints  [2]int64
		money [5]Money
	}
	var seen uint16
	if !d.consume('}') {
		for {
			key, ok := d.str()
			if !ok || !d.consume(':') {
				return false
			}
			f := fieldOf(key)
			if f < 0 || seen&(1<<f) != 0 {
				return false // unknown (maybe a case-insensitive match), or repeated
			}
			seen |= 1 << f
			switch f {
			case fMessagelistID, fPartsCount:
				i := 0
				if f == fPartsCount {
					i = 1
				}
				if store.ints[i], ok = d.int64(); !ok {
					return false
				}
				if f == fMessagelistID {
					st.MessagelistID = &store.ints[0]
				} else {
					st.PartsCount = &store.ints[1]
				}
			case fMessageID, fDeliveryStatus, fRateCurrency, fBillCurrency:
				v, ok := d.str()
				if !ok {
					return false
				}
				switch f {
				case fMessageID:
					st.MessageID = string(v)
				case fDeliveryStatus:
					st.DeliveryStatus = intern(v)
				case fRateCurrency:
					st.RateCurrency = intern(v)
				case fBillCurrency:
					st.BillCurrency = intern(v)
				}
			case fCost, fRate, fRateAmount, fBillAmount:
				num, ok := d.number()
				if !ok {
					return false
				}
				m, ok := plainMoney(num)
				if !ok {
					var err error
					if m, err = ParseMoney(string(num)); err != nil {
						return false
					}
				}
				p := &store.money[f-fCost]
				*p = m
				switch f {
				case fCost:
					st.Cost = p
				case fRate:
					st.Rate = p
				case fRateAmount:
					st.RateAmount = p
				case fBillAmount:
					st.BillAmount = p
				}
			case fFallbacks:
				if st.Fallbacks, ok = d.fallbacks(); !ok {
					return false
				}
			case fExtendedStatuses:
				if st.ExtendedStatuses, ok = d.stringMap(); !ok {
					return false
				}
			}
			if d.consume('}') {
				break
			}
			if !d.consume(',') {
				return false
			}
		}
	}
	d.space()
	return d.i == len(d.b) // nothing but white space after the object
}

// The fields of Status by JSON name, in an order where the four amounts follow each other.
const (
	fMessagelistID = iota
	fMessageID
	fDeliveryStatus
	fPartsCount
	fCost
	fRate
	fRateAmount
	fBillAmount
	fFallbacks
	fExtendedStatuses
	fRateCurrency
	fBillCurrency
)

func fieldOf(key []byte) int {
	switch string(key) { // no allocation: the compiler compares the bytes
	case "messagelistId":
		return fMessagelistID
	case "messageId":
		return fMessageID
	case "deliverystatus":
		return fDeliveryStatus
	case "partscount":
		return fPartsCount
	case "cost":
		return fCost
	case "rate":
		return fRate
	case "rateAmount":
		return fRateAmount
	case "billAmount":
		return fBillAmount
	case "fallbacks":
		return fFallbacks
	case "extendedStatuses":
		return fExtendedStatuses
	case "rateCurrency":
		return fRateCurrency
	case "billCurrency":
		return fBillCurrency
	}
	return -1
}

// intern returns the values that recur in every answer (statuses, channels, currencies)
// as constants, without an allocation; any other value is copied.
func intern(v []byte) string {
	switch string(v) {
	case StatusDelivered:
		return StatusDelivered
	case StatusUndeliverable:
		return StatusUndeliverable
	case StatusScheduled:
		return StatusScheduled
	case StatusProcessing:
		return StatusProcessing
	case StatusPermanentError:
		return StatusPermanentError
	case ChannelNotUsed:
		return ChannelNotUsed
	case "sms":
		return "sms"
	case "viber":
		return "viber"
	case "UAH":
		return "UAH"
	case "USD":
		return "USD"
	case "EUR":
		return "EUR"
	}
	return string(v)
}

// decoder reads the plain JSON that decodeFast takes.
type decoder struct {
	b []byte
	i int
}

// space skips JSON white space.
func (d *decoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// consume skips white space and then c, if c is next.
func (d *decoder) consume(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, in valid UTF-8 (which
// encoding/json would change), and returns its bytes between the quotes.
func (d *decoder) str() ([]byte, bool) {
	if !d.consume('"') {
		return nil, false
	}
	start := d.i
	for j := start; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			v := d.b[start:j]
			d.i = j + 1
			return v, utf8.Valid(v)
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// number reads a number as JSON spells it and returns its bytes.
func (d *decoder) number() ([]byte, bool) {
	d.space()
	b, start := d.b, d.i
	j := start
	digits := func() int {
		k := j
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		return j - k
	}
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case digits() == 0:
		return nil, false
	}
	if j < len(b) && b[j] == '.' {
		j++
		if digits() == 0 {
			return nil, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	d.i = j
	return b[start:j], true
}

// int64 reads an integer of at most 18 digits (which cannot overflow), without fraction
// or exponent: encoding/json refuses those for an int64.
func (d *decoder) int64() (int64, bool) {
	num, ok := d.number()
	if !ok {
		return 0, false
	}
	neg := num[0] == '-'
	if neg {
		num = num[1:]
	}
	if len(num) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// fallbacks reads an array of {"type": ..., "status": ...}, each key at most once. An
// empty array is an empty slice, not nil, as encoding/json makes it.
func (d *decoder) fallbacks() ([]Fallback, bool) {
	if !d.consume('[') {
		return nil, false
	}
	fs := make([]Fallback, 0, 2)
	if d.consume(']') {
		return fs, true
	}
	for {
		var f Fallback
		var hasType, hasStatus bool
		if !d.stringPairs(func(key, v []byte) bool {
			switch {
			case string(key) == "type" && !hasType:
				f.Type, hasType = intern(v), true
			case string(key) == "status" && !hasStatus:
				f.Status, hasStatus = intern(v), true
			default:
				return false
			}
			return true
		}) {
			return nil, false
		}
		fs = append(fs, f)
		if d.consume(']') {
			return fs, true
		}
		if !d.consume(',') {
			return nil, false
		}
	}
}

// stringMap reads an object of strings. An empty object is an empty map, not nil, as
// encoding/json makes it; a repeated key keeps its last value, as there.
func (d *decoder) stringMap() (map[string]string, bool) {
	m := make(map[string]string, 2)
	ok := d.stringPairs(func(key, v []byte) bool {
		m[intern(key)] = intern(v)
		return true
	})
	return m, ok
}

// stringPairs reads an object whose values are all strings, calling each for every pair
// in order; it reports false for any other form, or as soon as each does.
func (d *decoder) stringPairs(each func(key, v []byte) bool) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	for {
		key, ok := d.str()
		if !ok || !d.consume(':') {
			return false
		}
		v, ok := d.str()
		if !ok || !each(key, v) {
			return false
		}
		if d.consume('}') {
			return true
		}
		if !d.consume(',') {
			return false
		}
	}
}

// plainMoney converts a number of the form the API sends amounts in, [-]digits[.digits]
// with at most 12 digits before the point and 6 after it, to Money without the copies
// ParseMoney makes; it reports false for any other form, which ParseMoney then reads.
func plainMoney(num []byte) (Money, bool) {
	neg := len(num) > 0 && num[0] == '-'
	if neg {
		num = num[1:]
	}
	var v int64
	intDigits, fracDigits, point := 0, 0, false
	for _, c := range num {
		switch {
		case c == '.' && !point:
			point = true
		case '0' <= c && c <= '9':
			if point {
				fracDigits++
			} else {
				intDigits++
			}
			v = v*10 + int64(c-'0')
		default:
			return 0, false
		}
	}
	if intDigits == 0 || intDigits > 12 || fracDigits > MoneyScale || point && fracDigits == 0 {
		return 0, false
	}
	for range MoneyScale - fracDigits {
		v *= 10
	}
	if neg {
		v = -v
	}
	return Money(v), true
}
