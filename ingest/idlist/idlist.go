// Package idlist reads campaign message-ID lists as people really have them: CSV with a
// comma, semicolon or tab, with or without a header, BOM, CRLF, gzip, stdin. It streams
// (a file is never held whole) and turns every row into either a Row or a rejected row with
// a precise reason; problems with the file as a whole are errors naming the file.
//
// The usual call, per FILE argument after Expand:
//
//	r, err := idlist.Open(name, os.Stdin, opts) // err: the file is unusable
//	defer r.Close()
//	for {
//		row, rej, err := r.Next()
//		if err == io.EOF { break }
//		if err != nil { ... }  // the rest of the file is unreadable
//		if rej != nil { ... }  // a rejected_rows row; go on
//		...                    // row is a message to load
//	}
//
// Line numbers are physical lines, the first line of the file being 1: a quoted field
// spanning lines makes the following rows' numbers jump, as an editor would show them.
//
// Decisions worth knowing (the doc of Open and Next has the details):
//   - A first line is a header when any field, normalised (lower case, no spaces, '_' or
//     '-'), is a known column name. A one-column file whose first line is not a header is
//     a bare list, unless that line has the shape of a header rather than of the IDs below
//     it (a word without digits above IDs with digits, of another length or with other
//     characters): that is an error, as loading a header as an ID counts a message that
//     does not exist. A multi-column file without a header is an error.
//   - A forced delimiter that splits none of the first lines, while a common one splits
//     every one of them alike, is an error naming the right one.
//   - A file with a header and no rows is an error ("no message IDs"): a job given a file
//     means to load IDs from it. A file whose rows are all rejected is not.
//   - A row encoding/csv cannot parse is rejected and reading goes on at the next line; an
//     unclosed quote that swallows the rest of the file ends the file with an error.
//   - Blank rows (only white space and separators) are skipped, not rejected.
//   - An empty campaign cell gives the row the file's default campaign.
package idlist

// MaxIDLength is the longest message ID accepted, in bytes.
const MaxIDLength = 256

// The kinds of rejected rows (Rejected.Kind): short, stable names, where a reason says
// more (the character, the number of fields, the column).
const (
	KindCSVSyntax          = "csv_syntax"          // a record encoding/csv cannot parse
	KindFieldCount         = "field_count"         // another number of fields than the header's
	KindInvalidUTF8        = "invalid_utf8"        // in any field
	KindEmptyID            = "empty_message_id"    // no ID in the ID column
	KindControlCharacter   = "control_character"   // in the ID
	KindInvisibleCharacter = "invisible_character" // in the ID
	KindIDTooLong          = "message_id_too_long" // over MaxIDLength
	KindRepeatedHeader     = "repeated_header"     // the header again, e.g. two files concatenated
)

// Options say how to read a file. The zero value auto-detects everything.
type Options struct {
	// Delimiter forces the field separator (see ParseDelimiter for a user's spelling);
	// 0 detects comma, semicolon or tab from the first line (or takes it from an Excel
	// "sep=;" line).
	Delimiter rune
	// IDColumn names the ID column (matched case-insensitively, ignoring spaces, '_' and
	// '-'); "" detects messageId, msg_id, sms_id, message_uuid, uuid and id in that order
	// of preference, in any spelling ("Message ID", "SMS-ID"), and "message" as the only
	// column. When set, the file must have a header with that column.
	IDColumn string
	// CampaignColumn names the campaign column, matched like IDColumn; when set, the
	// header must have it. "" uses a "campaign" column if present.
	CampaignColumn string
	// Campaign, when set, is every row's campaign, whatever the file says.
	Campaign string
}

// Row is one accepted input row.
type Row struct {
	File     string // the name as given (or "-" for stdin)
	Line     int64  // physical line where the record starts, the header being line 1
	ID       string // trimmed, validated
	Campaign string
	// Optional columns, "" when the file has none.
	Recipient         string
	SentAt            string
	CustomerMessageID string
	MessagelistID     string
}

// Rejected is one input row that cannot be used, and why. Every string in it is valid
// UTF-8, ready for a database column.
type Rejected struct {
	File     string // as in Row
	Line     int64  // as in Row
	Campaign string // the row's campaign as far as it can be told, else the file's default
	// ID is the offending ID when there is one, with invalid UTF-8 and control characters
	// escaped as \xNN (\uNNNN above ASCII).
	ID     string
	Reason string // e.g. "empty message ID", "3 fields, header has 2"
	// Kind names the reason without its details (one of the Kind constants), so that
	// rejections can be counted by what went wrong.
	Kind string
	// Raw is the row's text as it was in the file (all its lines, without the final line
	// end), escaped like ID except for tabs and line ends, and at most MaxRawLength bytes,
	// a cut being marked with "…".
	Raw string
}
