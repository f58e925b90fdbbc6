package webhook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MaxLineBytes bounds a spool line the reader takes; a longer line is skipped and
// reported. The receiver writes none near it (MaxEventBytes bounds an event).
const MaxLineBytes = 1 << 20

// Position is where reading a spool file resumes: the byte offset of the first line not
// read yet, and the number of lines before it, so that line numbers stay right. The zero
// Position is the start of the file. A loader keeps the Next of the last Record it took
// from each file, and passes it back to resume there.
type Position struct {
	Offset int64
	Line   int64
}

// Record is one line of a spool file: an event and when and from where it came.
type Record struct {
	File   string // the path as ReadSpool was given it, or found it in a directory given
	Line   int64  // 1-based physical line
	Offset int64  // byte offset of the line's first byte
	// Next is where reading File resumes after this line: past it, or, for a torn last
	// line, at its start, so that the line is read again once its write is complete.
	Next       Position
	ReceivedAt time.Time
	RemoteAddr string
	Event      Event
}

// LineError is a line that was skipped. Reading goes on after it.
type LineError struct {
	File   string
	Line   int64
	Offset int64
	// Torn is set for the last line of a file that does not end in '\n': a write still in
	// progress, or one cut short by a crash (kill -9, a full disk). It was never
	// acknowledged, so the provider sends it again. The receiver cuts it off when it next
	// opens the file; a reader resumes at its start (Record.Next).
	Torn bool
	Err  error
}

func (e *LineError) Error() string {
	if e.Torn {
		return fmt.Sprintf("%s:%d: incomplete last line (%v): skipped", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v: line skipped", e.File, e.Line, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// SpoolFiles expands paths into the spool files to read, in order: a directory stands for
// its events-YYYYMMDDTHH.ndjson files, oldest hour first; a file is taken as it is. A
// path given twice is read once. A path that does not exist is an error.
func SpoolFiles(paths ...string) ([]string, error) {
	var files []string
	seen := make(map[string]bool)
	add := func(p string) {
		if c := filepath.Clean(p); !seen[c] {
			seen[c] = true
			files = append(files, p)
		}
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		if !fi.IsDir() {
			add(p)
			continue
		}
		entries, err := os.ReadDir(p) // sorted by name, so by hour
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		for _, e := range entries {
			if e.Type().IsRegular() && IsSpoolFileName(e.Name()) {
				add(filepath.Join(p, e.Name()))
			}
		}
	}
	return files, nil
}

// IsSpoolFileName reports whether name is a spool file's name, events-YYYYMMDDTHH.ndjson.
func IsSpoolFileName(name string) bool {
	hour, ok := strings.CutPrefix(name, filePrefix)
	if !ok {
		return false
	}
	if hour, ok = strings.CutSuffix(hour, fileSuffix); !ok || len(hour) != len(hourLayout) {
		return false
	}
	_, err := time.Parse(hourLayout, hour)
	return err == nil
}

// ReadSpool reads the spool files that SpoolFiles(paths...) finds, each from its
// position in from (keyed by the path as Record.File gives it; absent means the start),
// and yields their lines in order.
//
// The usual loop:
//
//	for rec, err := range webhook.ReadSpool(ctx, paths, from) {
//		var le *webhook.LineError
//		switch {
//		case errors.As(err, &le):
//			// a skipped line: report it (le.Torn: the incomplete last line of a file)
//		case err != nil:
//			// rec.File cannot be read (further): report, or stop with break
//		default:
//			// load rec.Event
//		}
//		from[rec.File] = rec.Next
//	}
//
// A skipped line never ends the reading. Any other error concerns a whole file, or the
// context: after one, that file is not read further and the sequence goes on with the
// next file (the context's error ends it); rec.Next is then where that file stands.
func ReadSpool(ctx context.Context, paths []string, from map[string]Position) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		files, err := SpoolFiles(paths...)
		if err != nil {
			yield(Record{}, err)
			return
		}
		for _, f := range files {
			for rec, err := range ReadFile(ctx, f, from[f]) {
				if !yield(rec, err) {
					return
				}
			}
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// ReadFile yields the lines of one spool file from position from, as ReadSpool does.
func ReadFile(ctx context.Context, path string, from Position) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		fail := func(err error) { yield(Record{File: path, Line: from.Line, Offset: from.Offset, Next: from}, err) }
		if err := ctx.Err(); err != nil {
			fail(err)
			return
		}
		f, err := os.Open(path)
		if err != nil {
			fail(fmt.Errorf("spool: %w", err))
			return
		}
		defer f.Close()
		if err := checkPosition(f, path, from); err != nil {
			fail(err)
			return
		}
		br := bufio.NewReaderSize(io.NewSectionReader(f, from.Offset, 1<<62), 64<<10)
		pos := from
		var line []byte
		for n := 0; ; n++ {
			if n%1024 == 1023 {
				if err := ctx.Err(); err != nil {
					fail(err)
					return
				}
			}
			var tooLong bool
			var size int64
			line, size, tooLong, err = readLine(br, line[:0])
			if size == 0 && err == io.EOF {
				return
			}
			rec := Record{File: path, Line: pos.Line + 1, Offset: pos.Offset}
			if err == io.EOF { // the last line has no '\n'
				rec.Next = pos
				if !yield(rec, &LineError{File: path, Line: rec.Line, Offset: rec.Offset, Torn: true,
					Err: fmt.Errorf("%d bytes without a line end", size)}) {
					return
				}
				return
			}
			if err != nil {
				fail(fmt.Errorf("spool: read %s: %w", path, err))
				return
			}
			pos = Position{Offset: pos.Offset + size, Line: pos.Line + 1}
			rec.Next = pos
			if tooLong {
				err = fmt.Errorf("line of %d bytes, over %d", size, MaxLineBytes)
			} else {
				err = parseLine(line[:len(line)-1], &rec)
			}
			if err != nil {
				err = &LineError{File: path, Line: rec.Line, Offset: rec.Offset, Err: err}
			}
			if !yield(rec, err) {
				return
			}
		}
	}
}

// ErrNotResumable is a spool file that is not the one a load's recorded position was taken
// from: it was replaced or cut since.
var ErrNotResumable = errors.New("the file was replaced or cut")

// checkPosition refuses a position past the end of the file or not at a line's start:
// the file is not the one the position was taken from.
func checkPosition(f *os.File, path string, from Position) error {
	if from.Offset < 0 || from.Line < 0 {
		return fmt.Errorf("spool %s: bad position %+v", path, from)
	}
	if from.Offset == 0 {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if from.Offset > fi.Size() {
		return fmt.Errorf("spool %s: resume offset %d is past its end (%d bytes): %w", path, from.Offset, fi.Size(), ErrNotResumable)
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], from.Offset-1); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if b[0] != '\n' {
		return fmt.Errorf("spool %s: resume offset %d is not at the start of a line: %w", path, from.Offset, ErrNotResumable)
	}
	return nil
}

// readLine appends the next line, its '\n' included, to buf, and returns it with its
// length in the file. A line over MaxLineBytes is read through but not kept (tooLong).
// At the end of the input it returns io.EOF, with the bytes of a last line that has no
// '\n' counted in size.
func readLine(br *bufio.Reader, buf []byte) (line []byte, size int64, tooLong bool, err error) {
	for {
		frag, err := br.ReadSlice('\n')
		size += int64(len(frag))
		if !tooLong {
			if len(buf)+len(frag) > MaxLineBytes+1 {
				tooLong, buf = true, buf[:0]
			} else {
				buf = append(buf, frag...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return buf, size, tooLong, err
	}
}

// parseLine decodes a spool line (without its '\n') into rec.
func parseLine(line []byte, rec *Record) error {
	if ts, addr, event, ok := splitLine(line); ok && fillRecord(ts, addr, event, rec) == nil {
		return nil
	}
	var l struct {
		ReceivedAt *string          `json:"received_at"`
		RemoteAddr *string          `json:"remote_addr"`
		Event      *json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(line, &l); err != nil {
		return fmt.Errorf("not a spool line: %s", jsonReason(err))
	}
	if l.ReceivedAt == nil || l.Event == nil {
		return errors.New("not a spool line: no received_at or no event")
	}
	var addr []byte
	if l.RemoteAddr != nil {
		addr = []byte(*l.RemoteAddr)
	}
	return fillRecord([]byte(*l.ReceivedAt), addr, *l.Event, rec)
}

func fillRecord(ts, addr, event []byte, rec *Record) error {
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return fmt.Errorf("received_at %q is not an RFC 3339 time", ts)
	}
	ev, err := parseEvent(bytes.Clone(event), false)
	if err != nil {
		return fmt.Errorf("event: %w", err)
	}
	rec.ReceivedAt, rec.RemoteAddr, rec.Event = t, string(addr), ev
	return nil
}

// splitLine takes a line apart when it is exactly as the receiver writes it, without
// escapes in its strings; ok is false for anything else, which parseLine then decodes as
// JSON.
func splitLine(line []byte) (ts, addr, event []byte, ok bool) {
	rest, ok := bytes.CutPrefix(line, []byte(`{"received_at":"`))
	if !ok {
		return nil, nil, nil, false
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 {
		return nil, nil, nil, false
	}
	ts, rest = rest[:i], rest[i:]
	if rest, ok = bytes.CutPrefix(rest, []byte(`","remote_addr":"`)); !ok {
		return nil, nil, nil, false
	}
	if i = bytes.IndexByte(rest, '"'); i < 0 {
		return nil, nil, nil, false
	}
	addr, rest = rest[:i], rest[i:]
	if bytes.IndexByte(addr, '\\') >= 0 {
		return nil, nil, nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`","event":`)); !ok {
		return nil, nil, nil, false
	}
	if event, ok = bytes.CutSuffix(rest, []byte("}")); !ok || len(event) == 0 || event[0] != '{' {
		return nil, nil, nil, false
	}
	return ts, addr, event, true
}
