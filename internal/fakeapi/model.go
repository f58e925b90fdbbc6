package fakeapi

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/batstat/batstat/smsbat"
)

// Everything the fake answers is a pure function of (Options.Seed, id, poll number) — or,
// under Options.Settle, of (Options.Seed, id, time) — so two processes with the same
// options agree, and tests can compute what to expect without going through the client
// they are testing.

// Each trait of an ID draws from its own stream, so raising one rate only moves IDs into
// that trait: it does not reshuffle which IDs get the others.
const (
	saltNotFound uint64 = iota + 1
	saltStuck
	saltUnknown
	saltUnknownPick
	saltFinal
	saltPolls
	saltParts
	saltList
	saltPrice
	saltExtended
	saltCurrency
	saltLayout
	saltDeliveredBy
	saltDeliveredChannel
	saltFault
	saltGarbageKind
	saltSettleDelay
	saltSettleAtOnce
	saltPushDuplicate
	saltPushReorder
)

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	golden    = 0x9e3779b97f4a7c15
)

// idHash is FNV-1a over the seed and the ID, then a splitmix64 finalizer because FNV's low
// bits are weak and traits are taken modulo small numbers. hash/maphash would be faster
// but is seeded per process, and the demo and the end-to-end tests need answers that are
// reproducible across processes.
func idHash(seed int64, id string) uint64 {
	h := uint64(fnvOffset)
	s := uint64(seed)
	for range 8 {
		h ^= s & 0xff
		h *= fnvPrime
		s >>= 8
	}
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= fnvPrime
	}
	return mix(h)
}

// requestHash derives the hash of the n-th request for an ID from the ID's hash, for
// decisions taken per request (faults) rather than per ID.
func requestHash(idHash uint64, n int) uint64 { return mix(idHash ^ uint64(n)*0xd6e8feb86659fd93) }

// mix is the splitmix64 finalizer: a cheap bijection with good avalanche.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// stream returns the pseudo-random word of trait salt for the ID hashed to h.
func stream(h, salt uint64) uint64 { return mix(h + salt*golden) }

// unit returns a value uniform in [0, 1) for trait salt.
func unit(h, salt uint64) float64 { return float64(stream(h, salt)>>11) * 0x1p-53 }

// pick returns a value uniform in [0, n) for trait salt.
func pick(h, salt uint64, n int) int { return int(stream(h, salt) % uint64(n)) }

// unknownStatuses are values outside the documented lifecycle that the provider's wider
// docs mention; the fake answers them so batstat's "kept verbatim" path is exercised.
var unknownStatuses = []string{"sent", "read", "expired", "failed"}

// priceTable holds per-part tariffs in micro-units. Basic answers (no currency) and
// currencies not listed use USD prices.
var priceTable = map[string][]int64{
	"USD": {50000, 37500, 45000, 12500},        // 0.05 0.0375 0.045 0.0125
	"EUR": {46000, 35000, 41000, 11500},        // 0.046 0.035 0.041 0.0115
	"UAH": {1850000, 1500000, 2100000, 550000}, // 1.85 1.5 2.1 0.55
}

type phase uint8

const (
	phaseScheduled phase = iota
	phaseProcessing
	phaseFinal
)

// channel is one delivery channel of an extended answer and its status.
type channel struct{ name, status string }

// traits are the fixed properties of one message ID.
type traits struct {
	notFound bool
	stuck    bool
	extended bool
	polls    int // the answered poll at which the final status first appears
	// delay is, under Options.Settle, how long after SentAt the final status appears (for a
	// stuck ID, scheduledShare times how long until it answers "processing").
	delay    time.Duration
	final    string
	parts    int64
	listID   int64
	price    int64 // per part, micro-units
	currency string
	// chans[0] is the primary channel; chans[1:nchan] are the fallbacks in the order tried.
	chans [3]channel
	nchan int
}

func (h *Handler) traitsOf(id string) traits {
	return h.traitsFor(idHash(h.opts.Seed, id))
}

func (h *Handler) traitsFor(hash uint64) traits {
	o := &h.opts
	stuckRate := o.StuckRate
	if o.Settle != nil {
		stuckRate = o.Settle.Never
	}
	t := traits{
		notFound: unit(hash, saltNotFound) < o.NotFoundRate,
		stuck:    unit(hash, saltStuck) < stuckRate,
		extended: unit(hash, saltExtended) < o.ExtendedRate,
		polls:    1 + pick(hash, saltPolls, o.MaxPollsToFinal),
		listID:   100000 + int64(pick(hash, saltList, 900000)),
	}
	switch u := unit(hash, saltParts); {
	case u < 0.75:
		t.parts = 1
	case u < 0.93:
		t.parts = 2
	default:
		t.parts = 3
	}
	if unit(hash, saltUnknown) < o.UnknownStatusRate {
		t.final = unknownStatuses[pick(hash, saltUnknownPick, len(unknownStatuses))]
	} else {
		switch u := unit(hash, saltFinal); {
		case u < 0.85:
			t.final = smsbat.StatusDelivered
		case u < 0.96:
			t.final = smsbat.StatusUndeliverable
		default:
			t.final = smsbat.StatusPermanentError
		}
	}
	prices := priceTable["USD"]
	if t.extended {
		t.currency = o.Currencies[pick(hash, saltCurrency, len(o.Currencies))]
		if p, ok := priceTable[t.currency]; ok {
			prices = p
		}
		t.layoutChannels(hash)
	}
	t.price = prices[pick(hash, saltPrice, len(prices))]
	if s := o.Settle; s != nil {
		t.delay = s.delay(hash)
		if !t.stuck && s.atOnce(hash) {
			t.delay = 0
		}
	}
	return t
}

// layoutChannels sets the channels of an extended answer so that they agree with the
// final status: channels tried before the one that delivered failed, channels after it
// were not used.
func (t *traits) layoutChannels(hash uint64) {
	switch u := unit(hash, saltLayout); {
	case u < 0.15:
		// Fallback is configured on the account but not for this message: the answer
		// lists an empty fallbacks array, which must not count as "with fallback".
		t.chans[0].name, t.nchan = "sms", 1
	case u < 0.25:
		t.chans[0].name, t.chans[1].name, t.chans[2].name, t.nchan = "viber", "rcs", "sms", 3
	default:
		t.chans[0].name, t.chans[1].name, t.nchan = "viber", "sms", 2
	}
	set := func(upto int, before, at, after string) {
		for i := 0; i < t.nchan; i++ {
			switch {
			case i < upto:
				t.chans[i].status = before
			case i == upto:
				t.chans[i].status = at
			default:
				t.chans[i].status = after
			}
		}
	}
	switch t.final {
	case smsbat.StatusDelivered:
		by := 0 // most messages are delivered by the primary channel
		if t.nchan > 1 && unit(hash, saltDeliveredBy) >= 0.7 {
			by = 1 + pick(hash, saltDeliveredChannel, t.nchan-1)
		}
		set(by, smsbat.StatusUndeliverable, smsbat.StatusDelivered, "not_used")
	case smsbat.StatusUndeliverable:
		set(t.nchan, smsbat.StatusUndeliverable, "", "")
	case smsbat.StatusPermanentError:
		set(t.nchan-1, smsbat.StatusUndeliverable, smsbat.StatusPermanentError, "")
	default:
		// An unknown value such as "read" is what the primary channel reported last.
		set(0, "", t.final, "not_used")
	}
}

// phaseAt is the phase of the poll-th answered request (1-based) under the poll-counted
// lifecycle.
func (t *traits) phaseAt(poll int) phase {
	switch {
	case t.stuck:
		return phaseProcessing
	case poll >= t.polls:
		return phaseFinal
	case poll <= 1:
		return phaseScheduled
	default:
		return phaseProcessing
	}
}

func (p phase) String() string {
	switch p {
	case phaseScheduled:
		return smsbat.StatusScheduled
	case phaseProcessing:
		return smsbat.StatusProcessing
	}
	return "final"
}

// billed reports whether the final status is charged: the provider bills what it
// delivered (or handed over, for "sent" and "read"), and answers cost 0.00 otherwise.
func (t *traits) billed() bool {
	switch t.final {
	case smsbat.StatusDelivered, "sent", "read":
		return true
	}
	return false
}

func (t *traits) cost() int64 {
	if t.billed() {
		return t.parts * t.price
	}
	return 0
}

// appendBody appends the JSON body answered in phase ph. It writes every literal itself
// (money included) so that 0.05 goes on the wire as 0.05, never as a float64 rendering.
func (t *traits) appendBody(b []byte, id string, ph phase) []byte {
	if ph != phaseFinal {
		// Early answers carry only some fields, as in the provider's own examples.
		b = append(b, `{"deliverystatus":"`...)
		b = append(b, ph.String()...)
		b = append(b, `","partscount":`...)
		b = strconv.AppendInt(b, t.parts, 10)
		return append(b, '}')
	}
	b = append(b, `{"messagelistId":`...)
	b = strconv.AppendInt(b, t.listID, 10)
	b = append(b, `,"messageId":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"deliverystatus":`...)
	b = appendJSONString(b, t.final)
	b = append(b, `,"partscount":`...)
	b = strconv.AppendInt(b, t.parts, 10)
	b = append(b, `,"cost":`...)
	b = appendMoney(b, t.cost())
	if t.extended {
		b = append(b, `,"fallbacks":[`...)
		for i := 1; i < t.nchan; i++ {
			if i > 1 {
				b = append(b, ',')
			}
			b = append(b, `{"type":`...)
			b = appendJSONString(b, t.chans[i].name)
			b = append(b, `,"status":`...)
			b = appendJSONString(b, t.chans[i].status)
			b = append(b, '}')
		}
		b = append(b, `],"extendedStatuses":{`...)
		for i := 0; i < t.nchan; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, t.chans[i].name)
			b = append(b, ':')
			b = appendJSONString(b, t.chans[i].status)
		}
		b = append(b, `},"rate":`...)
		b = appendMoney(b, t.price)
		b = append(b, `,"rateAmount":`...)
		b = appendMoney(b, t.parts*t.price)
		b = append(b, `,"rateCurrency":`...)
		b = appendJSONString(b, t.currency)
		b = append(b, `,"billAmount":`...)
		b = appendMoney(b, t.cost())
		b = append(b, `,"billCurrency":`...)
		b = appendJSONString(b, t.currency)
	}
	return append(b, '}')
}

// status builds the decoded form of appendBody's output directly from the traits, so that
// tests compare the client's decoding against an independent construction.
func (t *traits) status(id string, ph phase) *smsbat.Status {
	parts := t.parts
	if ph != phaseFinal {
		return &smsbat.Status{DeliveryStatus: ph.String(), PartsCount: &parts}
	}
	listID := t.listID
	cost := smsbat.Money(t.cost())
	st := &smsbat.Status{
		MessagelistID:  &listID,
		MessageID:      jsonDecodedString(id),
		DeliveryStatus: t.final,
		PartsCount:     &parts,
		Cost:           &cost,
	}
	if !t.extended {
		return st
	}
	rate, rateAmount, bill := smsbat.Money(t.price), smsbat.Money(t.parts*t.price), cost
	st.Fallbacks = make([]smsbat.Fallback, 0, t.nchan-1) // non-nil: the body lists [] when there are none
	st.ExtendedStatuses = make(map[string]string, t.nchan)
	for i := 0; i < t.nchan; i++ {
		if i > 0 {
			st.Fallbacks = append(st.Fallbacks, smsbat.Fallback{Type: t.chans[i].name, Status: t.chans[i].status})
		}
		st.ExtendedStatuses[t.chans[i].name] = t.chans[i].status
	}
	st.Rate, st.RateAmount, st.RateCurrency = &rate, &rateAmount, t.currency
	st.BillAmount, st.BillCurrency = &bill, t.currency
	return st
}

// appendMoney appends micro-units as a JSON number literal with no trailing zeros: 50000 is
// 0.05, 37500 is 0.0375, 2000000 is 2. Zero is written 0.00, as the provider's examples do.
func appendMoney(b []byte, micros int64) []byte {
	if micros == 0 {
		return append(b, "0.00"...)
	}
	u := uint64(micros)
	if micros < 0 {
		b = append(b, '-')
		u = -u
	}
	b = strconv.AppendUint(b, u/1_000_000, 10)
	frac := u % 1_000_000
	if frac == 0 {
		return b
	}
	var d [6]byte
	for i := 5; i >= 0; i-- {
		d[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := 6
	for d[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, d[:n]...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 bytes become \ufffd one for
// one, as encoding/json decodes them, because an ID from a URL may be any bytes.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// jsonDecodedString is s as a JSON decoder returns it after appendJSONString: every
// invalid UTF-8 byte replaced by U+FFFD.
func jsonDecodedString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	out := make([]rune, 0, len(s))
	for _, r := range s { // range yields U+FFFD for each invalid byte
		out = append(out, r)
	}
	return string(out)
}
