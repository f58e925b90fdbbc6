// Package idlist reads campaign message-ID lists as people really have them: CSV with a
// comma, semicolon or tab, with or without a header, BOM, CRLF, gzip, stdin. It streams
// (a file is never held whole) and turns every row into either a Row or a rejected row with
// a precise reason; problems with the file as a whole are errors naming the file.
package idlist

// MaxIDLength is the longest message ID accepted, in bytes.
const MaxIDLength = 256

// Options say how to read a file. The zero value auto-detects everything.
type Options struct {
	// Delimiter forces the field separator; 0 detects comma, semicolon or tab.
	Delimiter rune
	// IDColumn names the ID column (matched case-insensitively, ignoring spaces, '_' and
	// '-'); "" detects messageId, message_id, "Message ID", id.
	IDColumn string
	// CampaignColumn names the campaign column; "" uses a "campaign" column if present.
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

// Rejected is one input row that cannot be used, and why.
type Rejected struct {
	File     string
	Line     int64
	Campaign string
	ID       string // the offending ID when there is one (may be invalid UTF-8 escaped)
	Reason   string // e.g. "empty message ID", "3 fields, header has 2"
	Raw      string // the row's text as read, valid UTF-8
}
