// Package queries holds batstat's reports: one SQL file per report, embedded so the binary
// is self-contained and kept as plain files so analysts can read, copy and run them in the
// DuckDB CLI. The macros they share (message_time, in_campaigns, in_period) are part of the
// schema, which package store owns and keeps in every batstat file.
package queries

import "embed"

// FS holds every .sql file of this directory.
//
//go:embed *.sql
var FS embed.FS
