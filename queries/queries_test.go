package queries_test

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/batstat/batstat/queries"
)

// The report filter is the schema's macros (in_campaigns, in_period, message_time); a
// report that spells it out again would drift from the others when it changes.
func TestReportsUseTheFilterMacros(t *testing.T) {
	names, err := fs.Glob(queries.FS, "*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("no reports (%v)", err)
	}
	for _, name := range names {
		b, err := fs.ReadFile(queries.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, copied := range []string{"try_cast(sent_at", "$since::", "$until::", "len($campaigns"} {
			if strings.Contains(text, copied) {
				t.Errorf("%s spells out the report filter (%q); use the schema's macros", name, copied)
			}
		}
		if !strings.Contains(text, "in_period(") {
			t.Errorf("%s does not filter by in_period", name)
		}
	}
}
