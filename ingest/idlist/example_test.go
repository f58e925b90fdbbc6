package idlist_test

import (
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/batstat/batstat/ingest/idlist"
)

func ExampleOpen() {
	input := "Message ID;Campaign;Phone\n" +
		"abc123;spring;+380501112233\n" +
		";spring;+380501112234\n" +
		"def456;;+380501112235\n"
	r, err := idlist.Open("-", strings.NewReader(input), idlist.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	fmt.Printf("columns %q\n", r.Columns())
	for {
		row, rej, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		if rej != nil {
			fmt.Printf("line %d rejected: %s: %q\n", rej.Line, rej.Reason, rej.Raw)
			continue
		}
		fmt.Printf("line %d: %s (campaign %s, to %s)\n", row.Line, row.ID, row.Campaign, row.Recipient)
	}
	// Output:
	// columns ["Message ID" "Campaign" "Phone"]
	// line 2: abc123 (campaign spring, to +380501112233)
	// line 3 rejected: empty message ID: ";spring;+380501112234"
	// line 4: def456 (campaign stdin, to +380501112235)
}
