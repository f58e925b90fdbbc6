package store_test

import (
	"context"
	"slices"
	"testing"

	"github.com/batstat/batstat/store"
)

// Pages of the todo table come in input order, each at most the limit, every row once,
// across gaps in seq wider than a page (a --refresh pending run over a file whose
// messages are mostly final asks a few of many), and end with an empty page.
func TestTodoPageCrossesGaps(t *testing.T) {
	ctx := context.Background()
	conn, err := openTemp(t).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Inserted out of order: a page must not rely on the table's order.
	if _, err := conn.ExecContext(ctx, `CREATE TEMP TABLE todo AS
		SELECT * FROM (VALUES (50000, 'd', false), (1, 'a', false), (2, 'b', true), (3, 'c', false),
		                      (50001, 'e', false), (50002, 'f', false), (1000000, 'g', true)) t(seq, message_id, answered)`); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 2, 3, 10_000} {
		var got []string
		var answered int
		last, pages := int64(-1), 0
		for {
			n, err := store.TodoPage(ctx, conn, last, limit, func(seq int64, id string, a bool) bool {
				last = seq
				got = append(got, id)
				if a {
					answered++
				}
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if n > limit {
				t.Errorf("limit %d: a page of %d rows", limit, n)
			}
			if pages++; pages > 10 {
				t.Fatalf("limit %d: still paging after %v", limit, got)
			}
		}
		if want := []string{"a", "b", "c", "d", "e", "f", "g"}; !slices.Equal(got, want) || answered != 2 {
			t.Errorf("limit %d: pages gave %v (%d answered), want %v (2 answered)", limit, got, answered, want)
		}
	}
	// A caller that stops takes no more than it was given.
	n, err := store.TodoPage(ctx, conn, -1, 10, func(int64, string, bool) bool { return false })
	if err != nil || n != 1 {
		t.Errorf("a page stopped at its first row = %d, %v; want 1", n, err)
	}
}
