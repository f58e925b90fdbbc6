package fakeapi

import (
	"math"
	"time"
)

// Settle is a lifecycle on the clock, as the real API's: each message becomes final some
// delay after the campaign was sent, and asking more often does not make it final sooner.
// The delay of each message is drawn once from (Options.Seed, ID), so it is the same in
// every handler and process with the same options.
//
// Of the messages found, a fraction Never answers "processing" forever, a fraction AtOnce
// is final from SentAt on, and the rest settle after a log-normal delay,
// Median × e^(Sigma·Z) with Z standard normal, capped at Max and rounded to the
// millisecond. "30% at once, the rest around 10 s up to five minutes, 4% never" is
//
//	Settle{AtOnce: 0.3, Never: 0.04, Median: 10 * time.Second, Sigma: 1, Max: 5 * time.Minute}
//
// A message answers "scheduled" for the first tenth of its delay, then "processing",
// then from SentAt + delay its final status. Not-found IDs answer 404 throughout.
type Settle struct {
	// SentAt is when the campaign was sent: every delay counts from it, and before it
	// every message is "scheduled". Zero means when NewHandler ran, by Options.Now.
	SentAt time.Time
	// AtOnce is the fraction of found messages that are final from SentAt on.
	AtOnce float64
	// Never is the fraction of found messages that never become final. It replaces
	// Options.StuckRate, and picks the same IDs StuckRate would at the same value.
	Never float64
	// Median and Sigma shape the delay of the other messages; Median 0 makes them final
	// at once, Sigma 0 gives all of them the Median.
	Median time.Duration
	Sigma  float64
	// Max caps the delay; 0 leaves it uncapped.
	Max time.Duration
}

// scheduledShare is the part of a message's delay during which it answers "scheduled":
// 1/scheduledShare of it.
const scheduledShare = 10

// normalize clamps the fractions to [0, 1], AtOnce to what Never leaves, and negative or
// NaN shapes to 0; a zero SentAt becomes now.
func (s *Settle) normalize(now time.Time) {
	s.Never = clamp01(s.Never)
	s.AtOnce = min(clamp01(s.AtOnce), 1-s.Never)
	if !(s.Sigma > 0) { // also NaN
		s.Sigma = 0
	}
	s.Median, s.Max = max(s.Median, 0), max(s.Max, 0)
	if s.SentAt.IsZero() {
		s.SentAt = now
	}
}

// delay returns how long after SentAt the message hashed to h becomes final, drawn from
// the log-normal body whether or not the message is to settle at once or never: a stuck
// message uses it for when it starts "processing".
func (s *Settle) delay(h uint64) time.Duration {
	if s.Median == 0 {
		return 0
	}
	d := float64(s.Median)
	if s.Sigma > 0 {
		// The normal quantile of a uniform draw: monotone in the draw, so a message keeps
		// its place in the distribution when Median or Sigma change.
		z := math.Sqrt2 * math.Erfinv(2*unit(h, saltSettleDelay)-1)
		d *= math.Exp(s.Sigma * z)
	}
	if s.Max > 0 && d > float64(s.Max) {
		d = float64(s.Max)
	}
	// Rounding to the millisecond keeps the last-bit differences between platforms'
	// math.Exp and math.Log from showing in a delay, and bounds it within time.Duration.
	ms := math.Round(d / float64(time.Millisecond))
	if !(ms < float64(math.MaxInt64/int64(time.Millisecond))) { // also NaN
		return math.MaxInt64 / time.Millisecond * time.Millisecond
	}
	return time.Duration(ms) * time.Millisecond
}

// atOnce reports whether the message hashed to h, not stuck, is final from SentAt on.
// The draw is conditioned on not being stuck so that AtOnce is a fraction of all found
// messages.
func (s *Settle) atOnce(h uint64) bool {
	if s.Never >= 1 {
		return false
	}
	return unit(h, saltSettleAtOnce) < s.AtOnce/(1-s.Never)
}

// phaseAtTime is the lifecycle phase under s at time now.
func (t *traits) phaseAtTime(s *Settle, now time.Time) phase {
	elapsed := now.Sub(s.SentAt)
	switch {
	case !t.stuck && elapsed >= t.delay:
		return phaseFinal
	case elapsed >= t.delay/scheduledShare:
		return phaseProcessing
	}
	return phaseScheduled
}
