// Command cpuparts splits the CPU samples of a batstat process into the parts of a fetch
// (HTTP, DuckDB's threads, the writer, GC, ...), for BENCHMARKS.md's "Where a fetch's CPU
// goes". pprof cannot do this: it sees neither DuckDB's own threads nor the kernel, which
// together take half of a fetch's CPU. It reads the text of `perf script` on its stdin:
//
//	perf record -F 999 -g -o perf.data batstat fetch --rate 0 ... ids.csv
//	perf script -i perf.data -F comm,tid,ip,sym | go run ./scripts/cpuparts -n 200000
//
// A sample belongs to the first part, in the order of parts below, that one of its stack's
// frames names. DuckDB is built without frame pointers, so a sample taken inside it often
// has a stack of one or two frames: those land in "duckdb" when a frame names DuckDB and
// in "other" under their leaf frame when none does.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"strings"
)

// part is a share of the samples: those whose stack has a frame containing one of marks.
type part struct {
	name  string
	marks []string
}

// parts are tried in order: a worker's stack also passes through the Go runtime, and a
// commit's through DuckDB, so the narrower parts come first.
var parts = []part{
	{"sysmon", []string{"runtime.sysmon"}},
	{"gc", []string{"gcBgMarkWorker", "gcDrain", "bgsweep", "bgscavenge"}},
	{"load", []string{"ingest.load", "ingest.readAhead", "ingest/idlist.", "store.(*Load)"}},
	{"writer staging", []string{"ingest.(*writer).run", "store.(*Batch).Add"}},
	{"writer commit", []string{"store.(*Batch).Commit", "ingest.(*writer).commit"}},
	{"todo pages", []string{"store.TodoPage", "ingest.streamTodo"}},
	{"http", []string{"net/http.", "smsbat.", "ingest.(*fetcher)"}},
	{"duckdb", []string{"duckdb::", "duckdb_", "libfsst::"}},
	{"go runtime", []string{"runtime."}},
}

func main() {
	n := flag.Int("n", 0, "statuses the run fetched: also print µs of CPU per status")
	hz := flag.Int("hz", 999, "the sampling frequency given to perf record -F")
	flag.Parse()
	counts, total, err := count(os.Stdin)
	if err != nil {
		log.Fatal(err)
	}
	if total == 0 {
		log.Fatal("cpuparts: no samples on stdin (perf script -F comm,tid,ip,sym)")
	}
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int { return counts[b] - counts[a] })
	for _, name := range names {
		c := counts[name]
		line := fmt.Sprintf("%-40s %7d %5.1f %%", name, c, 100*float64(c)/float64(total))
		if *n > 0 {
			line += fmt.Sprintf(" %6.1f µs/status", float64(c)/float64(*hz)/float64(*n)*1e6)
		}
		fmt.Println(line)
	}
	fmt.Printf("%-40s %7d\n", "samples", total)
}

// count reads perf script's samples (a header line, then a frame a line, then a blank
// line) and counts them by part.
func count(r io.Reader) (map[string]int, int, error) {
	counts := map[string]int{}
	total := 0
	var frames []string
	flush := func() {
		if len(frames) > 1 { // the header and at least one frame
			counts[classify(frames[1:])]++
			total++
		}
		frames = frames[:0]
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			flush()
			continue
		}
		frames = append(frames, line)
	}
	flush()
	return counts, total, sc.Err()
}

// classify names the part of a sample whose stack is frames, leaf first; each frame is
// "ADDRESS SYMBOL".
func classify(frames []string) string {
	for _, p := range parts {
		for _, f := range frames {
			for _, m := range p.marks {
				if strings.Contains(f, m) {
					return p.name
				}
			}
		}
	}
	_, sym, _ := strings.Cut(frames[0], " ")
	if len(sym) > 32 {
		sym = sym[:32]
	}
	return "other: " + sym
}
