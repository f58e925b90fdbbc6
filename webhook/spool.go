package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// The spool is a directory of NDJSON files, one per UTC hour of receipt,
// events-YYYYMMDDTHH.ndjson, each line one event:
//
//	{"received_at":"2025-01-23T10:30:00.123456789Z","remote_addr":"203.0.113.7:51234","event":{...}}
//
// Files are only ever appended to, by one receiver at a time (a lock file in the
// directory keeps out a second one), in whole lines: a line is there once its '\n' is.

const (
	filePrefix = "events-"
	fileSuffix = ".ndjson"
	hourLayout = "20060102T15"
	lockName   = ".lock"
)

// FileName returns the name of the spool file that holds events received at t.
func FileName(t time.Time) string {
	return filePrefix + t.UTC().Format(hourLayout) + fileSuffix
}

// maxBatchBytes bounds what the appender collects for one write and fsync; requests
// queued beyond it wait for the next round.
const maxBatchBytes = 8 << 20

// ErrSpoolClosed is returned by Append after Close.
var ErrSpoolClosed = errors.New("spool closed")

// Spool appends events to a spool directory with group commit: one goroutine takes every
// append that has arrived, writes them with one write per file, fsyncs once, and then
// releases all their callers. Append returns nil only once its lines are on disk.
// A Spool is safe for concurrent use.
type Spool struct {
	dir  string
	log  *slog.Logger
	lock *os.File

	reqs    chan *appendReq
	closing chan struct{}
	done    chan struct{}
	closeMu sync.RWMutex // held for reading while sending to reqs, for writing by Close
	closed  bool

	// Used by the appender goroutine only.
	files map[string]*spoolFile
	buf   bytes.Buffer

	// writeFile and sync write to a file and make it durable; a test may replace them to
	// watch them or make them fail.
	writeFile func(*os.File, []byte) (int, error)
	sync      func(*os.File) error

	stats struct{ events, appends, syncs, bytes, failed atomic.Int64 }
}

// spoolFile is an open spool file and its length, which only the appender changes.
type spoolFile struct {
	f    *os.File
	size int64
	hour string // its name's YYYYMMDDTHH, which sorts by time
}

type appendReq struct {
	name  string // spool file name
	lines []byte // whole lines, each ending in '\n'
	n     int    // events in lines
	done  chan error
}

// Stats are a Spool's counters since it was opened.
type Stats struct {
	Events  int64 // events stored
	Appends int64 // Append calls that stored their events
	Syncs   int64 // fsyncs of spool files: with group commit, fewer than Appends
	Bytes   int64 // bytes appended
	Failed  int64 // Append calls that failed
}

// OpenSpool opens (creating it if need be) the spool directory dir for appending. It
// takes the directory's lock, so that a second receiver on the same directory fails at
// once instead of interleaving its writes. log receives warnings (a torn line cut off);
// nil discards them.
func OpenSpool(dir string, log *slog.Logger) (*Spool, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Spool{
		dir: dir, log: log, lock: lock,
		reqs:      make(chan *appendReq, 256),
		closing:   make(chan struct{}),
		done:      make(chan struct{}),
		files:     make(map[string]*spoolFile),
		writeFile: (*os.File).Write,
		sync:      (*os.File).Sync,
	}
	go s.run()
	return s, nil
}

// Dir returns the spool directory.
func (s *Spool) Dir() string { return s.dir }

// Stats returns the counters so far.
func (s *Spool) Stats() Stats {
	return Stats{
		Events: s.stats.events.Load(), Appends: s.stats.appends.Load(), Syncs: s.stats.syncs.Load(),
		Bytes: s.stats.bytes.Load(), Failed: s.stats.failed.Load(),
	}
}

// Append appends events, received at receivedAt from remoteAddr, to the file of
// receivedAt's hour, and returns once they are written and fsynced together with whatever
// other appends arrived meanwhile. On error none of them may be relied on, and the caller
// must not claim they were stored; some may be in the spool all the same (whole lines
// written before an fsync failed), as duplicates of the provider's retry. ctx bounds only the wait for a place in the queue: once queued, Append waits
// for the outcome, so that its answer is the truth.
func (s *Spool) Append(ctx context.Context, receivedAt time.Time, remoteAddr string, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	req := &appendReq{name: FileName(receivedAt), lines: AppendLines(nil, receivedAt, remoteAddr, events), n: len(events), done: make(chan error, 1)}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrSpoolClosed
	}
	select {
	case s.reqs <- req:
		s.closeMu.RUnlock()
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return ctx.Err()
	}
	return <-req.done
}

// AppendLines appends the spool lines of events received at receivedAt from remoteAddr
// to b.
func AppendLines(b []byte, receivedAt time.Time, remoteAddr string, events []Event) []byte {
	var ts [64]byte
	stamp := receivedAt.UTC().AppendFormat(ts[:0], time.RFC3339Nano)
	for _, ev := range events {
		b = append(b, `{"received_at":"`...)
		b = append(b, stamp...)
		b = append(b, `","remote_addr":`...)
		b = appendJSONString(b, remoteAddr)
		b = append(b, `,"event":`...)
		b = append(b, ev.Raw...)
		b = append(b, "}\n"...)
	}
	return b
}

// appendJSONString appends s as a JSON string. A remote address is plain ASCII, which
// goes as it is; anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Close waits for the appends already queued, stores them, closes the files and releases
// the directory. Appends after Close fail with ErrSpoolClosed.
func (s *Spool) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		<-s.done
		return nil
	}
	s.closed = true
	close(s.closing)
	s.closeMu.Unlock()
	<-s.done
	var errs []error
	for _, sf := range s.files {
		if err := sf.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", sf.f.Name(), err))
		}
	}
	if err := s.lock.Close(); err != nil { // releases the lock
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// run is the appender: it collects what has been queued, writes and fsyncs it, releases
// the callers, and goes round again. While it fsyncs, new appends queue up for the next
// round: that is the group commit.
func (s *Spool) run() {
	defer close(s.done)
	var batch []*appendReq
	for {
		batch = batch[:0]
		select {
		case req := <-s.reqs:
			batch = append(batch, req)
		case <-s.closing:
			// Closed: no sender is left (Close holds closeMu), so draining once is enough.
			for {
				select {
				case req := <-s.reqs:
					s.commit(append(batch[:0], req))
				default:
					return
				}
			}
		}
		size := len(batch[0].lines)
	collect:
		for size < maxBatchBytes {
			select {
			case req := <-s.reqs:
				batch = append(batch, req)
				size += len(req.lines)
			default:
				break collect
			}
		}
		s.commit(batch)
	}
}

// commit writes a batch, file by file, fsyncs each file once, and answers every request.
func (s *Spool) commit(batch []*appendReq) {
	// Most batches go to one file; a batch across an hour's end goes to two.
	names := make([]string, 0, 2)
	for _, req := range batch {
		if !containsString(names, req.name) {
			names = append(names, req.name)
		}
	}
	for _, name := range names {
		s.buf.Reset()
		n := 0
		for _, req := range batch {
			if req.name == name {
				s.buf.Write(req.lines)
				n += req.n
			}
		}
		err := s.write(name, s.buf.Bytes())
		for _, req := range batch {
			if req.name != name {
				continue
			}
			if err != nil {
				s.stats.failed.Add(1)
			} else {
				s.stats.appends.Add(1)
				s.stats.events.Add(int64(req.n))
			}
			req.done <- err
		}
		if err != nil {
			s.log.Error("spool write failed: events not stored", "file", filepath.Join(s.dir, name), "events", n, "err", err)
		}
	}
	if s.buf.Cap() > 4*maxBatchBytes {
		s.buf = bytes.Buffer{}
	}
	s.closeOld(names)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// write appends data to the spool file name and fsyncs it. After a failure the file is
// dropped, to be opened afresh by the next write, which cuts off a partial line left by
// a write cut short (see file): the next line must not be glued to it. Whole lines stay,
// even when the fsync failed: a reader may have read them already (they are never
// acknowledged, and at worst arrive again as the provider retries).
func (s *Spool) write(name string, data []byte) error {
	sf, err := s.file(name)
	if err != nil {
		return err
	}
	n, err := s.writeFile(sf.f, data)
	if err == nil {
		s.stats.syncs.Add(1)
		err = s.sync(sf.f)
	}
	s.stats.bytes.Add(int64(n))
	if err != nil {
		sf.f.Close()
		delete(s.files, name)
		return fmt.Errorf("append to %s: %w", sf.f.Name(), err)
	}
	sf.size += int64(n)
	return nil
}

// file returns the open spool file name, opening or creating it. A file that exists and
// does not end in '\n' ends in a line cut short by a crash or a failed write (never
// acknowledged): it is cut off, or the next line would be glued to it.
func (s *Spool) file(name string) (*spoolFile, error) {
	if sf := s.files[name]; sf != nil {
		return sf, nil
	}
	path := filepath.Join(s.dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o640)
	created := err == nil
	if errors.Is(err, os.ErrExist) {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open spool file: %w", err)
	}
	sf := &spoolFile{f: f, hour: name[len(filePrefix) : len(name)-len(fileSuffix)]}
	if created {
		// The new name must be as durable as the lines written under it.
		if err := syncDir(s.dir); err != nil {
			f.Close()
			return nil, err
		}
	} else if sf.size, err = cutTornLine(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool file %s: %w", path, err)
	} else if fi, _ := f.Stat(); fi != nil && fi.Size() != sf.size {
		s.log.Warn("spool: cut off a line left incomplete by a crash during a write (it was never acknowledged)",
			"file", path, "bytes", fi.Size()-sf.size)
		if err := f.Truncate(sf.size); err != nil {
			f.Close()
			return nil, fmt.Errorf("spool file %s: cut torn line: %w", path, err)
		}
	}
	s.files[name] = sf
	return sf, nil
}

// cutTornLine returns the length of f up to and including its last '\n' (0 when it has
// none).
func cutTornLine(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := fi.Size()
	var buf [4096]byte
	for end > 0 {
		n := int64(len(buf))
		if n > end {
			n = end
		}
		if _, err := f.ReadAt(buf[:n], end-n); err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return end - n + int64(i) + 1, nil
		}
		end -= n
	}
	return 0, nil
}

// closeOld closes the files of hours before the newest one just written: receipts only
// move forward, and a late one reopens its file.
func (s *Spool) closeOld(written []string) {
	newest := ""
	for _, name := range written {
		if sf := s.files[name]; sf != nil && sf.hour > newest {
			newest = sf.hour
		}
	}
	for name, sf := range s.files {
		if sf.hour < newest {
			sf.f.Close()
			delete(s.files, name)
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool %s: sync directory: %w", dir, err)
	}
	return nil
}
