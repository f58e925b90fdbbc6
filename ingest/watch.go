package ingest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/batstat/batstat/store"
)

// session is one run's asking machinery, shared by all of its passes: the fetcher (its
// token bucket and pause gate), the writer's input and the load connection that holds the
// run's todo table. One run, one writer, however many passes.
type session struct {
	cfg   *Config
	conn  *sql.Conn // the load's connection: the todo and unsettled tables
	sum   *Summary
	toAsk int64     // messages in todo: the input, less those terminal at load (but under RefreshAll)
	start time.Time // when the run started: the watch's MaxWait counts from it
	stats *counters

	lastPass time.Time // when the last pass started

	f        *fetcher
	outcomes chan<- outcome
	reqCtx   context.Context
	stopAll  context.CancelCauseFunc
	// loadSpool loads the run's webhook spool (a no-op without one) before each look.
	loadSpool func(context.Context) error
}

// errMaxWait ends a watch that reached Config.MaxWait.
var errMaxWait = errors.New("reached the watch's maximum wait")

// run makes the run's passes. The first asks the todo table whole, as a run always did,
// unless the Refresh is RefreshDue, whose every pass asks only what the schedule says is
// due. Without Watch that is all; with it, the run then sleeps until the next message of
// the input is due, asks the due ones, and so on (see Config.Watch).
func (s *session) run(ctx context.Context) error {
	if !s.cfg.Watch && s.cfg.Refresh != RefreshDue {
		s.stats.requested.Add(s.toAsk)
		return s.pass(ctx, s.toAsk, func(ctx context.Context, out chan<- todoItem) error {
			return streamTodo(ctx, s.conn, out)
		})
	}
	s.sum.Scheduled = true
	wctx := ctx
	if s.cfg.Watch {
		// The deadline stops feeding a pass, not the requests in flight, which are stored.
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadlineCause(ctx, s.start.Add(s.cfg.MaxWait), errMaxWait)
		defer cancel()
	}
	if s.cfg.Refresh != RefreshDue {
		s.stats.requested.Add(s.toAsk)
		if err := s.passAndSync(wctx, s.toAsk, func(ctx context.Context, out chan<- todoItem) error {
			return streamTodo(ctx, s.conn, out)
		}); err != nil {
			return err
		}
	}
	return s.end(ctx, s.watch(wctx))
}

// watch looks at the input's unsettled messages, asks those due, looks again, and so on;
// between passes it sleeps until the next one is due. Without Watch it makes one pass.
func (s *session) watch(ctx context.Context) error {
	log := s.cfg.Logger
	for looks := 0; ; looks++ {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		// Statuses pushed since the last look settle their messages before the schedule
		// picks the due ones.
		if err := s.loadSpool(ctx); err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return err
		}
		now := time.Now()
		t, err := s.look(ctx, now)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return err
		}
		if looks == 0 && t.fellBack > 0 {
			log.Warn("sent time not a timestamp, or in the future: the schedule counts these messages' age from when batstat first loaded them",
				"messages", t.fellBack, "example_id", t.exampleID, "example_sent", t.exampleSent)
		}
		if t.due > 0 && (s.cfg.Watch || s.sum.Passes == 0) {
			// Passes start MinMinInterval apart at least. A message asked in one pass is not
			// due in the next before MinInterval anyway; this keeps it so should the data
			// ever say otherwise (an answer that could not be stored), rather than asking
			// again at once, pass after pass.
			if wait := time.Until(s.lastPass.Add(MinMinInterval)); wait > 0 {
				if err := sleep(ctx, wait); err != nil {
					return err
				}
				continue
			}
			s.stats.requested.Add(t.due)
			if err := s.passAndSync(ctx, t.due, func(ctx context.Context, out chan<- todoItem) error {
				_, err := s.scan(ctx, now, out)
				return err
			}); err != nil {
				return err
			}
			// Look again at once: the messages just asked have a new last check, and others
			// may have become due during the pass.
			continue
		}
		if !s.cfg.Watch || t.unsettled == t.givenUp {
			return nil
		}
		// Messages that fall due less than MinMinInterval after the last pass started wait
		// for the next pass together: a look reads every unsettled message of the input, so
		// one look per message falling due would cost the square of a large campaign.
		wake := t.next
		if soonest := s.lastPass.Add(MinMinInterval); wake.Before(soonest) {
			wake = soonest
		}
		waiting(s.cfg, WatchStatus{Settled: s.toAsk - t.unsettled, Pending: t.unsettled - t.givenUp,
			GivenUp: t.givenUp, Next: wake})
		// ctx carries the watch's deadline: sleeping past it ends the watch.
		if err := sleep(ctx, time.Until(wake)); err != nil {
			return err
		}
	}
}

// end records in the summary how the input stands after a scheduled run, and logs why a
// watch ended. err is why the passes ended: nil when the run was done, errMaxWait when a
// watch reached its MaxWait (a normal end too), else an interrupt or a failure, returned as
// it is.
func (s *session) end(ctx context.Context, err error) error {
	atMaxWait := errors.Is(err, errMaxWait)
	if err != nil && !atMaxWait {
		return err
	}
	t, err := s.look(ctx, time.Now())
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return err
	}
	if s.cfg.Watch {
		msg := "watch finished: every message of the input has a final status"
		switch {
		case atMaxWait:
			msg = "watch stopped at its maximum wait, messages still without a final status"
		case t.givenUp > 0:
			msg = "watch finished: the messages still without a final status were given up"
		}
		s.cfg.Logger.Info(msg, "pending", t.unsettled-t.givenUp, "given_up", t.givenUp,
			"passes", s.sum.Passes, "max_wait_s", s.cfg.MaxWait.Seconds(), "give_up_after_s", s.cfg.Schedule.GiveUpAfter.Seconds())
	}
	return nil
}

// passAndSync makes a pass, then waits until the writer has committed every answer of it,
// so that the next look reads them.
func (s *session) passAndSync(ctx context.Context, total int64, feed func(context.Context, chan<- todoItem) error) error {
	if err := s.pass(ctx, total, feed); err != nil {
		return err
	}
	synced := make(chan error, 1)
	s.outcomes <- outcome{synced: synced}
	if err := <-synced; err != nil {
		return fmt.Errorf("store answers: %w", err)
	}
	return nil
}

// tailCut is how many messages before the end of a pass the writer is told to commit what
// it holds (a cut outcome). A pass ends with a commit that its run waits for; without the
// cut it holds up to a second of answers (FlushEvery), tens of thousands at full speed and
// 0.1 s of DuckDB's work after the last answer. With it, the last commit holds about
// tailCut answers, and the one before it is committed while they are asked.
const tailCut = 4096

// pass streams the messages feed sends through the worker pool into the writer, with
// progress for total messages. ctx ending stops it: feeding stops, requests in flight end
// and their answers go to the writer. Only a fatal error (rejected credentials, or one
// reading the messages to ask) is returned.
func (s *session) pass(ctx context.Context, total int64, feed func(context.Context, chan<- todoItem) error) error {
	s.sum.Passes++
	s.lastPass = time.Now()
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	ids := make(chan todoItem, 4*s.cfg.Concurrency)
	feedDone := make(chan error, 1)
	go func() {
		defer close(ids)
		feedDone <- feed(feedCtx, ids)
	}()
	prog := startProgress(s.cfg, total, s.stats)
	var cutAt int64 // the message after which the writer commits what it holds
	if total > 2*tailCut {
		cutAt = total - tailCut
	}
	err := s.f.fetchAll(ctx, s.reqCtx, s.stopAll, ids, s.outcomes, cutAt)
	stopFeed() // unblock the feeder if the pool stopped early
	for range ids {
	}
	prog.stop()
	if ferr := <-feedDone; ferr != nil && err == nil && ctx.Err() == nil {
		err = ferr
	}
	return err
}

// tally is what a look at the input's unsettled messages found at one instant.
type tally struct {
	unsettled int64     // messages without a terminal status
	givenUp   int64     // of those, older than GiveUpAfter
	due       int64     // of those, due by the schedule
	failing   int64     // of those, whose last attempt failed in this run
	next      time.Time // the earliest Next of the others; zero when there are none

	fellBack               int64 // messages whose sent time could not be used
	exampleID, exampleSent string
}

// look snapshots the input's unsettled messages (store.ScanUnsettled) and tallies them at
// now, into the summary too.
func (s *session) look(ctx context.Context, now time.Time) (tally, error) {
	if _, err := store.ScanUnsettled(ctx, s.conn); err != nil {
		return tally{}, err
	}
	t, err := s.scan(ctx, now, nil)
	if err != nil {
		return t, err
	}
	s.sum.Pending, s.sum.GivenUp, s.sum.Failing = t.unsettled-t.givenUp, t.givenUp, t.failing
	return t, nil
}

// scan reads the unsettled table and decides, by the schedule at now, which messages are
// due; with out not nil it sends those to out. Two scans at the same now over the same
// table decide alike, so a pass can count first and feed after.
func (s *session) scan(ctx context.Context, now time.Time, out chan<- todoItem) (tally, error) {
	var t tally
	sched := s.cfg.Schedule
	last := int64(-1)
	for {
		n, err := store.UnsettledPage(ctx, s.conn, last, todoPage, func(u *store.Unsettled) bool {
			last = u.Seq
			t.unsettled++
			v := judge(sched, u, now)
			if v.fellBack {
				if t.fellBack++; t.exampleID == "" {
					t.exampleID, t.exampleSent = u.MessageID, u.SentText
				}
			}
			if !u.FailedAt.Before(s.start) && u.FailedAt.After(u.CheckedAt) {
				t.failing++
			}
			switch {
			case v.givenUp:
				t.givenUp++
			case v.due:
				t.due++
				if out != nil {
					select {
					case out <- todoItem{id: u.MessageID, answered: u.Answered}:
					case <-ctx.Done():
						return false
					}
				}
			default:
				if t.next.IsZero() || v.next.Before(t.next) {
					t.next = v.next
				}
			}
			return true
		})
		if err != nil {
			if ctx.Err() != nil {
				return t, nil
			}
			return t, fmt.Errorf("read messages to ask: %w", err)
		}
		if n == 0 || ctx.Err() != nil {
			return t, nil
		}
	}
}

// verdict is what the schedule says of an unsettled message at one instant.
type verdict struct {
	givenUp, due bool
	next         time.Time // when it is due, when it is neither given up nor due
	fellBack     bool      // its sent time could not be used (see SentTime)
}

// judge applies sched at now to u, a message without a terminal status.
func judge(sched Schedule, u *store.Unsettled, now time.Time) verdict {
	sent, fellBack := SentTime(u.SentAt, u.SentText != "", u.FirstLoadedAt, now)
	heard := u.CheckedAt
	if u.FailedAt.After(heard) {
		heard = u.FailedAt
	}
	if !heard.IsZero() {
		// The database keeps microseconds, cutting the rest: the request was made at most
		// this much later, and the schedule must never ask sooner than it says.
		heard = heard.Add(time.Microsecond - 1)
	}
	v := verdict{fellBack: fellBack}
	switch {
	case sched.GivenUp(now, sent):
		v.givenUp = true
	case sched.Due(now, sent, heard):
		v.due = true
	default:
		v.next = sched.Next(sent, heard)
	}
	return v
}
