package ingest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/batstat/batstat/store"
)

// Plan is what a run of a Job would ask, worked out without asking: see Job.Plan.
type Plan struct {
	Refresh Refresh
	Watch   bool
	Rate    float64 // requests per second; 0 = unlimited
	Burst   int     // the token bucket's size
	// IDsRead counts the input rows with a usable ID, repeats included.
	IDsRead   int64
	Campaigns []CampaignPlan // by name
	// Rejected are the first rejected rows, in file and line order; RejectedTotal counts
	// them all.
	Rejected      []store.RejectedRow
	RejectedTotal int64
}

// CampaignPlan is one campaign of a Plan.
type CampaignPlan struct {
	store.CampaignInput
	// ToAsk counts the messages the run's first pass would ask: every one under
	// RefreshAll, those without a terminal status under RefreshPending, those the schedule
	// says are due under RefreshDue.
	ToAsk int64
	// Under RefreshDue: of the messages without a terminal status, those not due yet and
	// those given up (older than GiveUpAfter).
	NotDue, GivenUp int64
}

// PlanRejectedShown is how many rejected rows a Plan lists; RejectedTotal counts the rest.
const PlanRejectedShown = 20

// ToAsk counts the messages the run's first pass would ask, over every campaign.
func (p *Plan) ToAsk() int64 {
	var n int64
	for _, c := range p.Campaigns {
		n += c.ToAsk
	}
	return n
}

// TimeAtRate is how long asking n messages takes at least under the plan's rate limit,
// once each: a full bucket of Burst goes at once, the rest at Rate a second. Retries and
// the passes of a watch come on top. 0 when the rate is unlimited.
func (p *Plan) TimeAtRate(n int64) time.Duration {
	if p.Rate <= 0 || n <= int64(p.Burst) {
		return 0
	}
	return time.Duration(float64(n-int64(p.Burst)) / p.Rate * float64(time.Second)).Round(time.Second)
}

// Plan works out what Run would ask, without asking: it loads the inputs into db as Run
// would — the same reading, the same checks, the same rejected rows — and counts, by
// campaign, the messages found and those the run would ask under the Job's Refresh, at now
// for the schedule. db must be a scratch copy (store.OpenScratch): the load writes to it.
// Like Run, Plan uses the Job up.
//
// A Strict job whose input has rejected rows returns the Plan with a *StrictError: the run
// would stop there.
func (j *Job) Plan(ctx context.Context, db *store.DB, now time.Time) (*Plan, error) {
	if j.ran {
		return nil, errRanTwice
	}
	j.ran = true
	cfg := j.cfg
	// Every message of the input in the todo table, with nothing undone for a strict
	// failure: the counts below pick out what each Refresh asks.
	cfg.Refresh, cfg.Strict = RefreshAll, false
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", db.Path, err)
	}
	defer conn.Close()
	runID, err := db.StartRun(ctx, store.RunStart{
		APIURL: cfg.APIURL, Inputs: strings.Join(cfg.Inputs, " "), Refresh: string(j.cfg.Refresh),
	})
	if err != nil {
		return nil, err
	}
	// The spool too, as a run loads it first: a message pushed a final status is not
	// asked. db is a scratch copy, so the positions it records are not kept.
	if err := loadRunSpool(ctx, db, &cfg, &Summary{}); err != nil {
		return nil, err
	}
	var campaigns campaignSet
	ls, err := load(ctx, db, conn, runID, j.readers, &cfg, &campaigns)
	if err != nil {
		return nil, err
	}
	p := &Plan{Refresh: j.cfg.Refresh, Watch: j.cfg.Watch, Rate: j.cfg.Rate, Burst: bucketSize(j.cfg.Rate, j.cfg.Burst), IDsRead: ls.IDsRead}
	counts, err := store.InputCounts(ctx, conn, runID)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*CampaignPlan, len(counts))
	for _, c := range counts {
		p.Campaigns = append(p.Campaigns, CampaignPlan{CampaignInput: c})
	}
	for i := range p.Campaigns {
		c := &p.Campaigns[i]
		byName[c.Campaign] = c
		switch p.Refresh {
		case RefreshAll:
			c.ToAsk = c.IDs
		case RefreshPending:
			c.ToAsk = c.IDs - c.Final
		}
	}
	if p.Refresh == RefreshDue {
		if err := countDue(ctx, conn, j.cfg.Schedule, now, byName); err != nil {
			return nil, err
		}
	}
	if p.Rejected, p.RejectedTotal, err = store.RejectedRows(ctx, conn, runID, PlanRejectedShown); err != nil {
		return nil, err
	}
	if j.cfg.Strict && ls.Rejected > 0 {
		return p, &StrictError{Rejected: ls.Rejected}
	}
	return p, nil
}

// countDue sorts the input's messages without a terminal status, in the todo table of
// conn, by what the schedule says of them at now, into their campaign's plan.
func countDue(ctx context.Context, conn *sql.Conn, sched Schedule, now time.Time, plans map[string]*CampaignPlan) error {
	if _, err := store.ScanUnsettled(ctx, conn); err != nil {
		return err
	}
	for last := int64(-1); ; {
		n, err := store.UnsettledPage(ctx, conn, last, todoPage, func(u *store.Unsettled) bool {
			last = u.Seq
			c := plans[u.Campaign]
			if c == nil {
				return true // cannot be: the counts came from the same todo table
			}
			switch v := judge(sched, u, now); {
			case v.givenUp:
				c.GivenUp++
			case v.due:
				c.ToAsk++
			default:
				c.NotDue++
			}
			return true
		})
		if err != nil {
			return fmt.Errorf("read messages to ask: %w", err)
		}
		if n == 0 {
			return nil
		}
	}
}
