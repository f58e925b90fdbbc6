// Package queries holds batstat's SQL: the schema and one file per report, embedded so the
// binary is self-contained and kept as plain files so analysts can read and copy them.
package queries

import "embed"

// FS holds every .sql file of this directory.
//
//go:embed *.sql
var FS embed.FS

// Schema is the DDL applied on every read-write open.
//
//go:embed schema.sql
var Schema string
