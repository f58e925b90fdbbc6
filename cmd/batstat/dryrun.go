package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/report"
	"github.com/batstat/batstat/store"
)

// runDryRun plans the fetch o describes on a scratch copy of the database and prints the
// plan: per campaign what the input holds and what a run would ask, then the rejected rows.
// It asks the API nothing and leaves the database file as it was.
func runDryRun(ctx context.Context, o *fetchOptions, e *env) error {
	log := o.log.logger(e.stderr)
	cfg := o.config
	cfg.Stdin, cfg.Logger = e.stdin, log
	job, err := ingest.NewJob(cfg)
	if err != nil {
		return err
	}
	defer job.Close()

	db, err := o.db.openScratch(ctx, e, log)
	if err != nil {
		return err
	}
	defer db.Close()
	plan, err := job.Plan(ctx, db, time.Now())
	var strict *ingest.StrictError
	if err != nil && !errors.As(err, &strict) {
		return o.db.memoryHint(err)
	}
	if werr := writePlan(e.stdout, plan); werr != nil {
		return werr
	}
	if cerr := db.Close(); cerr != nil {
		log.Warn("scratch copy not removed", "err", cerr)
	}
	return err
}

// writePlan prints plan as a table, the rejected rows it lists, and a closing sentence.
func writePlan(w io.Writer, plan *ingest.Plan) error {
	if err := report.Render(w, report.FormatTable, []*report.Result{planResult(plan)}); err != nil {
		return err
	}
	if plan.RejectedTotal > 0 {
		fmt.Fprintf(w, "\nRejected rows (%d):\n", plan.RejectedTotal)
		for _, r := range plan.Rejected {
			fmt.Fprintf(w, "  %s:%d  %s\n", r.File, r.Line, r.Reason)
		}
		if more := plan.RejectedTotal - int64(len(plan.Rejected)); more > 0 {
			fmt.Fprintf(w, "  ... and %d more\n", more)
		}
	}
	n := plan.ToAsk()
	fmt.Fprintf(w, "\nA run would ask %d message%s (--refresh %s), taking %s. Nothing was asked and nothing written.\n",
		n, plural(n), plan.Refresh, timeAtRate(plan, n))
	if plan.Watch {
		fmt.Fprintln(w, "With --watch it would then ask again, by the schedule, until every message is final or given up, or --max-wait.")
	}
	return nil
}

// planResult shapes a plan as a report, so that it prints as reports do, with a TOTAL row.
// not_due and given_up are the schedule's, shown under --refresh due.
func planResult(plan *ingest.Plan) *report.Result {
	due := plan.Refresh == ingest.RefreshDue
	res := &report.Result{
		Name:    "dry run",
		Columns: []string{"campaign", "ids", "rejected", "new", "final", "to_ask"},
		Types:   []string{"VARCHAR", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "BIGINT"},
		Total:   "ids rejected new final to_ask",
	}
	if due {
		res.Columns = append(res.Columns, "not_due", "given_up")
		res.Types = append(res.Types, "BIGINT", "BIGINT")
		res.Total += " not_due given_up"
	}
	res.Columns = append(res.Columns, "time_at_rate")
	res.Types = append(res.Types, "VARCHAR")
	for _, c := range plan.Campaigns {
		row := []any{c.Campaign, c.IDs, c.Rejected, c.New, c.Final, c.ToAsk}
		if due {
			row = append(row, c.NotDue, c.GivenUp)
		}
		res.Rows = append(res.Rows, append(row, timeAtRate(plan, c.ToAsk)))
	}
	return res
}

// timeAtRate says how long asking n messages takes at the plan's rate: "unlimited" without
// a limit, else a duration such as 1h23m20s.
func timeAtRate(plan *ingest.Plan, n int64) string {
	if plan.Rate <= 0 {
		return "unlimited rate"
	}
	return store.FormatWait(plan.TimeAtRate(n))
}

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}
