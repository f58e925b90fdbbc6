// Package ingest runs a fetch: it reads campaign ID lists (package idlist), loads them into
// the messages table, asks the SMSBAT API for every message that still needs asking with a
// bounded worker pool under one token bucket, and loads every answer into DuckDB through a
// single writer. A run is recorded in the runs table from start to finish, so a cron job's
// outcome can be read from the database as well as from its exit code.
package ingest

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/batstat/batstat/ingest/idlist"
	"github.com/batstat/batstat/smsbat"
)

// Refresh says which messages a run asks about.
type Refresh string

const (
	// RefreshPending asks about messages without a terminal status (the default): terminal
	// statuses never change, so asking again only spends the rate limit.
	RefreshPending Refresh = "pending"
	// RefreshDue asks about the messages without a terminal status that the Schedule says
	// are due, and not those older than its GiveUpAfter.
	RefreshDue Refresh = "due"
	// RefreshAll asks about every message of the input.
	RefreshAll Refresh = "all"
)

// Config is everything a fetch run needs besides the database.
type Config struct {
	// Client asks the API. A DryRun needs none.
	Client *smsbat.Client
	// DryRun says the Job is only to be planned (Job.Plan), never run: nothing is asked.
	DryRun bool
	// APIURL is recorded in runs; it is the client's base URL, which holds no secret.
	APIURL string

	// Inputs are file names (already glob-expanded), "-" meaning Stdin.
	Inputs []string
	Stdin  io.Reader
	// FS, when set, is where Inputs are opened instead of the file system (the demo's
	// embedded campaigns).
	FS   fs.FS
	Read idlist.Options
	// Strict fails the run, before any request, when any input row is rejected.
	Strict bool

	Concurrency int           // workers; at least 1
	Rate        float64       // requests per second over all workers and retries; 0 = unlimited
	Burst       int           // token bucket size; 0 = max(1, ceil(Rate))
	Timeout     time.Duration // per request (0 = DefaultTimeout); also bounds the wait for in-flight requests on interrupt
	Retries     int           // further attempts per message after the first
	Refresh     Refresh       // "" = RefreshPending

	// Schedule says when a message is asked again: under RefreshDue, and in the passes of a
	// Watch after the first. Zero fields get the defaults (DefaultSchedule).
	Schedule Schedule
	// Watch keeps the run going after its first pass: it sleeps until the next message of
	// the input is due by the Schedule, asks the due ones, and so on, until no message of
	// the input is left without a terminal status (but those given up), or MaxWait has
	// passed since the run started, or ctx ends.
	Watch bool
	// MaxWait bounds a Watch (default DefaultMaxWait).
	MaxWait time.Duration

	// MaxRetryAfter caps how long a Retry-After can make the run wait (default 5 min): a
	// server once asked a client for 484,289 hours.
	MaxRetryAfter time.Duration
	// Backoff shapes the wait between attempts of one message (zero values get defaults).
	BackoffInitial, BackoffMax time.Duration

	// LoadChunk is how many input rows are staged and committed at a time (default
	// defaultBatchSize, one row group): it bounds the memory a load takes, whatever the
	// size of its inputs.
	LoadChunk int

	// BatchSize and FlushEvery bound how many answers wait before a commit (default one
	// DuckDB row group, 122,880, and 1 s): while the writer keeps up, the time bound cuts
	// the batches; when it falls behind, they grow to a row group, which DuckDB writes to
	// the file directly.
	BatchSize  int
	FlushEvery time.Duration

	// WebhookSpool, when set, names the spool directories (or files) of pushed statuses
	// (batstat webhook serve) that the run loads before its load of the inputs and before
	// each pass of a Watch (see LoadSpool): a message whose terminal status was pushed is
	// not asked.
	WebhookSpool []string

	Logger *slog.Logger
	// Progress, when not nil, is told how the run goes; ingest shows nothing itself.
	Progress Progress
}

// DefaultTimeout is the per-request timeout of a Config whose Timeout is zero.
const DefaultTimeout = 10 * time.Second

// DefaultMaxWait is how long a Watch goes on at most when Config.MaxWait is zero.
const DefaultMaxWait = 24 * time.Hour

// ConfigError is a field of a Config that a fetch cannot run with. Validate returns one for
// each such field, so that a caller can name its own flag or setting for the field.
type ConfigError struct {
	Field string // the Config field, e.g. "Concurrency"
	Value string // the value as given, formatted; "" when the rule is about the field as a whole
	Rule  string // what the value must be, e.g. "must be at least 1"
}

func (e *ConfigError) Error() string {
	if e.Value == "" {
		return strings.ToLower(e.Field) + ": " + e.Rule
	}
	return strings.ToLower(e.Field) + " " + e.Value + ": " + e.Rule
}

// Validate reports every field of c that a fetch cannot run with, each as a *ConfigError,
// joined with errors.Join. It applies no defaults: NewJob and Fetch give the zero fields
// that have one (see each field) their default first, whereas a caller that sets every
// field from its own flags calls Validate to learn of a zero Timeout or an empty Refresh.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, value, rule string) {
		errs = append(errs, &ConfigError{Field: field, Value: value, Rule: rule})
	}
	if c.Client == nil && !c.DryRun {
		bad("Client", "", "no API client")
	}
	if len(c.Inputs) == 0 {
		bad("Inputs", "", "no input files")
	}
	if n := countStdin(c.Inputs); n > 1 {
		// One reader cannot be read twice; nor would a second read see the same rows.
		bad("Inputs", "", `"-" (stdin) given more than once`)
	}
	if c.Concurrency < 1 {
		bad("Concurrency", strconv.Itoa(c.Concurrency), "must be at least 1")
	}
	if c.Rate < 0 {
		bad("Rate", strconv.FormatFloat(c.Rate, 'g', -1, 64), "must be 0 (unlimited) or more")
	}
	if c.Burst < 0 {
		bad("Burst", strconv.Itoa(c.Burst), "must not be negative")
	}
	if c.Timeout <= 0 {
		bad("Timeout", c.Timeout.String(), "must be positive")
	}
	if c.Retries < 0 {
		bad("Retries", strconv.Itoa(c.Retries), "must not be negative")
	}
	switch c.Refresh {
	case RefreshPending, RefreshDue, RefreshAll:
	default:
		bad("Refresh", strconv.Quote(string(c.Refresh)), "want pending, due or all")
	}
	s := &c.Schedule
	if s.MinInterval < MinMinInterval {
		bad("Schedule.MinInterval", s.MinInterval.String(), "must be at least "+MinMinInterval.String()+" (the API asks for no more than one request per message a second)")
	}
	if s.MaxInterval < s.MinInterval {
		bad("Schedule.MaxInterval", s.MaxInterval.String(), "must be at least the minimum interval ("+s.MinInterval.String()+")")
	}
	if s.GiveUpAfter <= 0 {
		bad("Schedule.GiveUpAfter", s.GiveUpAfter.String(), "must be positive")
	}
	if c.MaxWait <= 0 {
		bad("MaxWait", c.MaxWait.String(), "must be positive")
	}
	return errors.Join(errs...)
}

func countStdin(inputs []string) int {
	n := 0
	for _, name := range inputs {
		if name == "-" {
			n++
		}
	}
	return n
}

// setDefaults gives the zero fields that have a default their default.
func (c *Config) setDefaults() {
	if c.Refresh == "" {
		c.Refresh = RefreshPending
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Schedule.MinInterval == 0 {
		c.Schedule.MinInterval = DefaultMinInterval
	}
	if c.Schedule.MaxInterval == 0 {
		c.Schedule.MaxInterval = DefaultMaxInterval
	}
	if c.Schedule.GiveUpAfter == 0 {
		c.Schedule.GiveUpAfter = DefaultGiveUpAfter
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = 5 * time.Minute
	}
	if c.BackoffInitial <= 0 {
		c.BackoffInitial = 250 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.LoadChunk <= 0 {
		// A chunk of new IDs adds a row group to messages, which DuckDB then writes to the
		// file at once, compressed, instead of through the WAL and a checkpoint.
		c.LoadChunk = defaultBatchSize
	}
	if c.BatchSize <= 0 {
		c.BatchSize = defaultBatchSize
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Stdin == nil {
		c.Stdin = eofReader{}
	}
}

// MemoryLimit is the DuckDB memory limit a fetch is built and measured for (batstat fetch
// --memory-limit): a fetch holds one load chunk and two answer batches at most, so it needs
// no more however large its input or the file, and a small limit keeps a cron job's
// resident memory flat on a shared host. scripts/bench-fetch.sh measures the peak it gives
// (BENCHMARKS.md).
const MemoryLimit = "96MB"

// defaultBatchSize is one DuckDB row group: a transaction that appends at least that many
// rows writes them to the database file at once, skipping the WAL and the checkpoint that
// would otherwise copy them a second time.
const defaultBatchSize = 122_880

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
