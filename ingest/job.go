package ingest

import (
	"context"
	"errors"

	"github.com/batstat/batstat/ingest/idlist"
	"github.com/batstat/batstat/store"
)

// Job is a fetch made ready to run: its Config is checked and every input is open. Making
// the Job before opening the database means that a bad Config or an input that cannot be
// read fails before anything, a database file included, is created.
type Job struct {
	cfg     Config
	readers []*idlist.Reader
	ran     bool
}

// NewJob gives the zero fields of cfg their defaults, validates it (see Config.Validate)
// and opens every input, reading each far enough to know its format, so that a missing,
// empty, binary or ID-less file fails here. The caller must Close the Job.
func NewJob(cfg Config) (*Job, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	readers, err := openInputs(&cfg)
	if err != nil {
		return nil, err
	}
	return &Job{cfg: cfg, readers: readers}, nil
}

// Close closes the inputs. It may be called more than once.
func (j *Job) Close() {
	closeAll(j.readers)
	j.readers = nil
}

// Fetch runs one fetch on db: NewJob, Run and Close.
func Fetch(ctx context.Context, db *store.DB, cfg Config) (*Summary, error) {
	j, err := NewJob(cfg)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	return j.Run(ctx, db)
}

// errRanTwice is Run on a Job that has run: its inputs have been read.
var errRanTwice = errors.New("fetch: a job runs once")
