package report_test

// Benchmarks of the reports and the Parquet export on a database of the size batstat is
// built for: 2,000,000 messages in 50 campaigns and 10,000,000 status_checks rows.
//
// The database is generated with DuckDB SQL the first time, at the path in
// BATSTAT_BENCH_DB (BENCHMARKS.md says how long that takes and how large it is); later
// runs reuse it. Without the
// variable the benchmark is skipped. Run it alone, nothing else heavy at the same time:
//
//	BATSTAT_BENCH_DB=/tmp/batstat-bench.duckdb \
//	    go test ./report -run '^$' -bench . -benchtime 3x -timeout 30m
//
// Each report is run on a read-only connection, as batstat report and batstat query do;
// the export sub-benchmark reports rows/s of `batstat export --format parquet` of
// message_status.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/batstat/batstat/report"
	"github.com/batstat/batstat/store"
)

// generateBenchDB fills an empty batstat database with synthetic data: messages across 50
// campaigns, of which 2.5% are never answered, and checks spread over the others (the
// earlier ones of a message say processing, from the fifth on its final status: mostly
// delivered, the rest in every other state, an unknown one included).
func generateBenchDB(ctx context.Context, db *sql.DB, messages, checks int) error {
	answered := messages - messages/40
	stmts := []string{
		`INSERT INTO runs (run_id, started_at, finished_at, outcome, inputs, refresh)
		 SELECT r, TIMESTAMPTZ '2025-01-01 00:00:00+00' + r * INTERVAL 1 HOUR,
		        TIMESTAMPTZ '2025-01-01 00:30:00+00' + r * INTERVAL 1 HOUR, 'ok', 'bench.csv', 'pending'
		 FROM range(1, 8) t(r)`,
		fmt.Sprintf(`INSERT INTO messages (message_id, campaign, source_file, source_line, first_loaded_at,
		                                   run_id, recipient, sent_at)
		 SELECT 'm' || lpad(i::VARCHAR, 9, '0'),
		        'campaign-' || lpad((i %% 50)::VARCHAR, 2, '0'),
		        'bench.csv', i + 2,
		        TIMESTAMPTZ '2025-01-01 00:00:00+00' + (i %% 86400) * INTERVAL 1 SECOND,
		        1, '380' || lpad(i::VARCHAR, 9, '0'),
		        CASE WHEN i %% 3 = 0 THEN NULL
		             ELSE strftime(TIMESTAMP '2024-12-31 12:00:00' + (i %% 43200) * INTERVAL 1 SECOND, '%%Y-%%m-%%d %%H:%%M:%%S') || '+00'
		        END
		 FROM range(%d) t(i)`, messages),
		fmt.Sprintf(`INSERT INTO status_checks
		 SELECT message_id, run_id, checked_at, http_status, deliverystatus, partscount, cost, 42,
		        rate, rate, rate_currency, CASE WHEN bill THEN cost END, CASE WHEN bill THEN rate_currency END,
		        fallbacks, extended_statuses, 1,
		        '{"messageId":"' || message_id || '","deliverystatus":"' || deliverystatus || '"}', 'poll', NULL
		 FROM (
		     SELECT 'm' || lpad((i %% %[2]d)::VARCHAR, 9, '0') AS message_id,
		            i // %[2]d AS k,
		            hash(i %% %[2]d) %% 1000 AS h,
		            1 + k AS run_id,
		            TIMESTAMPTZ '2025-01-01 01:00:00+00' + k * INTERVAL 1 HOUR + (i %% 3600) * INTERVAL 1 SECOND AS checked_at,
		            CASE WHEN k < 4 THEN 'processing'
		                 WHEN h < 800 THEN 'delivered'
		                 WHEN h < 880 THEN 'undeliverable'
		                 WHEN h < 900 THEN 'permanenterror'
		                 WHEN h < 940 THEN 'processing'
		                 WHEN h < 970 THEN 'scheduled'
		                 WHEN h < 990 THEN 'not_found'
		                 ELSE 'expired' END AS deliverystatus,
		            CASE WHEN deliverystatus = 'not_found' THEN 404 ELSE 200 END AS http_status,
		            CASE WHEN deliverystatus = 'not_found' THEN NULL ELSE 1 + h %% 3 END AS partscount,
		            CASE WHEN deliverystatus IN ('not_found', 'scheduled') THEN NULL
		                 ELSE (0.05 * partscount)::DECIMAL(18,6) END AS cost,
		            CASE WHEN cost IS NULL THEN NULL ELSE 0.050000::DECIMAL(18,6) END AS rate,
		            CASE WHEN cost IS NULL THEN NULL WHEN h %% 10 = 0 THEN 'EUR' ELSE 'UAH' END AS rate_currency,
		            h %% 2 = 0 AS bill,
		            CASE WHEN h %% 10 < 3 THEN '[{"type":"viber","status":"undeliverable"},{"type":"sms","status":"delivered"}]'
		                 WHEN h %% 10 < 5 THEN '[{"type":"sms","status":"not_used"}]'
		            END AS fallbacks,
		            CASE WHEN h %% 2 = 0 THEN '{"viber":"' || deliverystatus || '","sms":"not_used"}' END AS extended_statuses
		     FROM range(%[1]d) t(i)
		 )`, checks, answered),
		`INSERT INTO fetch_errors
		 SELECT 1 + i % 7, 'm' || lpad((i * 37 % 2000000)::VARCHAR, 9, '0'),
		        TIMESTAMPTZ '2025-01-01 02:00:00+00' + i * INTERVAL 1 SECOND, 5,
		        ['rate_limited', 'server_error', 'network'][1 + i % 3], NULL, 'bench error', NULL
		 FROM range(1000) t(i)`,
		// The fetch writer keeps status_latest beside status_checks; generate it the same way.
		`INSERT INTO status_latest SELECT * EXCLUDE (raw) FROM status_checks
		 QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY is_terminal(deliverystatus) DESC, checked_at DESC, run_id DESC) = 1`,
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
	}
	return nil
}

// TestBenchGenerator checks the generator's SQL on a small scale, so the benchmark does not
// discover a broken generator after minutes.
func TestBenchGenerator(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "small.duckdb"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := generateBenchDB(ctx, db.DB, 2000, 10000); err != nil {
		t.Fatal(err)
	}
	res := run(t, db.DB, "delivery", report.Filter{})
	if len(res.Rows) != 50 {
		t.Errorf("delivery on the generated data: %d campaigns, want 50", len(res.Rows))
	}
	var total int64
	for _, row := range res.Rows {
		total += row[1].(int64)
	}
	if total != 2000 {
		t.Errorf("delivery on the generated data: %d messages, want 2000", total)
	}
}

func BenchmarkReports(b *testing.B) {
	path := os.Getenv("BATSTAT_BENCH_DB")
	if path == "" {
		b.Skip("set BATSTAT_BENCH_DB to a database path (generated on first use) to run")
	}
	ctx := context.Background()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		start := time.Now()
		db, err := store.Open(ctx, path, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := generateBenchDB(ctx, db.DB, 2_000_000, 10_000_000); err != nil {
			db.Close()
			os.Remove(path)
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.Logf("generated %s in %s", path, time.Since(start).Round(time.Second))
	}
	db, err := store.Open(ctx, path, store.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()

	defs, err := report.Defs("")
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range defs {
		b.Run(d.Name, func(b *testing.B) {
			for b.Loop() {
				if _, err := report.Run(ctx, db.DB, d, report.Filter{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// One campaign of fifty, to see that a filter makes a report cheaper.
	b.Run("delivery-one-campaign", func(b *testing.B) {
		d, _ := report.Select(defs, "delivery")
		for b.Loop() {
			if _, err := report.Run(ctx, db.DB, d[0], report.Filter{Campaigns: []string{"campaign-07"}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("export-parquet", func(b *testing.B) {
		out := filepath.Join(b.TempDir(), "message_status.parquet")
		var rows int64
		start := time.Now()
		for b.Loop() {
			n, err := report.Export(ctx, db.DB, report.ExportOptions{Format: "parquet", Output: out})
			if err != nil {
				b.Fatal(err)
			}
			rows += n
		}
		b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
	})
}
