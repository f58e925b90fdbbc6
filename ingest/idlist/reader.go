package idlist

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// bufferSize is the read buffer, and so the most Open looks at to detect the format.
const bufferSize = 64 << 10

// A Reader streams the rows of one input file. Memory stays bounded by the longest record,
// whatever the file's size: records are read one at a time into a reused slice and nothing
// is kept between calls to Next. A Reader is not safe for concurrent use.
type Reader struct {
	name     string // as given; "-" for stdin
	display  string // for messages: the name, or "stdin"
	opts     Options
	campaign string // the campaign of rows without one of their own

	closers []io.Closer // closed last first: the gzip reader, then the file
	feed    *lineFeeder
	csv     *csv.Reader

	header []string        // trimmed; nil for a bare list
	cols   [numColumns]int // index of each known column in a record, -1 when absent
	fields int             // the number of fields a record must have
	ahead  []result        // rows Open read to check the file, returned first by Next
	err    error           // sticky: io.EOF or the fatal error that ended the file
}

type result struct {
	row *Row
	rej *Rejected
}

// Open opens one input and checks that it is a usable ID list: it reads the start of the
// file to detect compression, the delimiter and the columns, and the first data row.
//
// name "-" reads stdin, which is then named "stdin" in messages and its default campaign
// is "stdin"; Close does not close it. A name ending in ".gz", or any input starting with
// the gzip magic bytes, is gunzipped (concatenated gzip members are read as one stream).
//
// The error is one line naming the file when it is missing or unreadable, empty (nothing
// but blank lines), binary (or UTF-16, or a ZIP/Excel file), has only a header, or has no
// usable ID column: a multi-column file without a header naming an ID column, or a header
// without the column opts.IDColumn names (the message lists the columns it has). With
// opts.IDColumn set a header row is required, even in a one-column file: a first line that
// does not name the column would otherwise be loaded as an ID.
//
// Open reads ahead up to 64 KiB to detect the format (for stdin it waits for that much
// or the end of the input). A failed Open closes what it opened; a successful one must be
// followed by Close.
func Open(name string, stdin io.Reader, opts Options) (*Reader, error) {
	if name == "-" {
		if stdin == nil {
			return nil, errors.New("stdin: no standard input")
		}
		return newReader(name, stdin, nil, opts)
	}
	f, err := os.Open(name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is already in our message
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r, err := NewReader(name, f, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// NewReader is Open for an input the caller has opened, such as a file of an fs.FS: name
// is used as Open uses it (messages, Row.File, ".gz", the default campaign). The Reader
// owns src from then on: Close closes it if it is an io.Closer. When NewReader fails,
// src is left open for the caller to close.
func NewReader(name string, src io.Reader, opts Options) (*Reader, error) {
	if st, ok := src.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil && fi.IsDir() {
			return nil, fmt.Errorf("%s: is a directory", name)
		}
	}
	c, _ := src.(io.Closer)
	return newReader(name, src, c, opts)
}

// newReader makes the Reader and reads the start of src; owned, if not nil, is closed by
// Close but not when newReader fails.
func newReader(name string, src io.Reader, owned io.Closer, opts Options) (*Reader, error) {
	r := &Reader{name: name, display: name, opts: opts, campaign: defaultCampaign(name)}
	if name == "-" {
		r.display, r.campaign = "stdin", "stdin"
	}
	if opts.Campaign != "" {
		r.campaign = opts.Campaign
	}
	if err := r.open(src); err != nil {
		r.Close()
		return nil, err
	}
	if owned != nil {
		r.closers = append([]io.Closer{owned}, r.closers...) // closed last
	}
	return r, nil
}

func (r *Reader) open(src io.Reader) error {
	if d := r.opts.Delimiter; d != 0 && !validDelim(d) {
		return fmt.Errorf("%s: invalid delimiter %q", r.display, d)
	}
	if r.opts.IDColumn != "" && normalize(r.opts.IDColumn) == "" {
		return fmt.Errorf("%s: invalid ID column name %q", r.display, r.opts.IDColumn)
	}

	br := bufio.NewReaderSize(src, bufferSize)
	magic, err := br.Peek(2)
	if len(magic) == 0 {
		if err == io.EOF {
			return fmt.Errorf("%s: empty file", r.display)
		}
		return fmt.Errorf("%s: %w", r.display, err)
	}
	var wrap func(error) error
	if strings.HasSuffix(strings.ToLower(r.name), ".gz") || bytes.Equal(magic, []byte{0x1F, 0x8B}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: %w", r.display, gzipError(err))
		}
		r.closers = append(r.closers, zr)
		br = bufio.NewReaderSize(zr, bufferSize)
		wrap = gzipError
	}

	sample, err := br.Peek(bufferSize)
	whole := err == io.EOF // the sample is the whole input
	if err != nil && err != io.EOF {
		if wrap != nil {
			err = wrap(err)
		}
		return fmt.Errorf("%s line %d: %w", r.display, 1+bytes.Count(sample, []byte("\n")), err)
	}
	if err := checkText(sample); err != nil {
		return fmt.Errorf("%s: %w", r.display, err)
	}
	if bytes.HasPrefix(sample, []byte("\uFEFF")) {
		// Dropped here rather than trimmed from the first field: before a quoted first
		// field a BOM would make it a bare-quote error.
		br.Discard(len("\uFEFF"))
		sample = sample[len("\uFEFF"):]
	}
	eol := byte('\n')
	if bytes.IndexByte(sample, '\n') < 0 && bytes.IndexByte(sample, '\r') >= 0 {
		eol = '\r' // classic Mac line ends, still written by some spreadsheet exports
	}
	sep, hasSep := excelSep(sample)
	delim := r.opts.Delimiter
	switch {
	case delim != 0:
		if !hasSep {
			if err := checkDelimiter(r.display, delim, sample, whole); err != nil {
				return err
			}
		}
	case hasSep:
		delim = sep
	default:
		delim = detectDelimiter(sample)
	}

	r.feed = &lineFeeder{br: br, eol: eol, wrap: wrap}
	r.csv = csv.NewReader(r.feed)
	r.csv.Comma = delim
	r.csv.FieldsPerRecord = -1 // counted by us, so that a bad row is rejected with the count
	r.csv.ReuseRecord = true
	// `a, "b,c"` is common in hand-written files. Not for a tab: csv would trim the tab
	// itself and shift the fields of a row with an empty one.
	r.csv.TrimLeadingSpace = !unicode.IsSpace(delim)
	// LazyQuotes stays off: it would turn `"abc"def` into an ID with a quote in it, and an
	// unclosed quote into one field holding the rest of the file.

	if hasSep {
		// Read by csv like any line, so that line numbers stay physical; the header is
		// then line 2.
		if _, _, _, err := r.read(); err != nil && err != io.EOF {
			return err
		}
	}
	return r.readHeader()
}

// readHeader reads the first record and decides what it is: a header, the first ID of a
// bare list, or the sign of a file with no usable ID column.
func (r *Reader) readHeader() error {
	rec, line, perr, err := r.read()
	switch {
	case err == io.EOF:
		return fmt.Errorf("%s: empty file (no rows)", r.display)
	case err != nil:
		return err
	case perr != nil:
		// Without the first row we cannot tell a header from data.
		return fmt.Errorf("%s line %d: first row unreadable: %s", r.display, perr.StartLine, parseReason(perr))
	}
	fields := make([]string, len(rec))
	for i, f := range rec {
		fields[i] = trim(f)
	}
	isHeader := len(fields) == 1 && normalize(fields[0]) == loneIDAlias
	for _, f := range fields {
		isHeader = isHeader || r.known(normalize(f))
	}
	if !isHeader {
		switch {
		case r.opts.IDColumn != "":
			return fmt.Errorf("%s: no column %q: line %d is not a header (it has %s)", r.display, r.opts.IDColumn, line, describeFields(fields))
		case len(fields) > 1:
			return fmt.Errorf("%s: no usable ID column: line %d has %d fields and is not a header naming %s (it has %s)",
				r.display, line, len(fields), idNames, describeFields(fields))
		}
		return r.readBareList(rec, line)
	}

	r.header = fields
	r.fields = len(fields)
	if err := r.findColumns(); err != nil {
		return err
	}
	row, rej, err := r.next()
	switch {
	case err == io.EOF:
		return fmt.Errorf("%s: no message IDs (only a header: %s)", r.display, describeFields(fields))
	case err != nil:
		return err
	}
	r.ahead = append(r.ahead, result{row, rej})
	return nil
}

// idNames lists the ID column names a header may use, for messages.
const idNames = "messageId, message_id, msg_id, sms_id, message_uuid, uuid or id"

// readBareList starts a one-column file whose first record, rec on line, names no known
// column. It reads up to sniffRows more rows: when the first line does not look like the
// rows after it (see headerShaped), it is a header batstat does not know, and loading it
// as an ID would count a message that does not exist, so that is an error. Otherwise the
// line is the first ID, and the rows read are returned first by Next.
func (r *Reader) readBareList(rec []string, line int64) error {
	for c := range r.cols {
		r.cols[c] = -1
	}
	r.cols[colID] = 0
	r.fields = 1
	first := r.convert(rec, line)
	r.ahead = append(r.ahead, first)
	var ids []string
	for range sniffRows {
		row, rej, err := r.next()
		if err != nil {
			r.err = err // io.EOF, or an error Next returns after the rows before it
			break
		}
		r.ahead = append(r.ahead, result{row, rej})
		if row != nil {
			ids = append(ids, row.ID)
		}
	}
	if first.row == nil {
		return nil // rejected anyway: it will not be loaded
	}
	if why, ok := headerShaped(first.row.ID, ids); ok {
		v := first.row.ID
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return fmt.Errorf("%s line %d: %q looks like a header, not a message ID (%s): name the ID column with --id-column %q, or, if it is a message ID, add a first line messageId",
			r.display, line, v, why, v)
	}
	return nil
}

// known reports whether a normalised name is one a header may have.
func (r *Reader) known(name string) bool {
	if name == "" {
		return false
	}
	if name == normalize(r.opts.IDColumn) || name == normalize(r.opts.CampaignColumn) {
		return true
	}
	for _, names := range aliases {
		for _, a := range names {
			if name == a {
				return true
			}
		}
	}
	return false
}

// findColumns maps the known columns to their index in the header. Each column takes the
// first header name that matches its preferred alias, then its next alias, and so on; a
// header column serves one purpose only.
func (r *Reader) findColumns() error {
	norm := make([]string, len(r.header))
	for i, h := range r.header {
		norm[i] = normalize(h)
	}
	used := make([]bool, len(norm))
	find := func(names ...string) int {
		for _, a := range names {
			for i, n := range norm {
				if n == a && !used[i] {
					used[i] = true
					return i
				}
			}
		}
		return -1
	}
	for c := range numColumns {
		want := aliases[c]
		if c == colID && len(norm) == 1 {
			want = append(slices.Clip(want), loneIDAlias)
		}
		switch {
		case c == colID && r.opts.IDColumn != "":
			want = []string{normalize(r.opts.IDColumn)}
		case c == colCampaign && r.opts.CampaignColumn != "":
			want = []string{normalize(r.opts.CampaignColumn)}
		}
		r.cols[c] = find(want...)
	}
	switch {
	case r.cols[colID] >= 0:
	case r.opts.IDColumn != "":
		return fmt.Errorf("%s: no column %q; the columns are %s", r.display, r.opts.IDColumn, describeFields(r.header))
	default:
		return fmt.Errorf("%s: no usable ID column: the header names no %s column; the columns are %s (name the ID column with --id-column)",
			r.display, idNames, describeFields(r.header))
	}
	if r.cols[colCampaign] < 0 && r.opts.CampaignColumn != "" {
		return fmt.Errorf("%s: no campaign column %q; the columns are %s", r.display, r.opts.CampaignColumn, describeFields(r.header))
	}
	return nil
}

// Columns returns the header as read, trimmed, or nil for a bare list. It is meant for
// messages; the caller must not modify it.
func (r *Reader) Columns() []string { return r.header }

// Next returns the next row: either an accepted one or a rejected one, the other being nil.
// At the end of the input it returns io.EOF. Any other error ends the file (a read error,
// corrupt gzip data, an unclosed quote that runs to the end of the file); it names the
// file and line, and later calls return it again.
//
// A row is rejected, and reading goes on, when its ID is empty, holds a control or
// invisible formatting character, or is longer than MaxIDLength bytes; when it has more or
// fewer fields than the header (one, for a bare list); when any field is not valid UTF-8;
// when it cannot be parsed (a bare quote, text after a closing quote); or when it repeats
// the header, as concatenated CSV files do. Blank rows, including rows of only separators,
// are skipped without a word.
//
// A row's campaign is Options.Campaign if set, else its campaign cell, else (no campaign
// column, or an empty cell) the file's default: its base name without extensions, or
// "stdin". An empty cell is not rejected: its ID is still good, and the file's default is
// what the design gives a file without campaigns.
func (r *Reader) Next() (*Row, *Rejected, error) {
	if len(r.ahead) > 0 {
		a := r.ahead[0]
		r.ahead = r.ahead[1:]
		return a.row, a.rej, nil
	}
	if r.err != nil {
		return nil, nil, r.err
	}
	row, rej, err := r.next()
	r.err = err
	return row, rej, err
}

func (r *Reader) next() (*Row, *Rejected, error) {
	rec, line, perr, err := r.read()
	if err != nil {
		return nil, nil, err
	}
	if perr != nil {
		rej := r.reject(rec, line, KindCSVSyntax, parseReason(perr))
		return nil, rej, nil
	}
	res := r.convert(rec, line)
	return res.row, res.rej, nil
}

// read returns the next record that is not blank and the line it starts on. A record that
// encoding/csv cannot parse comes back as the partial record with its ParseError: csv has
// consumed the whole line by then, so the next read starts cleanly on the next line. The
// exception is a quote that is never closed: csv reads to the end of the file looking for
// it, and that is a fatal error rather than one rejected "row" hiding every line after it.
func (r *Reader) read() ([]string, int64, *csv.ParseError, error) {
	for {
		r.feed.mark()
		rec, err := r.csv.Read()
		if err == io.EOF {
			return nil, 0, nil, io.EOF
		}
		if err != nil {
			// Declared here, not above: errors.As makes it escape, and the heap
			// allocation would otherwise be paid on every row.
			var perr *csv.ParseError
			if !errors.As(err, &perr) {
				return nil, 0, nil, fmt.Errorf("%s line %d: %w", r.display, r.feed.lines+1, err)
			}
			if perr.Err == csv.ErrQuote && perr.Line > perr.StartLine && r.atEOF() {
				return nil, 0, nil, fmt.Errorf("%s line %d: quoted field not closed before the end of the file (line %d)",
					r.display, perr.StartLine, perr.Line)
			}
			return rec, int64(perr.StartLine), perr, nil
		}
		if blank(rec) {
			continue
		}
		l, _ := r.csv.FieldPos(0)
		return rec, int64(l), nil, nil
	}
}

// atEOF reports whether the input is used up.
func (r *Reader) atEOF() bool {
	_, err := r.feed.br.Peek(1)
	return err != nil
}

// convert checks one record and turns it into a Row or a Rejected.
func (r *Reader) convert(rec []string, line int64) result {
	if len(rec) != r.fields {
		n := fmt.Sprintf("%d fields", len(rec))
		if len(rec) == 1 {
			n = "1 field"
		}
		if r.header == nil {
			return result{rej: r.reject(rec, line, KindFieldCount, n+", expected 1 (a list without header has one ID per line)")}
		}
		return result{rej: r.reject(rec, line, KindFieldCount, fmt.Sprintf("%s, header has %d", n, r.fields))}
	}
	for i, f := range rec {
		if !utf8.ValidString(f) {
			return result{rej: r.reject(rec, line, KindInvalidUTF8, "invalid UTF-8"+r.inColumn(i))}
		}
	}
	id := trim(rec[r.cols[colID]])
	if id == "" {
		return result{rej: r.reject(rec, line, KindEmptyID, "empty message ID")}
	}
	for _, c := range id {
		switch {
		case unicode.IsControl(c):
			return result{rej: r.reject(rec, line, KindControlCharacter, fmt.Sprintf("control character %U in message ID", c))}
		case unicode.Is(unicode.Cf, c):
			// Zero-width spaces, bidi marks: pasted along with an ID, never part of one.
			return result{rej: r.reject(rec, line, KindInvisibleCharacter, fmt.Sprintf("invisible character %U in message ID", c))}
		}
	}
	if len(id) > MaxIDLength {
		return result{rej: r.reject(rec, line, KindIDTooLong, fmt.Sprintf("message ID is %d bytes, longer than %d", len(id), MaxIDLength))}
	}
	if r.header != nil && id == r.header[r.cols[colID]] {
		return result{rej: r.reject(rec, line, KindRepeatedHeader, "repeated header row")}
	}
	return result{row: &Row{
		File:              r.name,
		Line:              line,
		ID:                id,
		Campaign:          r.campaignOf(rec),
		Recipient:         r.field(rec, colRecipient),
		SentAt:            r.field(rec, colSentAt),
		CustomerMessageID: r.field(rec, colCustomerMessageID),
		MessagelistID:     r.field(rec, colMessagelistID),
	}}
}

// reject builds a Rejected for rec, which may be partial or have the wrong fields.
func (r *Reader) reject(rec []string, line int64, kind, reason string) *Rejected {
	rej := &Rejected{
		File:     r.name,
		Line:     line,
		Campaign: r.campaignOf(rec),
		Reason:   reason,
		Kind:     kind,
		Raw:      r.feed.record(),
	}
	if i := r.cols[colID]; i >= 0 && i < len(rec) {
		rej.ID = printable(trim(rec[i]), false, false)
	}
	return rej
}

// inColumn names column i for a reason, when there is a header to name it.
func (r *Reader) inColumn(i int) string {
	if r.header == nil || i >= len(r.header) {
		return ""
	}
	return fmt.Sprintf(" in column %q", r.header[i])
}

// field returns the trimmed value of column c, or "" when the file has no such column.
func (r *Reader) field(rec []string, c column) string {
	if i := r.cols[c]; i >= 0 && i < len(rec) {
		return trim(rec[i])
	}
	return ""
}

func (r *Reader) campaignOf(rec []string) string {
	if r.opts.Campaign != "" {
		return r.opts.Campaign
	}
	if c := r.field(rec, colCampaign); c != "" && utf8.ValidString(c) {
		return c
	}
	return r.campaign
}

// Close releases the input: the file Open opened or NewReader was given, never the stdin
// given to Open. It may be called more than once.
func (r *Reader) Close() error {
	var errs []error
	for i := len(r.closers) - 1; i >= 0; i-- {
		if err := r.closers[i].Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, err)
		}
	}
	r.closers = nil
	return errors.Join(errs...)
}

// parseReason says what is wrong with a record encoding/csv could not parse, and where.
func parseReason(pe *csv.ParseError) string {
	if pe.Line != pe.StartLine {
		return fmt.Sprintf("%v at line %d, column %d", pe.Err, pe.Line, pe.Column)
	}
	return fmt.Sprintf("%v at column %d", pe.Err, pe.Column)
}

// gzipError makes a truncated gzip stream say so: "unexpected EOF" alone does not tell
// that the file was cut short.
func gzipError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("gzip data truncated: %w", err)
	}
	return err
}
