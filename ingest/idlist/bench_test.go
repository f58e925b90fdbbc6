package idlist

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// writeRows writes a header and n rows of a realistic export: ID, campaign, phone, time.
func writeRows(w io.Writer, n int) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("messageId,campaign,phone,sent_at\n")
	for i := range n {
		fmt.Fprintf(bw, "msg-%09d-7f3a9c,spring-%d,+38050%07d,2025-03-01T10:%02d:00Z\n", i, i%5, i, i%60)
	}
	return bw.Flush()
}

// heapSampler records the largest HeapInuse seen. ReadMemStats stops the world, so it is
// sampled every so many rows rather than on each.
type heapSampler struct{ peak uint64 }

func (h *heapSampler) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.peak = max(h.peak, ms.HeapInuse)
}

// readCount reads every row and samples the heap every 10,000 rows.
func readCount(tb testing.TB, name string, stdin io.Reader, h *heapSampler) (rows int) {
	r, err := Open(name, stdin, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	for {
		row, _, err := r.Next()
		if err == io.EOF {
			return rows
		}
		if err != nil {
			tb.Fatal(err)
		}
		if row != nil {
			rows++
			if rows%10000 == 0 {
				h.sample()
			}
		}
	}
}

// BenchmarkRead1M reads a 1,000,000-row CSV file: ID, campaign, phone, sent time. Besides
// the time it reports the bytes and allocations per row and the peak heap, which must be
// the same as BenchmarkRead100K's: reading streams, so memory does not grow with the file.
// The allocations a row are encoding/csv's one string per record and the *Row handed to
// the caller. BENCHMARKS.md has the figures.
func BenchmarkRead1M(b *testing.B) { benchmarkRead(b, 1_000_000) }

// BenchmarkRead100K is BenchmarkRead1M on a tenth of the rows, to compare the peak heap.
func BenchmarkRead100K(b *testing.B) { benchmarkRead(b, 100_000) }

func benchmarkRead(b *testing.B, n int) {
	name := filepath.Join(b.TempDir(), "rows.csv")
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	if err := writeRows(f, n); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(name)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	runtime.GC()
	var h heapSampler
	h.sample()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	loops := 0
	for b.Loop() {
		if got := readCount(b, name, nil, &h); got != n {
			b.Fatalf("read %d rows, want %d", got, n)
		}
		loops++
	}
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(h.peak)/1e6, "peak-heap-MB")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(loops*n), "allocs/row")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(loops*n), "B/row")
}

// genReader produces n rows on the fly, so the test below needs neither disk nor memory.
type genReader struct {
	n, i int
	buf  strings.Builder
	rest string
}

func (g *genReader) Read(p []byte) (int, error) {
	for len(g.rest) == 0 {
		if g.i > g.n {
			return 0, io.EOF
		}
		g.buf.Reset()
		if g.i == 0 {
			g.buf.WriteString("messageId,campaign,phone,sent_at\n")
		}
		for ; g.i <= g.n && g.buf.Len() < 32<<10; g.i++ {
			if g.i > 0 {
				fmt.Fprintf(&g.buf, "msg-%09d-7f3a9c,spring,+38050%07d,2025-03-01T10:00:00Z\n", g.i, g.i)
			}
		}
		g.rest = g.buf.String()
	}
	n := copy(p, g.rest)
	g.rest = g.rest[n:]
	return n, nil
}

// TestStreamingMemory guards the streaming promise: reading 500,000 rows (32 MB) must not
// hold more than a few MB of heap.
func TestStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 500,000 rows")
	}
	const n = 500_000
	runtime.GC()
	var h heapSampler
	h.sample()
	base := h.peak
	if got := readCount(t, "-", &genReader{n: n}, &h); got != n {
		t.Fatalf("read %d rows, want %d", got, n)
	}
	if grew := (h.peak - min(base, h.peak)) >> 20; grew > 16 {
		t.Errorf("heap in use grew by %d MiB while reading %d rows, want at most 16", grew, n)
	}
}
