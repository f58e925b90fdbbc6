package ingest

import "time"

// Schedule is when batstat asks again about a message that has no terminal status: once
//
//	now − last ≥ clamp(¼ × (now − sent), MinInterval, MaxInterval)
//
// where last is the newest moment anything was learned about the message (an answer or a
// failed attempt) and sent is when it was sent (see SentTime). Statuses settle on a long
// tail, so the wait grows with the message's age: a message a minute old is asked every
// 15 s, one a day old every MaxInterval. A message never asked is always due; one older
// than GiveUpAfter is not asked again. The zero Schedule is not usable: NewJob gives a
// Config's zero fields the defaults below.
type Schedule struct {
	MinInterval time.Duration // never ask a message again sooner (at least 1 s)
	MaxInterval time.Duration // never wait longer between two asks of a message
	GiveUpAfter time.Duration // stop asking a message this long after it was sent
}

// The defaults of a Schedule.
const (
	DefaultMinInterval = 5 * time.Second
	DefaultMaxInterval = time.Hour
	DefaultGiveUpAfter = 72 * time.Hour
)

// MinMinInterval is the shortest MinInterval allowed: the API's guidance is never to ask
// about a message more than once a second.
const MinMinInterval = time.Second

// DefaultSchedule returns the Schedule with the default intervals.
func DefaultSchedule() Schedule {
	return Schedule{MinInterval: DefaultMinInterval, MaxInterval: DefaultMaxInterval, GiveUpAfter: DefaultGiveUpAfter}
}

// Next returns when a message sent at sent and last heard of at last is due again; the
// zero time (always due) when last is zero, the message never having been asked.
//
// Because the wait grows more slowly than time passes (slope ¼ < 1), the rule above holds
// from one instant on, which has a closed form: with t = last + (last − sent)/3,
// ¼ × (t − sent) = (last − sent)/3 = t − last. Clamped:
//
//	next = last + clamp(⌈(last − sent)/3⌉, MinInterval, MaxInterval)
//
// rounded up to the nanosecond so that the rule holds at next exactly and not before.
func (s Schedule) Next(sent, last time.Time) time.Time {
	if last.IsZero() {
		return time.Time{}
	}
	d := last.Sub(sent)
	wait := d / 3
	if d%3 > 0 {
		wait++
	}
	return last.Add(min(max(wait, s.MinInterval), s.MaxInterval))
}

// GivenUp reports whether a message sent at sent is older than GiveUpAfter at now.
func (s Schedule) GivenUp(now, sent time.Time) bool {
	return now.Sub(sent) > s.GiveUpAfter
}

// Due reports whether a message sent at sent and last heard of at last (zero: never) is
// to be asked at now: it is not given up, and now is at or past Next.
func (s Schedule) Due(now, sent, last time.Time) bool {
	return !s.GivenUp(now, sent) && !now.Before(s.Next(sent, last))
}

// SentTime is the time a message's age counts from: the input's sent time, when it has
// one that is not after now, else firstLoaded (when batstat first read the ID). fellBack
// says a sent time was given (sentGiven) but could not be used: it did not parse (sent
// is zero) or it lies in the future.
func SentTime(sent time.Time, sentGiven bool, firstLoaded, now time.Time) (t time.Time, fellBack bool) {
	if sent.IsZero() || sent.After(now) {
		return firstLoaded, sentGiven
	}
	return sent, false
}
