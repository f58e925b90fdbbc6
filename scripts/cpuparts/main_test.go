package main

import (
	"maps"
	"strings"
	"testing"
)

// Samples as perf script -F comm,tid,ip,sym prints them: a header line, a frame a line
// (leaf first), a blank line.
const samples = `batstat 101
	    7f00 runtime.mallocgc
	    7f01 encoding/json.Unmarshal
	    7f02 github.com/batstat/batstat/smsbat.decodeStatus
	    7f03 runtime.goexit.abi0

batstat 102
	    8f00 duckdb::StringStats::Update
	    8f01 duckdb::ColumnDataCheckpointer::WriteToDisk

batstat 103
	    9f00 runtime.usleep.abi0
	    9f01 runtime.sysmon

batstat 104
	    af00 runtime.scanobject
	    af01 runtime.gcDrain
	    af02 runtime.gcBgMarkWorker

batstat 105
	    bf00 pthread_mutex_lock@@GLIBC_2.2.5

batstat 106
	    cf00 runtime.cgocall
	    cf01 github.com/duckdb/duckdb-go/v2.(*Appender).AppendRow
	    cf02 github.com/batstat/batstat/store.(*Batch).AddAnswer
	    cf03 github.com/batstat/batstat/ingest.(*writer).run
`

func TestCountSplitsSamplesByPart(t *testing.T) {
	counts, total, err := count(strings.NewReader(samples))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		// The Go runtime's frames under a worker's stack count as the worker's part.
		"http":                                   1,
		"duckdb":                                 1,
		"sysmon":                                 1,
		"gc":                                     1,
		"other: pthread_mutex_lock@@GLIBC_2.2.5": 1,
		// The writer calls into the driver and the runtime: its own frame decides.
		"writer staging": 1,
	}
	if total != 6 || !maps.Equal(counts, want) {
		t.Errorf("count = %v (%d samples), want %v (6)", counts, total, want)
	}
}
