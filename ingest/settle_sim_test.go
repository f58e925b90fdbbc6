package ingest_test

// The settling simulation: how many calls per message, and how stale, three ways of
// learning a long-tailed campaign's final statuses cost over one hour. It runs the whole
// pipeline (the CSV read, a real DuckDB file, the pool, the token bucket, the writer)
// against the fake API under testing/synctest, reached in memory, so an hour passes in
// seconds of CPU and the figures are exact and the same on every run.
//
// It is not part of the test suite: scripts/bench-settle.sh runs it (BENCHMARKS.md).
//
//	BATSTAT_SETTLE_SIM=1 go test ./ingest -run TestSettleSimulation -v

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/smsbat/smsbattest"
)

// simStrategy is a way of learning the statuses, run from the campaign's sending on.
type simStrategy struct {
	name string
	run  func(t *testing.T, f *fixture, cfg ingest.Config, hour time.Duration) (runs int, err error)
}

// watchSim is one `fetch --watch --max-wait 1h` with the schedule s.
func watchSim(s ingest.Schedule) func(*testing.T, *fixture, ingest.Config, time.Duration) (int, error) {
	return func(t *testing.T, f *fixture, cfg ingest.Config, hour time.Duration) (int, error) {
		cfg.Watch, cfg.MaxWait, cfg.Schedule = true, hour, s
		_, err := ingest.Fetch(context.Background(), f.db, cfg)
		return 1, err
	}
}

// cronSim is `fetch --refresh pending` run every minute from cron.
func cronSim(t *testing.T, f *fixture, cfg ingest.Config, hour time.Duration) (int, error) {
	start := time.Now()
	runs := 0
	for at := start; at.Before(start.Add(hour)); at = at.Add(time.Minute) {
		time.Sleep(time.Until(at))
		if _, err := ingest.Fetch(context.Background(), f.db, cfg); err != nil {
			return runs, err
		}
		runs++
	}
	return runs, nil
}

// simResult is what one strategy cost.
type simResult struct {
	name               string
	messages, calls    int64
	runs, passes       int
	finalAtOnce, never int
	// calls per message of those final at once, those that settle later, and those never
	onceCalls, laterCalls, neverCalls float64
	settled, unlearned                int     // messages final within the hour; of those, not stored in it
	meanStale                         float64 // seconds from final at the fake to stored, over the settled
	p50, p90, maxStale                float64
	elapsed                           time.Duration // real time the simulation took
}

func TestSettleSimulation(t *testing.T) {
	if os.Getenv("BATSTAT_SETTLE_SIM") == "" {
		t.Skip("set BATSTAT_SETTLE_SIM=1 to run the settling simulation (scripts/bench-settle.sh)")
	}
	n := 2000
	if v := os.Getenv("BATSTAT_SETTLE_SIM_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	// Other --min-interval values to try the watch with (BATSTAT_SETTLE_SIM_MIN_INTERVALS).
	var mins []time.Duration
	for v := range strings.SplitSeq(cmp.Or(os.Getenv("BATSTAT_SETTLE_SIM_MIN_INTERVALS"), "10s,12s,15s"), ",") {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		mins = append(mins, d)
	}
	const hour = time.Hour
	every5s := ingest.Schedule{MinInterval: 5 * time.Second, MaxInterval: 5 * time.Second, GiveUpAfter: ingest.DefaultGiveUpAfter}
	strategies := []simStrategy{
		{"fetch --watch (defaults: --min-interval 5s --max-interval 1h)", watchSim(ingest.DefaultSchedule())},
		{"poll every pending message every 5 s", watchSim(every5s)},
		{"cron: fetch --refresh pending every minute", cronSim},
	}
	for _, d := range mins {
		s := ingest.DefaultSchedule()
		s.MinInterval = d
		strategies = append(strategies, simStrategy{"fetch --watch --min-interval " + d.String(), watchSim(s)})
	}
	var results []simResult
	for _, st := range strategies {
		var r simResult
		began := time.Now()
		synctest.Test(t, func(t *testing.T) {
			r = simulate(t, st, n, hour)
		})
		r.elapsed = time.Since(began)
		results = append(results, r)
	}
	report := func(format string, args ...any) {
		fmt.Printf(format+"\n", args...)
	}
	r0 := results[0]
	report("settle-sim: %d messages (%d final at once, %d never), one hour, rate unlimited", r0.messages, r0.finalAtOnce, r0.never)
	report("settle-sim: %-62s %9s %8s %8s %8s %8s %6s %7s %9s", "strategy", "calls/msg", "stale_s", "p50_s", "p90_s", "max_s", "runs", "passes", "real")
	for _, r := range results {
		report("settle-sim: %-62s %9.2f %8.2f %8.2f %8.2f %8.2f %6d %7d %9s", r.name,
			float64(r.calls)/float64(r.messages), r.meanStale, r.p50, r.p90, r.maxStale, r.runs, r.passes, r.elapsed.Round(time.Second))
		report("settle-sim:   calls per message final at once %.2f, settling later %.2f, never final %.2f",
			r.onceCalls, r.laterCalls, r.neverCalls)
		if r.unlearned > 0 {
			report("settle-sim: %s: %d messages final within the hour not stored in it", r.name, r.unlearned)
		}
	}
	poll, cron := results[1], results[2]
	ratio := func(a, b simResult) float64 { return float64(a.calls) / float64(b.calls) }
	report("settle-sim: goals: watch/poll calls <= 0.10; watch/cron calls <= 1.25 and staleness <= 0.333")
	for _, w := range append(results[:1:1], results[3:]...) {
		report("settle-sim: %-62s watch/poll calls %.3f; watch/cron calls %.3f, staleness %.3f",
			w.name, ratio(w, poll), ratio(w, cron), w.meanStale/cron.meanStale)
	}
}

// simulate runs one strategy on a fresh database and fake, from the campaign's sending,
// and measures it.
func simulate(t *testing.T, st simStrategy, n int, hour time.Duration) simResult {
	opts := smsbattest.Options{Seed: 1, Settle: &smsbattest.Settle{AtOnce: 0.3, Never: 0.04,
		Median: 10 * time.Second, Sigma: 1, Max: 5 * time.Minute}}
	f := newBubbleFixture(t, opts, n)
	cfg := f.config(t)
	cfg.Rate = 0
	cfg.Concurrency = 10
	start := time.Now()
	r := simResult{name: st.name, messages: int64(n)}
	runs, err := st.run(t, f, cfg, hour)
	if err != nil {
		t.Fatalf("%s: %v", st.name, err)
	}
	r.runs = runs
	r.calls = f.api.Count()
	r.passes = int(count(t, f.db, `SELECT count(DISTINCT (run_id, checked_at)) FROM status_checks`))

	// When each message's first terminal answer was stored. In simulated time the
	// pipeline's own work takes none: a pass commits at the instant its answers arrive, so
	// the first terminal checked_at is when batstat stored it.
	rows, err := f.db.Query(`SELECT message_id, min(checked_at) FILTER (WHERE is_terminal(deliverystatus))
		FROM status_checks GROUP BY message_id`)
	if err != nil {
		t.Fatal(err)
	}
	learned := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at *time.Time
		if err := rows.Scan(&id, &at); err != nil {
			t.Fatal(err)
		}
		if at != nil {
			learned[id] = *at
		}
	}
	rows.Close()
	var stale []float64
	var later int
	for _, id := range f.ids {
		e := f.api.Expected(id)
		calls := float64(f.api.CountFor(id))
		switch {
		case e.Stuck:
			r.never++
			r.neverCalls += calls
			continue
		case e.SettleAt.Equal(start):
			r.finalAtOnce++
			r.onceCalls += calls
		default:
			later++
			r.laterCalls += calls
		}
		if !e.SettleAt.Before(start.Add(hour)) {
			continue
		}
		r.settled++
		at, ok := learned[id]
		if !ok {
			r.unlearned++
			continue
		}
		stale = append(stale, at.Sub(e.SettleAt).Seconds())
	}
	r.onceCalls /= float64(max(r.finalAtOnce, 1))
	r.laterCalls /= float64(max(later, 1))
	r.neverCalls /= float64(max(r.never, 1))
	slices.Sort(stale)
	var sum float64
	for _, s := range stale {
		sum += s
	}
	if len(stale) > 0 {
		r.meanStale = sum / float64(len(stale))
		r.p50, r.p90, r.maxStale = stale[len(stale)/2], stale[len(stale)*9/10], stale[len(stale)-1]
	}
	return r
}
