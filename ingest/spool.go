package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"time"

	"github.com/batstat/batstat/store"
	"github.com/batstat/batstat/webhook"
)

// DefaultSpoolBatch is how many pushed events a webhook load commits at a time: four DuckDB
// row groups. Each commit looks up its messages in status_latest and messages, a scan of
// each, so larger batches cost fewer scans; its staging table is bounded by it.
const DefaultSpoolBatch = 4 * 122_880

// maxSkippedKept bounds the skipped lines a SpoolSummary lists; the rest are counted.
const maxSkippedKept = 100

// SpoolOptions tune a webhook load.
type SpoolOptions struct {
	// Batch is how many events are committed at a time (0 = DefaultSpoolBatch).
	Batch int
	// Logger receives a debug line per commit; nil discards them.
	Logger *slog.Logger
	// FromStart reads every file from its first line, whatever an earlier load recorded:
	// for a file that was replaced or cut since, which cannot be resumed. The events
	// already stored are left out as duplicates.
	FromStart bool
}

// SpoolSummary is what a webhook load did.
type SpoolSummary struct {
	Files int   // spool files read
	Read  int64 // events read from lines not loaded before (well-formed lines)
	// Loaded, Duplicates and Unknown: see store.PushCounts. Read = Loaded + Duplicates.
	store.PushCounts
	// Skipped counts the lines that are not events (their file:line and why in
	// SkippedLines, the first maxSkippedKept of them); Torn counts, of them, the
	// incomplete last lines of files (a write in progress, or cut short by a crash), which
	// a later load reads again once complete.
	Skipped, Torn int64
	SkippedLines  []*webhook.LineError
	// FileErrors are the files that could not be read (further); the others were loaded.
	FileErrors []*SpoolFileError
	Elapsed    time.Duration
}

// Log logs each skipped line of the load (FILE:LINE and why), each file that could not be
// read, and then the summary as msg, at Info; with quiet, a load that read nothing and
// skipped nothing logs at Debug (a watch loads the spool before every pass).
func (s *SpoolSummary) Log(log *slog.Logger, msg string, quiet bool) {
	for _, le := range s.SkippedLines {
		reason := le.Err.Error()
		if le.Torn {
			reason = "incomplete last line (" + reason + "), read again once complete"
		}
		log.Warn("spool line skipped", "at", fmt.Sprintf("%s:%d", le.File, le.Line), "reason", reason)
	}
	if n := s.Skipped - int64(len(s.SkippedLines)); n > 0 {
		log.Warn("more spool lines skipped", "not_listed", n)
	}
	for _, fe := range s.FileErrors {
		log.Warn("spool file not read", "file", fe.File, "err", fe.Err)
	}
	level := slog.LevelInfo
	if quiet && s.Read == 0 && s.Skipped == 0 && len(s.FileErrors) == 0 {
		level = slog.LevelDebug
	}
	log.Log(context.Background(), level, msg, s.LogAttrs()...)
}

// LogAttrs renders the summary for a structured log line; elapsed_s is in seconds.
func (s *SpoolSummary) LogAttrs() []any {
	return []any{
		slog.Int("files", s.Files), slog.Int64("events_read", s.Read), slog.Int64("loaded", s.Loaded),
		slog.Int64("duplicates", s.Duplicates), slog.Int64("unknown_ids", s.Unknown),
		slog.Int64("skipped_lines", s.Skipped), slog.Int64("torn_lines", s.Torn),
		slog.Float64("elapsed_s", s.Elapsed.Round(time.Millisecond).Seconds()),
	}
}

// SpoolFileError is a spool file that could not be read (further): missing, unreadable, or
// not the file whose position a load recorded (replaced or cut). The load goes on with the
// other files; what was read of this one before the error is stored.
type SpoolFileError struct {
	File string
	Err  error
}

func (e *SpoolFileError) Error() string {
	if errors.Is(e.Err, webhook.ErrNotResumable) {
		return fmt.Sprintf("spool file %s: %v; load it with batstat webhook load --from-start (events stored already are skipped)", e.File, e.Err)
	}
	return fmt.Sprintf("spool file %s: %v", e.File, e.Err)
}
func (e *SpoolFileError) Unwrap() error { return e.Err }

// spoolChunk is what the reader hands the loader at a time: events of one file and where
// reading that file stands after them.
type spoolChunk struct {
	file    string // absolute
	events  []store.Pushed
	next    store.SpoolPosition
	skipped []*webhook.LineError
	err     error // a file-level error after the events; nil otherwise
}

const spoolChunkSize = 2048

// spoolChunksAhead is how many chunks the reader may parse ahead of the loader: about half
// a batch, so that parsing the next batch overlaps DuckDB's commit of the last one (the
// two take about as long) while holding some 30 MB of events at most.
const spoolChunksAhead = 64

// LoadSpool loads the events of the spool files that paths name (directories stand for
// their events-YYYYMMDDTHH.ndjson files, see webhook.SpoolFiles) into status_checks, each
// file from where the last load stopped: loading a spool twice adds nothing, and one that
// grew adds only its new lines. Events already stored (the provider's duplicate deliveries)
// are left out; events of IDs no campaign has loaded are stored, and join their campaign
// once its list is loaded. Lines that are not events are skipped and reported in the
// summary, never fatal.
//
// Reading and parsing run in a goroutine of their own, beside the Appender and DuckDB's
// commits. The summary is returned with the error too: what was committed before it stays.
// A file that cannot be read ends that file only: it is listed in the summary's FileErrors
// and the other files are loaded; the error returned is about the load as a whole (the
// spool paths, the database, ctx).
func LoadSpool(ctx context.Context, db *store.DB, paths []string, opts SpoolOptions) (*SpoolSummary, error) {
	start := time.Now()
	sum := &SpoolSummary{}
	batch := opts.Batch
	if batch <= 0 {
		batch = DefaultSpoolBatch
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	files, err := webhook.SpoolFiles(paths...)
	if err != nil {
		return sum, err
	}
	sum.Files = len(files)
	positions, err := db.SpoolPositions(ctx)
	if err != nil {
		return sum, err
	}
	if opts.FromStart {
		clear(positions)
	}
	pl, err := db.StartPushLoad(ctx)
	if err != nil {
		return sum, err
	}
	defer pl.Close()

	// at is where each file stands, the loader's own: the reader reads positions.
	at := maps.Clone(positions)
	rctx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	chunks := make(chan spoolChunk, spoolChunksAhead)
	go func() {
		defer close(chunks)
		readSpool(rctx, files, positions, chunks)
	}()
	// drain lets the reader end once the loader stops early.
	drain := func() {
		stopReading()
		for range chunks {
		}
	}

	commit := func() error {
		staged := pl.Staged()
		c, err := pl.Commit(ctx)
		if err != nil {
			if ctx.Err() != nil {
				// The signal's cause, which decides the exit status; the batch is read
				// again next time.
				return context.Cause(ctx)
			}
			return fmt.Errorf("webhook load: %w", err)
		}
		sum.PushCounts.Add(c)
		log.Debug("spool batch committed", "events", staged, "loaded", c.Loaded, "duplicates", c.Duplicates)
		return nil
	}
	for ch := range chunks {
		for i := range ch.events {
			if err := pl.Add(&ch.events[i]); err != nil {
				drain()
				return sum, fmt.Errorf("webhook load: stage %s: %w", ch.file, err)
			}
		}
		sum.Read += int64(len(ch.events))
		for _, le := range ch.skipped {
			sum.Skipped++
			if le.Torn {
				sum.Torn++
			}
			if len(sum.SkippedLines) < maxSkippedKept {
				sum.SkippedLines = append(sum.SkippedLines, le)
			}
		}
		if ch.err != nil {
			if errors.Is(ch.err, context.Canceled) || errors.Is(ch.err, context.DeadlineExceeded) {
				continue // ctx's error is returned below
			}
			sum.FileErrors = append(sum.FileErrors, &SpoolFileError{File: ch.file, Err: ch.err})
		}
		// A file that did not grow changes nothing: a watch that loads the spool before every
		// pass must not write (and so republish its snapshot) when no event came.
		if ch.next != at[ch.file] {
			pl.SetPosition(ch.file, ch.next)
			at[ch.file] = ch.next
		}
		if pl.Staged() >= int64(batch) {
			if err := commit(); err != nil {
				drain()
				return sum, err
			}
		}
	}
	sum.Elapsed = time.Since(start)
	if ctx.Err() != nil {
		// What is staged is not committed: the next load reads it again.
		return sum, context.Cause(ctx)
	}
	if err := commit(); err != nil {
		return sum, err
	}
	sum.Elapsed = time.Since(start)
	return sum, nil
}

// loadRunSpool loads the run's webhook spool (Config.WebhookSpool), when it has one, into
// db, and adds what it stored to the run's summary: before each pass, so that a message
// whose terminal status was pushed is not asked. A spool file that cannot be read is
// logged and skipped, as a bad line is: the run can still poll.
func loadRunSpool(ctx context.Context, db *store.DB, cfg *Config, sum *Summary) error {
	if len(cfg.WebhookSpool) == 0 {
		return nil
	}
	s, err := LoadSpool(ctx, db, cfg.WebhookSpool, SpoolOptions{Logger: cfg.Logger})
	if s != nil {
		sum.Pushed.Add(s.PushCounts)
		s.Log(cfg.Logger, "webhook spool loaded", true)
	}
	return err
}

// readSpool reads files, each from its position, and sends their events in chunks.
func readSpool(ctx context.Context, files []string, positions map[string]store.SpoolPosition, out chan<- spoolChunk) {
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			abs = filepath.Clean(f)
		}
		p := positions[abs]
		ch := spoolChunk{file: abs, next: p, events: make([]store.Pushed, 0, spoolChunkSize)}
		send := func() bool {
			select {
			case out <- ch:
			case <-ctx.Done():
				return false
			}
			ch = spoolChunk{file: abs, next: ch.next, events: make([]store.Pushed, 0, spoolChunkSize)}
			return true
		}
		for rec, err := range webhook.ReadFile(ctx, f, webhook.Position{Offset: p.Offset, Line: p.Line}) {
			var le *webhook.LineError
			switch {
			case errors.As(err, &le):
				ch.skipped = append(ch.skipped, le)
			case err != nil:
				ch.err = err
			default:
				ev := &rec.Event
				ch.events = append(ch.events, store.Pushed{MessageID: ev.MessageID, Status: ev.DeliveryStatus,
					At: ev.Timestamp, ReceivedAt: rec.ReceivedAt, Cost: ev.Cost, Raw: ev.Raw})
			}
			ch.next = store.SpoolPosition{Offset: rec.Next.Offset, Line: rec.Next.Line}
			if len(ch.events) == spoolChunkSize && !send() {
				return
			}
		}
		if !send() {
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
}
