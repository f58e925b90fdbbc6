package report

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// This file turns the values duckdb-go scans into text (csv, table, markdown) and into
// JSON values. Money stays exact throughout: a DECIMAL is printed from its unscaled
// integer, never through float64.

// decimalString formats d exactly, with all its scale digits (0.050000), as DuckDB prints it.
func decimalString(d duckdb.Decimal) string {
	if d.Value == nil {
		return "0"
	}
	return scaledString(d.Value, int(d.Scale))
}

// scaledString formats the unscaled integer v with scale decimal places.
func scaledString(v *big.Int, scale int) string {
	digits := new(big.Int).Abs(v).String()
	sign := ""
	if v.Sign() < 0 {
		sign = "-"
	}
	if scale <= 0 {
		return sign + digits
	}
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale-len(digits)+1) + digits
	}
	return sign + digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
}

// isNumeric reports whether a DuckDB type holds numbers (right-aligned in tables).
func isNumeric(typ string) bool {
	for _, p := range []string{"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
		"UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
		"FLOAT", "DOUBLE", "DECIMAL", "BIGNUM", "VARINT"} {
		if typ == p || strings.HasPrefix(typ, p+"(") {
			return true
		}
	}
	return false
}

// floatString formats f like encoding/json does (shortest exact form, plain notation for
// ordinary magnitudes). human rounds to 4 decimal places first, for tables.
func floatString(f float64, human bool) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if human {
		if r := math.Round(f*1e4) / 1e4; !math.IsInf(r, 0) {
			f = r
		}
	}
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// timeString formats a time by its DuckDB type: dates as 2006-01-02, times of day as
// 15:04:05.999999, timestamps as RFC 3339 in UTC (with fractional seconds when there are
// any).
func timeString(t time.Time, typ string) string {
	switch {
	case typ == "DATE":
		return t.Format(time.DateOnly)
	case typ == "TIME" || typ == "TIME_NS":
		return t.Format("15:04:05.999999999")
	case strings.HasPrefix(typ, "TIME WITH") || typ == "TIMETZ":
		return t.Format("15:04:05.999999999Z07:00")
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// intervalString formats an interval the way DuckDB prints one: "1 month 2 days 03:04:05".
func intervalString(iv duckdb.Interval) string {
	var parts []string
	plural := func(n int64, unit string) string {
		if n == 1 || n == -1 {
			return fmt.Sprintf("%d %s", n, unit)
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	if y, m := int64(iv.Months)/12, int64(iv.Months)%12; y != 0 || m != 0 {
		if y != 0 {
			parts = append(parts, plural(y, "year"))
		}
		if m != 0 {
			parts = append(parts, plural(m, "month"))
		}
	}
	if iv.Days != 0 {
		parts = append(parts, plural(int64(iv.Days), "day"))
	}
	if iv.Micros != 0 || len(parts) == 0 {
		us := iv.Micros
		sign := ""
		if us < 0 {
			sign, us = "-", -us
		}
		s := fmt.Sprintf("%s%02d:%02d:%02d", sign, us/3_600_000_000, us/60_000_000%60, us/1_000_000%60)
		if frac := us % 1_000_000; frac != 0 {
			s += strings.TrimRight(fmt.Sprintf(".%06d", frac), "0")
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func uuidString(b []byte) string {
	h := hex.EncodeToString(b)
	if len(h) != 32 {
		return h
	}
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// blobString prints bytes as DuckDB does: printable ASCII as is, anything else as \xHH.
func blobString(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f && c != '\\' {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "\\x%02X", c)
		}
	}
	return sb.String()
}

// text formats one value for csv (human false) or a table (human true: doubles rounded to
// 4 decimals). NULL is "". Nested values (lists, structs, maps, JSON) become compact JSON.
func text(v any, typ string, human bool) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64, int32, int16, int8, int, uint64, uint32, uint16, uint8, uint:
		return fmt.Sprint(x)
	case *big.Int:
		return x.String()
	case float64:
		return floatString(x, human)
	case float32:
		return floatString(float64(x), human)
	case duckdb.Decimal:
		return decimalString(x)
	case time.Time:
		return timeString(x, typ)
	case duckdb.Interval:
		return intervalString(x)
	case duckdb.UUID:
		return uuidString(x[:])
	case []byte:
		if typ == "UUID" {
			return uuidString(x)
		}
		return blobString(x)
	}
	b, err := marshal(jsonValue(v, ""))
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// jsonValue converts a scanned value into one encoding/json prints faithfully: exact
// numbers for DECIMAL and HUGEINT, strings for times and intervals, ordered objects for
// maps.
func jsonValue(v any, typ string) any {
	switch x := v.(type) {
	case nil:
		return nil
	case duckdb.Decimal:
		return json.Number(decimalString(x))
	case *big.Int:
		return json.Number(x.String())
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return floatString(x, false) // JSON has no NaN or Infinity
		}
		return x
	case float32:
		return jsonValue(float64(x), typ)
	case time.Time, duckdb.Interval, duckdb.UUID, []byte:
		return text(x, typ, false)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e, "")
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e, "")
		}
		return out
	case duckdb.OrderedMap:
		o := &object{}
		vals := x.Values()
		for i, k := range x.Keys() {
			o.add(text(k, "", false), jsonValue(vals[i], ""))
		}
		return o
	case duckdb.Map:
		o := &object{}
		for k, e := range x {
			o.add(text(k, "", false), jsonValue(e, ""))
		}
		return o
	}
	return v
}

// object is a JSON object that keeps its keys in insertion order (encoding/json sorts map
// keys; a row object must list the columns in the report's order).
type object struct {
	keys []string
	vals []any
}

func (o *object) add(k string, v any) {
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

// MarshalJSON implements json.Marshaler.
func (o *object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, err := marshal(k)
		if err != nil {
			return nil, err
		}
		buf.Write(kb)
		buf.WriteByte(':')
		vb, err := marshal(o.vals[i])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// marshal is json.Marshal without HTML escaping: response bodies and SQL are data here,
// and "<" should stay "<".
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
