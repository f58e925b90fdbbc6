//go:build linux && cgo

package main

/*
#include <malloc.h>
*/
import "C"

// DuckDB takes its 256 KiB buffer blocks from malloc. glibc serves blocks that large with
// mmap only until the first one is freed; then it raises its threshold and serves them from
// the heap, where freed blocks stay resident. A fixed threshold keeps them on mmap, so
// memory DuckDB gives back leaves the process (BENCHMARKS.md has the peak resident
// memory of a large fetch with and without).
func init() {
	C.mallopt(C.M_MMAP_THRESHOLD, 128<<10)
}
