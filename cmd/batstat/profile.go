package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/urfave/cli/v2"

	"github.com/batstat/batstat/internal/outfile"
)

// profileFlags let a user attach CPU and memory profiles of a slow or large run to a bug
// report, without a build of their own.
func profileFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the run to `FILE` (go tool pprof)"},
		&cli.StringFlag{Name: "memprofile", Usage: "write a memory profile (heap and allocations) to `FILE` at the end of the run"},
	}
}

// profileOptions are the profileFlags.
type profileOptions struct{ cpu, mem string }

// newProfileOptions reads the profileFlags, refusing a profile path that is the database
// (or its WAL or snapshot), which the profile would overwrite.
func newProfileOptions(c *cli.Context) (profileOptions, error) {
	o := profileOptions{cpu: c.String("cpuprofile"), mem: c.String("memprofile")}
	g := outfile.Database(c.String("db"))
	for flag, path := range map[string]string{"--cpuprofile": o.cpu, "--memprofile": o.mem} {
		if path == "" {
			continue
		}
		if err := g.Check(path); err != nil {
			return o, outputUsage(flag, err)
		}
	}
	if o.cpu != "" && o.cpu == o.mem {
		return o, usagef("--cpuprofile and --memprofile name the same file %s", o.cpu)
	}
	return o, nil
}

// start starts the CPU profile, if asked for, and returns the function that ends it and
// writes the memory profile. Both files are created before the run, so that a path that
// cannot be written fails at once instead of after an hour's fetch.
func (o profileOptions) start() (stop func() error, err error) {
	var cpu, mem *os.File
	closeAll := func() {
		for _, f := range []*os.File{cpu, mem} {
			if f != nil {
				f.Close()
			}
		}
	}
	if o.cpu != "" {
		if cpu, err = os.Create(o.cpu); err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	if o.mem != "" {
		if mem, err = os.Create(o.mem); err != nil {
			closeAll()
			return nil, fmt.Errorf("--memprofile: %w", err)
		}
	}
	if cpu != nil {
		if err := pprof.StartCPUProfile(cpu); err != nil {
			closeAll()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	return func() error {
		var errs []error
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				errs = append(errs, fmt.Errorf("--cpuprofile: %w", err))
			}
		}
		if mem != nil {
			runtime.GC() // the heap as it stands, not as of the last GC
			err := pprof.Lookup("allocs").WriteTo(mem, 0)
			if err = errors.Join(err, mem.Close()); err != nil {
				errs = append(errs, fmt.Errorf("--memprofile: %w", err))
			}
		}
		return errors.Join(errs...)
	}, nil
}
