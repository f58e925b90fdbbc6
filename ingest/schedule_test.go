package ingest_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/batstat/batstat/ingest"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// The schedule at its edges, with the defaults (5 s, 1 h, 72 h). The message is sent at
// t0 unless the case says otherwise.
func TestScheduleEdges(t *testing.T) {
	s := ingest.DefaultSchedule()
	never := time.Time{}
	tests := []struct {
		name       string
		sent, last time.Time
		now        time.Time
		next       time.Time // Next(sent, last)
		due        bool      // Due(now, sent, last)
	}{
		{"never asked, just sent", t0, never, t0, never, true},
		{"never asked, a day old", t0, never, at(24 * time.Hour), never, true},
		{"never asked, older than give-up-after", t0, never, at(72*time.Hour + time.Nanosecond), never, false},
		// Asked at 60 s: the wait is (60 s)/3 = 20 s, when ¼ of the age (80 s) is 20 s.
		{"exactly at the interval", t0, at(time.Minute), at(80 * time.Second), at(80 * time.Second), true},
		{"a nanosecond before the interval", t0, at(time.Minute), at(80*time.Second - 1), at(80 * time.Second), false},
		// Asked at 3 s: ¼ of the age is below 5 s for a while, so the minimum holds.
		{"below --min-interval", t0, at(3 * time.Second), at(7 * time.Second), at(8 * time.Second), false},
		{"at --min-interval", t0, at(3 * time.Second), at(8 * time.Second), at(8 * time.Second), true},
		{"asked at sending", t0, t0, at(5 * time.Second), at(5 * time.Second), true},
		// Asked at 10 h: a third of the age is 3h20m, capped at 1 h.
		{"capped by --max-interval", t0, at(10 * time.Hour), at(11*time.Hour - 1), at(11 * time.Hour), false},
		{"at --max-interval", t0, at(10 * time.Hour), at(11 * time.Hour), at(11 * time.Hour), true},
		{"at give-up-after exactly", t0, at(71 * time.Hour), at(72 * time.Hour), at(72 * time.Hour), true},
		{"older than give-up-after", t0, at(71 * time.Hour), at(72*time.Hour + 1), at(72 * time.Hour), false},
		// A check before the sent time (a clock apart): the minimum.
		{"last check before sending", at(time.Minute), t0, at(5 * time.Second), at(5 * time.Second), true},
		// (last − sent)/3 is rounded up, so that the rule holds at next and not before.
		{"a third rounded up", t0, at(61 * time.Second), at(81*time.Second + time.Second/3 + 1), at(81*time.Second + time.Second/3 + 1), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Next(tt.sent, tt.last); !got.Equal(tt.next) {
				t.Errorf("Next(sent %v, last %v) = %v, want %v", tt.sent.Sub(t0), tt.last.Sub(t0), got.Sub(t0), tt.next.Sub(t0))
			}
			if got := s.Due(tt.now, tt.sent, tt.last); got != tt.due {
				t.Errorf("Due(now %v, sent %v, last %v) = %v, want %v", tt.now.Sub(t0), tt.sent.Sub(t0), tt.last.Sub(t0), got, tt.due)
			}
			if got, want := s.Due(tt.now, tt.sent, tt.last), rule(s, tt.now, tt.sent, tt.last); got != want {
				t.Errorf("Due(now %v, sent %v, last %v) = %v, but the rule says %v", tt.now.Sub(t0), tt.sent.Sub(t0), tt.last.Sub(t0), got, want)
			}
		})
	}
}

// rule is the schedule as stated: due when now − last ≥ clamp(¼ × age, min, max), never
// asked always due, given up past GiveUpAfter. Exact in integers: clamp(x, lo, hi) ≤ y
// exactly when lo ≤ y and (x ≤ y or hi ≤ y), and ¼ × age ≤ y exactly when age ≤ 4y.
func rule(s ingest.Schedule, now, sent, last time.Time) bool {
	if now.Sub(sent) > s.GiveUpAfter {
		return false
	}
	if last.IsZero() {
		return true
	}
	y := now.Sub(last)
	return s.MinInterval <= y && (now.Sub(sent) <= 4*y || s.MaxInterval <= y)
}

// Next's closed form agrees with the rule everywhere: at random instants, and one
// nanosecond either side of Next, for schedules of every shape.
func TestScheduleNextAgreesWithTheRule(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		s := ingest.Schedule{
			MinInterval: time.Second + time.Duration(r.Int64N(int64(time.Minute))),
			GiveUpAfter: time.Duration(1 + r.Int64N(int64(100*time.Hour))),
		}
		s.MaxInterval = s.MinInterval + time.Duration(r.Int64N(int64(2*time.Hour)))
		sent := at(time.Duration(r.Int64N(int64(time.Hour))))
		last := sent.Add(time.Duration(r.Int64N(int64(80*time.Hour))) - time.Minute)
		next := s.Next(sent, last)
		for _, now := range []time.Time{next.Add(-1), next, next.Add(1), last.Add(time.Duration(r.Int64N(int64(3 * time.Hour))))} {
			if got, want := s.Due(now, sent, last), rule(s, now, sent, last); got != want {
				t.Fatalf("case %d: %+v sent %v last %v: Due(%v) = %v, the rule says %v (Next %v)",
					i, s, sent.Sub(t0), last.Sub(t0), now.Sub(t0), got, want, next.Sub(t0))
			}
		}
	}
}

func TestSentTime(t *testing.T) {
	loaded := at(time.Hour)
	now := at(2 * time.Hour)
	tests := []struct {
		name      string
		sent      time.Time
		sentGiven bool
		want      time.Time
		fellBack  bool
	}{
		{"sent time used", at(time.Minute), true, at(time.Minute), false},
		{"sent now", now, true, now, false},
		{"no sent column", time.Time{}, false, loaded, false},
		{"unparseable", time.Time{}, true, loaded, true},
		{"in the future", now.Add(time.Second), true, loaded, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fellBack := ingest.SentTime(tt.sent, tt.sentGiven, loaded, now)
			if !got.Equal(tt.want) || fellBack != tt.fellBack {
				t.Errorf("SentTime(%v, %v) = %v, %v; want %v, %v", tt.sent, tt.sentGiven, got, fellBack, tt.want, tt.fellBack)
			}
		})
	}
}
