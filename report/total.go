package report

import (
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// A TOTAL row is declared by the report (its "-- total:" header line, see Result.Total)
// rather than guessed from column types: an integer column may be an ID or an HTTP status,
// a DECIMAL may be a per-unit price, and money in two currencies must not be added up.

type totalKind int

const (
	totalSum   totalKind = iota // col
	totalKeyed                  // col@key
	totalRatio                  // col=num/den
)

type totalItem struct {
	col  string
	kind totalKind
	key  string // totalKeyed
	num  string // totalRatio
	den  string // totalRatio
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseTotal parses a total spec: space- or comma-separated items "col", "col@key" and
// "col=num/den".
func parseTotal(spec string) ([]totalItem, error) {
	var items []totalItem
	for _, f := range strings.FieldsFunc(spec, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
		var it totalItem
		switch {
		case strings.Contains(f, "="):
			col, ratio, _ := strings.Cut(f, "=")
			num, den, ok := strings.Cut(ratio, "/")
			if !ok {
				return nil, fmt.Errorf("total: %q: want col=num/den", f)
			}
			it = totalItem{col: col, kind: totalRatio, num: num, den: den}
		case strings.Contains(f, "@"):
			col, key, _ := strings.Cut(f, "@")
			it = totalItem{col: col, kind: totalKeyed, key: key}
		default:
			it = totalItem{col: f, kind: totalSum}
		}
		for _, id := range []string{it.col, it.key, it.num, it.den} {
			if id != "" && !identRE.MatchString(id) {
				return nil, fmt.Errorf("total: %q: %q is not a column name", f, id)
			}
		}
		items = append(items, it)
	}
	return items, nil
}

// sum is an exact column total: an integer (scale 0) or an unscaled decimal.
type sum struct {
	v     big.Int
	scale int
	dec   bool // the column is DECIMAL: print with its scale even when it is 0
}

var decimalTypeRE = regexp.MustCompile(`^DECIMAL\(\d+,\s*(\d+)\)$`)

// columnSum adds up column i of r exactly. NULLs count as nothing.
func columnSum(r *Result, i int) (*sum, error) {
	s := &sum{}
	if m := decimalTypeRE.FindStringSubmatch(r.Types[i]); m != nil {
		s.dec = true
		s.scale, _ = strconv.Atoi(m[1])
	}
	for _, row := range r.Rows {
		switch x := row[i].(type) {
		case nil:
		case duckdb.Decimal:
			s.dec = true
			v := new(big.Int).Set(x.Value)
			// Bring both to the larger scale so the sum stays exact.
			if sc := int(x.Scale); sc > s.scale {
				s.v.Mul(&s.v, pow10(sc-s.scale))
				s.scale = sc
			} else if sc < s.scale {
				v.Mul(v, pow10(s.scale-sc))
			}
			s.v.Add(&s.v, v)
		case *big.Int:
			s.v.Add(&s.v, new(big.Int).Mul(x, pow10(s.scale)))
		default:
			n, ok := toInt(x)
			if !ok {
				return nil, fmt.Errorf("column %s of type %s cannot be totalled", r.Columns[i], r.Types[i])
			}
			s.v.Add(&s.v, new(big.Int).Mul(big.NewInt(n), pow10(s.scale)))
		}
	}
	return s, nil
}

func (s *sum) String() string {
	if s.dec {
		return scaledString(&s.v, s.scale)
	}
	return s.v.String()
}

func (s *sum) rat() *big.Rat {
	return new(big.Rat).SetFrac(&s.v, pow10(s.scale))
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case int:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint64:
		if x <= 1<<63-1 {
			return int64(x), true
		}
	}
	return 0, false
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

func isZero(v any) bool {
	switch x := v.(type) {
	case duckdb.Decimal:
		return x.Value == nil || x.Value.Sign() == 0
	case *big.Int:
		return x.Sign() == 0
	}
	n, ok := toInt(v)
	return ok && n == 0
}

// totalRow returns the cells of r's TOTAL row, or nil when r declares none.
func totalRow(r *Result) ([]string, error) {
	items, err := parseTotal(r.Total)
	if err != nil || len(items) == 0 {
		return nil, err
	}
	col := func(name string) (int, error) {
		i := slices.Index(r.Columns, name)
		if i < 0 {
			return 0, fmt.Errorf("total: no column %s", name)
		}
		return i, nil
	}
	cells := make([]string, len(r.Columns))
	filled := make([]bool, len(r.Columns))
	for _, it := range items {
		i, err := col(it.col)
		if err != nil {
			return nil, err
		}
		filled[i] = true
		switch it.kind {
		case totalSum, totalKeyed:
			if it.kind == totalKeyed {
				k, err := col(it.key)
				if err != nil {
					return nil, err
				}
				if !singleKey(r, i, k) {
					continue // mixed units: leave blank
				}
			}
			s, err := columnSum(r, i)
			if err != nil {
				return nil, err
			}
			cells[i] = s.String()
		case totalRatio:
			n, err := col(it.num)
			if err != nil {
				return nil, err
			}
			d, err := col(it.den)
			if err != nil {
				return nil, err
			}
			ns, err := columnSum(r, n)
			if err != nil {
				return nil, err
			}
			ds, err := columnSum(r, d)
			if err != nil {
				return nil, err
			}
			ratio := 0.0 // as the reports define a rate over nothing
			if ds.v.Sign() != 0 {
				ratio, _ = new(big.Rat).Quo(ns.rat(), ds.rat()).Float64()
			}
			cells[i] = floatString(ratio, true)
		}
	}
	if !filled[0] {
		cells[0] = "TOTAL"
	}
	return cells, nil
}

// singleKey reports whether the rows where column i is neither NULL nor zero all have the
// same value in column k.
func singleKey(r *Result, i, k int) bool {
	var first string
	seen := false
	for _, row := range r.Rows {
		if row[i] == nil || isZero(row[i]) {
			continue
		}
		key := text(row[k], r.Types[k], false)
		if seen && key != first {
			return false
		}
		first, seen = key, true
	}
	return true
}
