package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/urfave/cli/v2"

	"github.com/batstat/batstat/internal/outfile"
	"github.com/batstat/batstat/report"
	"github.com/batstat/batstat/store"
)

// metricsFlag is --metrics-file, taken by fetch and report.
func metricsFlag() cli.Flag {
	return &cli.StringFlag{Name: "metrics-file", Usage: "write Prometheus metrics of the run to `PATH` (for node_exporter's textfile collector), also when it fails"}
}

// runMetrics is what a command tells of its run for --metrics-file. The command fills it
// in as it goes; run writes it once the exit status is known, so that a run that fails
// still leaves its exit status and duration for an alert to fire on.
type runMetrics struct {
	path string
	// responses counts a fetch's HTTP attempts by status code, 0 for no answer; nil for
	// a command that asks the API nothing.
	responses map[int]int64
	// delivery is the builtin delivery report over the run's campaigns, nil when the
	// run did not get that far.
	delivery *report.Result
}

// newRunMetrics checks --metrics-file: nil when it is not given, a usage error when its
// directory does not exist (the file is written there under a temporary name, then renamed)
// or when it is the database or a file beside it.
func newRunMetrics(c *cli.Context) (*runMetrics, error) {
	path := c.String("metrics-file")
	if path == "" {
		return nil, nil
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return nil, usagef("--metrics-file %s: the directory %s does not exist", path, filepath.Dir(path))
	}
	// Checked here, before the command keeps it: run writes the metrics file even after
	// bad usage, so a refused path must never be kept.
	if err := outfile.Database(c.String("db")).Check(path); err != nil {
		return nil, outputUsage("--metrics-file", err)
	}
	return &runMetrics{path: path}, nil
}

// collectDelivery runs the builtin delivery report over f for the campaign metrics. It
// reads even when ctx is cancelled: an interrupted run still reports what it stored.
func (m *runMetrics) collectDelivery(ctx context.Context, db *store.DB, f report.Filter) error {
	if m == nil {
		return nil
	}
	res, err := builtinDelivery(context.WithoutCancel(ctx), db, f)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	m.delivery = res
	return nil
}

// builtinDelivery runs the builtin delivery report, whatever --queries-dir replaces.
func builtinDelivery(ctx context.Context, db *store.DB, f report.Filter) (*report.Result, error) {
	defs, err := report.Defs("")
	if err != nil {
		return nil, err
	}
	sel, err := report.Select(defs, "delivery")
	if err != nil {
		return nil, err
	}
	return report.Run(ctx, db.DB, sel[0], f)
}

// deliveryStatuses are the status columns of the delivery report, each a value of the
// status label of batstat_messages.
var deliveryStatuses = []string{"delivered", "undeliverable", "permanenterror", "scheduled", "processing", "not_found", "other", "unchecked"}

// write writes the metrics file with the run's exit status and duration. A run that did
// not exit 0 carries over batstat_last_success_timestamp_seconds from the file it replaces,
// so that "no success for an hour" can be alerted on across failing runs.
func (m *runMetrics) write(code int, elapsed time.Duration, now time.Time) error {
	reg := prometheus.NewRegistry()
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		reg.MustRegister(g)
		return g
	}
	gauge("batstat_run_exit_code", "Exit status of the last batstat run (0 ok, 1 fatal, 2 usage, 3 partial fetch, 6 delivery rate below --fail-under, 130/143 interrupted).").Set(float64(code))
	gauge("batstat_run_duration_seconds", "Wall time of the last batstat run.").Set(elapsed.Seconds())
	lastSuccess := float64(now.UnixNano()) / 1e9
	if code != exitOK {
		lastSuccess = previousValue(m.path, "batstat_last_success_timestamp_seconds")
	}
	if lastSuccess > 0 {
		gauge("batstat_last_success_timestamp_seconds", "Unix time at which a batstat run last exited 0.").Set(lastSuccess)
	}

	if m.responses != nil {
		requests := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "batstat_api_requests_total",
			Help: `HTTP requests made to the SMSBAT API in the run, retries included, by status code answered; code="error" when none came (network error, timeout).`,
		}, []string{"code"})
		reg.MustRegister(requests)
		codes := slices.Sorted(func(yield func(int) bool) {
			for c := range m.responses {
				if !yield(c) {
					return
				}
			}
		})
		for _, c := range codes {
			label := strconv.Itoa(c)
			if c == 0 {
				label = "error"
			}
			requests.WithLabelValues(label).Add(float64(m.responses[c]))
		}
	}

	if m.delivery != nil {
		messages := prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "batstat_messages",
			Help: "Messages of a campaign by their latest status (unchecked: no answer yet; other: a status outside the lifecycle), as the delivery report counts them.",
		}, []string{"campaign", "status"})
		rate := prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "batstat_delivery_rate",
			Help: "Delivered messages of a campaign over all its messages, 0-1, as the delivery report computes it.",
		}, []string{"campaign"})
		reg.MustRegister(messages, rate)
		d := m.delivery
		col := func(name string) int { return slices.Index(d.Columns, name) }
		for _, row := range d.Rows {
			campaign, _ := row[col("campaign")].(string)
			for _, s := range deliveryStatuses {
				n, err := toFloat(row[col(s)])
				if err != nil {
					return fmt.Errorf("metrics: delivery %s of %q: %w", s, campaign, err)
				}
				messages.WithLabelValues(campaign, s).Set(n)
			}
			r, err := toFloat(row[col("delivery_rate")])
			if err != nil {
				return fmt.Errorf("metrics: delivery rate of %q: %w", campaign, err)
			}
			rate.WithLabelValues(campaign).Set(r)
		}
	}
	// As every output: whole or not at all (prometheus.WriteToTextfile renames too, but
	// over a symbolic link and without the old file's mode).
	families, err := reg.Gather()
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	f, err := outfile.Create(m.path)
	if err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	defer f.Abort()
	for _, mf := range families {
		if _, err := expfmt.MetricFamilyToText(f, mf); err != nil {
			return fmt.Errorf("metrics file %s: %w", m.path, err)
		}
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	return nil
}

// previousValue reads a gauge without labels from a metrics file written before; 0 when
// the file or the gauge is missing or unreadable.
func previousValue(path, name string) float64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(f)
	if err != nil {
		return 0
	}
	mf, ok := families[name]
	if !ok || len(mf.GetMetric()) != 1 || mf.GetMetric()[0].GetGauge() == nil {
		return 0
	}
	return mf.GetMetric()[0].GetGauge().GetValue()
}

// toFloat converts a count or rate as report.Run scans it.
func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case int64:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case float64:
		return x, nil
	case nil:
		return 0, nil
	}
	return 0, errors.New("not a number: " + fmt.Sprintf("%T", v))
}
