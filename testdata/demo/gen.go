//go:build ignore

// gen writes the sample campaigns that `batstat demo` fetches from the fake API
// (internal/fakeapi) with its DefaultOptions. Run it from the module root:
//
//	go run testdata/demo/gen.go
//
// It is deterministic (a fixed PCG seed), so running it again rewrites the same files; the
// demo's numbers and any golden files built on them change only if this program or the
// fake's model does. The four files total 3,000 messages, each a header row then one row
// per message, comma-separated UTF-8, and differ on purpose in the name of the ID column
// (message_id, id, messageId, MessageID: all auto-detected by `batstat fetch`) and in
// whether a campaign column is present. IDs are 16 lower-case hex characters, unique
// across all files, like the opaque IDs the send call returns.
package main

import (
	"encoding/csv"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

type campaign struct {
	file   string
	header []string
	rows   int
	row    func(id string, i int) []string
}

func main() {
	rng := rand.New(rand.NewPCG(2025, 3))
	seen := map[string]bool{}
	newID := func() string {
		for {
			id := fmt.Sprintf("%016x", rng.Uint64())
			if !seen[id] {
				seen[id] = true
				return id
			}
		}
	}
	// Ukrainian mobile numbers: operator code, then seven digits.
	operators := []string{"50", "63", "66", "67", "68", "73", "93", "95", "96", "97", "98", "99"}
	phone := func() string {
		return fmt.Sprintf("+380%s%07d", operators[rng.IntN(len(operators))], rng.IntN(10_000_000))
	}
	at := func(start time.Time, spread time.Duration) string {
		return start.Add(time.Duration(rng.Int64N(int64(spread)))).Truncate(time.Second).Format(time.RFC3339)
	}

	campaigns := []campaign{
		{
			// A marketing blast sent within half an hour.
			file: "spring-sale.csv", header: []string{"message_id", "recipient", "sent_at"}, rows: 1200,
			row: func(id string, _ int) []string {
				return []string{id, phone(), at(time.Date(2025, 3, 20, 9, 0, 0, 0, time.UTC), 30*time.Minute)}
			},
		},
		{
			// Two-factor codes trickling in over a day.
			file: "otp-codes.csv", header: []string{"id", "phone", "created_at"}, rows: 700,
			row: func(id string, _ int) []string {
				return []string{id, phone(), at(time.Date(2025, 3, 21, 0, 0, 0, 0, time.UTC), 24*time.Hour)}
			},
		},
		{
			// A campaign named by its own column rather than by the file name.
			file: "viber-promo.csv", header: []string{"messageId", "campaign", "phone"}, rows: 800,
			row: func(id string, _ int) []string { return []string{id, "viber-promo", phone()} },
		},
		{
			// Transactional messages carrying the customer's own references.
			file: "order-updates.csv", header: []string{"MessageID", "order_id", "customer_id"}, rows: 300,
			row: func(id string, i int) []string {
				return []string{id, fmt.Sprintf("ORD-%06d", 240100+i), fmt.Sprintf("C%05d", rng.IntN(40000))}
			},
		},
	}

	dir := filepath.Join("testdata", "demo")
	for _, c := range campaigns {
		if err := write(filepath.Join(dir, c.file), c, newID); err != nil {
			log.Fatal(err)
		}
	}
}

func write(path string, c campaign, newID func() string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write(c.header)
	for i := range c.rows {
		_ = w.Write(c.row(newID(), i))
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	log.Printf("wrote %s: %d messages", path, c.rows)
	return nil
}
