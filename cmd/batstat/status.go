package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/urfave/cli/v2"

	"github.com/batstat/batstat/ingest"
	"github.com/batstat/batstat/ingest/idlist"
	"github.com/batstat/batstat/report"
	"github.com/batstat/batstat/smsbat"
)

// statusDescription is status's help: what it shows, how it waits, and its exit statuses.
const statusDescription = `Asks the API about each message ID now and prints one row per ID, in the order given
(an ID given twice is asked and shown once): message_id, deliverystatus, cost, currency,
channel, checked_at. It needs no database.

--wait D keeps asking each ID whose status is not terminal (delivered, undeliverable,
permanenterror) every --interval (never sooner, retries included; a failed request is
retried with backoff from --interval), until it is terminal or D has passed: the last ask
is the last that fits in D, and no retry starts after it. For a one-time code that must
arrive within 30 seconds:

    batstat status --wait 30s "$ID" || resend

currency is billCurrency, else rateCurrency, else empty, as in the cost report. channel
is the channel of extendedStatuses that delivered the message; else the last channel tried
(the primary, then the fallbacks in their order; a "not_used" one was not tried); else
empty: a basic answer names no channel.

--record also stores the answers in --db as a run (runs with refresh "status",
status_checks, status_latest, fetch_errors for asks without an answer); an ID the database
does not know is added to messages under --campaign, one it knows keeps its campaign.

Exit status: 0 every ID delivered; 4 an ID ended undeliverable, permanenterror or
not_found; 5 an ID is not terminal yet (scheduled, processing, or a status batstat does not
know), after --wait or at once without it; 1 fatal: credentials rejected, the API
unreachable, an ID whose ask got no answer after its retries, the database not written;
2 bad usage; 130/143 interrupted. When several apply, the first of 1, 4, 5, 0 wins.`

func statusCommand(e *env, runF runFunc[*statusOptions]) *cli.Command {
	if runF == nil {
		runF = runStatus
	}
	flags := apiFlags()
	flags = append(flags,
		&cli.DurationFlag{Name: "wait", Usage: "keep asking an ID that is not terminal for up to `D` (0 = ask once)"},
		&cli.DurationFlag{Name: "interval", Usage: "least time between two requests for one ID, retries included (at least 1s)", Value: ingest.DefaultInterval},
		&cli.BoolFlag{Name: "record", Usage: "also store the answers in --db as a run"},
		dbFlag(),
		&cli.StringFlag{Name: "campaign", Usage: "with --record: campaign `NAME` of IDs the database does not know", Value: "status"},
		lockTimeoutFlag(writerLockTimeout, "(with --record)"),
	)
	flags = append(flags, outputFlags("table, csv, json or markdown")...)
	return withUsageErrors(&cli.Command{
		Name:        "status",
		Usage:       "ask about message IDs now, and with --wait until they are delivered or fail",
		ArgsUsage:   "ID...",
		Description: statusDescription,
		Flags:       flags,
		Action:      action(e, newStatusOptions, runF),
	})
}

// statusOptions are batstat status's flags and arguments, checked.
type statusOptions struct {
	config ingest.StatusConfig // but Progress, which comes from the env
	apiURL string
	out    outputOptions
	// record stores the answers in db under campaign.
	record   bool
	db       dbOptions
	campaign string
}

// statusFlags names the flag that sets each field of ingest.StatusConfig that comes from one.
var statusFlags = map[string]string{
	"Wait":     "--wait",
	"Interval": "--interval",
	"Retries":  "--retries",
}

func newStatusOptions(c *cli.Context, _ *env) (*statusOptions, error) {
	if c.NArg() == 0 {
		return nil, usagef("status: no message ID given")
	}
	api, err := newAPIOptions(c, ingest.DefaultStatusConcurrency)
	if err != nil {
		return nil, err
	}
	if api.timeout <= 0 {
		return nil, usagef("--timeout %s: must be positive", api.timeout)
	}
	o := &statusOptions{
		apiURL:   api.url,
		record:   c.Bool("record"),
		campaign: c.String("campaign"),
	}
	if o.db, err = newDBOptions(c); err != nil {
		return nil, err
	}
	if o.out, err = newOutputOptions(c, o.db); err != nil {
		return nil, err
	}
	if c.IsSet("campaign") && !o.record {
		return nil, usagef("--campaign names the campaign of IDs that --record adds to the database: give --record too")
	}
	if o.record && strings.TrimSpace(o.campaign) == "" {
		return nil, usagef("--campaign: empty name")
	}
	ids, err := statusIDs(c.Args().Slice())
	if err != nil {
		return nil, err
	}
	o.config = ingest.StatusConfig{
		Client:   api.client,
		APIURL:   api.url,
		IDs:      ids,
		Wait:     c.Duration("wait"),
		Interval: c.Duration("interval"),
		Retries:  api.retries,
	}
	if err := o.config.Validate(); err != nil {
		return nil, configUsage("status", statusFlags, err)
	}
	return o, nil
}

// statusIDs trims the IDs and drops repeats, keeping the first; an ID that cannot be one
// (empty, not UTF-8, too long) is bad usage.
func statusIDs(args []string) ([]string, error) {
	ids := make([]string, 0, len(args))
	seen := make(map[string]bool, len(args))
	for _, a := range args {
		id := strings.TrimSpace(a)
		switch {
		case id == "":
			return nil, usagef("status: empty message ID")
		case !utf8.ValidString(id):
			return nil, usagef("status: message ID %q is not UTF-8", id)
		case len(id) > idlist.MaxIDLength:
			return nil, usagef("status: message ID of %d bytes, longer than %d", len(id), idlist.MaxIDLength)
		case seen[id]:
			continue
		}
		seen[id] = true
		ids = append(ids, id)
	}
	return ids, nil
}

// runStatus asks, records when asked to, prints the rows, and returns what decides the
// exit status: the first of a fatal error (1, or the signal's 130/143), an undelivered
// message (4) and a pending one (5).
func runStatus(ctx context.Context, o *statusOptions, e *env) error {
	cfg := o.config
	var line *waitLine
	if cfg.Wait > 0 && e.stderrTTY {
		line = startWaitLine(e.stderr, len(cfg.IDs), time.Now().Add(cfg.Wait))
		cfg.Progress = line.progress
	}
	run, err := ingest.Status(ctx, cfg)
	line.stop()
	if run == nil {
		return err
	}
	var recErr error
	if o.record {
		// An interrupted run keeps what it learned, as an interrupted fetch does: the
		// signal is the exit status, and a second one kills the process.
		recErr = o.recordRun(context.WithoutCancel(ctx), e, run, err)
	}
	if werr := o.write(e, run); werr != nil && recErr == nil {
		recErr = werr
	}
	if err != nil {
		return err
	}
	if recErr != nil {
		return recErr
	}
	return statusOutcome(run, cfg.Wait)
}

func (o *statusOptions) recordRun(ctx context.Context, e *env, run *ingest.StatusRun, statusErr error) error {
	db, err := o.db.openWriter(ctx, slog.New(slog.NewTextHandler(e.stderr, nil)))
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	defer db.Close()
	if _, err := run.Record(ctx, db, ingest.RecordOptions{APIURL: o.apiURL, Campaign: o.campaign, Err: statusErr}); err != nil {
		return fmt.Errorf("record in %s: %w", db.Path, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("close database %s: %w", db.Path, err)
	}
	return nil
}

// write prints one row per message to --output or stdout.
func (o *statusOptions) write(e *env, run *ingest.StatusRun) error {
	return o.out.writeResults(e, []*report.Result{statusResult(run)})
}

// statusResult is the rows of a status run, shaped as a report so that every --format
// renders them as it renders reports. A message without an answer has NULL columns.
func statusResult(run *ingest.StatusRun) *report.Result {
	res := &report.Result{
		Name:    "status",
		Columns: []string{"message_id", "deliverystatus", "cost", "currency", "channel", "checked_at"},
		Types:   []string{"VARCHAR", "VARCHAR", "DECIMAL(18,6)", "VARCHAR", "VARCHAR", "TIMESTAMP WITH TIME ZONE"},
		Rows:    make([][]any, 0, len(run.Messages)),
	}
	for _, m := range run.Messages {
		row := []any{m.ID, nil, nil, nil, nil, nil}
		if s := m.Status; s != nil {
			// checked_at as the database keeps it, to the microsecond.
			row[1], row[3], row[4], row[5] = s.DeliveryStatus, s.Currency(), s.Channel(), m.CheckedAt.Truncate(time.Microsecond)
			if s.Cost != nil {
				row[2] = duckdb.Decimal{Width: 18, Scale: smsbat.MoneyScale, Value: big.NewInt(int64(*s.Cost))}
			}
		}
		res.Rows = append(res.Rows, row)
	}
	return res
}

// statusOutcome is the error that gives the exit status of a finished status run: 1 for
// messages whose ask got no answer, else 4 for messages that ended undelivered, else 5 for
// messages not terminal yet, else nil.
func statusOutcome(run *ingest.StatusRun, wait time.Duration) error {
	var failed, undelivered, pending []string
	for _, m := range run.Messages {
		switch {
		case m.Err != nil:
			failed = append(failed, fmt.Sprintf("%s: %v", m.ID, m.Err))
		case m.Status == nil:
			failed = append(failed, m.ID+": not asked")
		case m.Status.DeliveryStatus == smsbat.StatusDelivered:
		case isUndelivered(m.Status.DeliveryStatus):
			undelivered = append(undelivered, m.ID+" ("+m.Status.DeliveryStatus+")")
		default:
			pending = append(pending, m.ID+" ("+m.Status.DeliveryStatus+")")
		}
	}
	n := len(run.Messages)
	switch {
	case len(failed) > 0:
		return fmt.Errorf("status: %d of %d messages got no answer: %s", len(failed), n, list(failed, "; "))
	case len(undelivered) > 0:
		return &undeliveredError{fmt.Sprintf("status: %d of %d messages ended undeliverable, permanenterror or not_found: %s",
			len(undelivered), n, list(undelivered, ", "))}
	case len(pending) > 0:
		after := "(--wait D waits for a terminal status)"
		if wait > 0 {
			after = "after --wait " + wait.String()
		}
		return &pendingError{fmt.Sprintf("status: %d of %d messages not terminal yet %s: %s",
			len(pending), n, after, list(pending, ", "))}
	}
	return nil
}

// isUndelivered reports whether a message in status s will not be delivered, as far as
// the exit status of batstat status goes: it failed for good, or the API does not know it.
func isUndelivered(s string) bool {
	return s == smsbat.StatusUndeliverable || s == smsbat.StatusPermanentError || s == smsbat.StatusNotFound
}

// list joins items, at most 5 of them and then how many more.
func list(items []string, sep string) string {
	const most = 5
	if len(items) <= most {
		return strings.Join(items, sep)
	}
	return strings.Join(items[:most], sep) + fmt.Sprintf("%sand %d more", sep, len(items)-most)
}

// undeliveredError is a status run in which a message ended undelivered: exit 4.
type undeliveredError struct{ msg string }

func (e *undeliveredError) Error() string { return e.msg }

// pendingError is a status run in which a message is not terminal yet: exit 5.
type pendingError struct{ msg string }

func (e *pendingError) Error() string { return e.msg }

// waitLine shows a waiting status run on one line of a terminal, redrawn every second and
// when a message is done, and erased at the end.
type waitLine struct {
	w        io.Writer
	total    int
	deadline time.Time
	mu       sync.Mutex
	done     int
	quit     chan struct{}
	wg       sync.WaitGroup
}

func startWaitLine(w io.Writer, total int, deadline time.Time) *waitLine {
	l := &waitLine{w: w, total: total, deadline: deadline, quit: make(chan struct{})}
	l.draw()
	l.wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				l.draw()
			case <-l.quit:
				return
			}
		}
	})
	return l
}

func (l *waitLine) progress(done, _ int) {
	l.mu.Lock()
	l.done = done
	l.mu.Unlock()
	l.draw()
}

func (l *waitLine) draw() {
	l.mu.Lock()
	defer l.mu.Unlock()
	left := max(time.Until(l.deadline), 0).Round(time.Second)
	fmt.Fprintf(l.w, "\rbatstat status: %d of %d done, waiting at most %s more\033[K", l.done, l.total, left)
}

// stop erases the line; a nil waitLine does nothing.
func (l *waitLine) stop() {
	if l == nil {
		return
	}
	close(l.quit)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprint(l.w, "\r\033[K")
}
