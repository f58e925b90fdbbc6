//go:build linux && cgo

package main

/*
#include <malloc.h>
#include <stdlib.h>
#include <stddef.h>
#include <sys/types.h>

// DuckDB's own jemalloc, linked in with DuckDB under a prefix of its own.
extern int duckdb_je_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);

static int je_set_ssize(const char *name, ssize_t v) {
	return duckdb_je_mallctl(name, NULL, NULL, &v, sizeof v);
}

static unsigned je_narenas(void) {
	unsigned n = 0;
	size_t len = sizeof n;
	if (duckdb_je_mallctl("arenas.narenas", &n, &len, NULL, 0) != 0) {
		return 0;
	}
	return n;
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// DuckDB takes its 256 KiB buffer blocks from malloc. glibc serves blocks that large with
// mmap only until the first one is freed; then it raises its threshold and serves them from
// the heap, where freed blocks stay resident. A fixed threshold keeps them on mmap, so
// memory DuckDB gives back leaves the process (BENCHMARKS.md has the peak resident
// memory of a large fetch with and without).
//
// Most of DuckDB's memory comes from the jemalloc it bundles, which keeps the pages it frees
// resident for a second (dirty, then muzzy decay) before it gives them back. A load's
// queries and the fetch's commits and checkpoints each free tens of MB that the next
// allocates afresh, so the process held 80–110 MB more than DuckDB's buffer manager did
// (BENCHMARKS.md, table 4). Decay 0 returns freed pages at once. It is set here, before
// DuckDB opens anything, for the arenas that exist and
// as the default of those made later (jemalloc reads DUCKDB_JE_MALLOC_CONF when the
// library loads, before any Go code runs, so this overrides that variable's decay too).
func init() {
	C.mallopt(C.M_MMAP_THRESHOLD, 128<<10)
	names := []string{"arenas.dirty_decay_ms", "arenas.muzzy_decay_ms"}
	for i := range uint(C.je_narenas()) {
		names = append(names, fmt.Sprintf("arena.%d.dirty_decay_ms", i), fmt.Sprintf("arena.%d.muzzy_decay_ms", i))
	}
	for _, name := range names {
		cname := C.CString(name)
		// An arena not made yet refuses (EFAULT): it takes the default when it is made. A
		// refusal costs memory only, never a result.
		C.je_set_ssize(cname, 0)
		C.free(unsafe.Pointer(cname))
	}
}
