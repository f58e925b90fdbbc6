package report

import (
	"math"
	"math/big"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

func dec(v int64, scale uint8) duckdb.Decimal {
	return duckdb.Decimal{Width: 18, Scale: scale, Value: big.NewInt(v)}
}

func TestText(t *testing.T) {
	huge, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	tests := []struct {
		v     any
		typ   string
		human bool
		want  string
	}{
		{nil, "VARCHAR", false, ""},
		{dec(50000, 6), "DECIMAL(18,6)", false, "0.050000"},
		{dec(-5, 6), "DECIMAL(18,6)", false, "-0.000005"},
		{dec(123456789, 6), "DECIMAL(18,6)", false, "123.456789"},
		{dec(0, 6), "DECIMAL(18,6)", false, "0.000000"},
		{dec(42, 0), "DECIMAL(18,0)", false, "42"},
		{duckdb.Decimal{Width: 38, Scale: 6, Value: huge}, "DECIMAL(38,6)", false, "123456789012345678901234.567890"},
		{huge, "HUGEINT", false, "123456789012345678901234567890"},
		{1.0 / 3, "DOUBLE", false, "0.3333333333333333"},
		{1.0 / 3, "DOUBLE", true, "0.3333"},
		{2.0 / 3, "DOUBLE", true, "0.6667"},
		{300.0, "DOUBLE", true, "300"},
		{1e-9, "DOUBLE", false, "1e-09"},
		{math.NaN(), "DOUBLE", false, "NaN"},
		{time.Date(2025, 3, 10, 10, 0, 10, 123000, time.FixedZone("EET", 7200)), "TIMESTAMPTZ", false, "2025-03-10T08:00:10.000123Z"},
		{time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC), "DATE", false, "2025-03-10"},
		{time.Date(1, 1, 1, 10, 11, 12, 0, time.UTC), "TIME", false, "10:11:12"},
		{duckdb.Interval{Days: 1, Micros: 6 * 3600 * 1e6}, "INTERVAL", false, "1 day 06:00:00"},
		{duckdb.Interval{Months: 14, Micros: 1500000}, "INTERVAL", false, "1 year 2 months 00:00:01.5"},
		{duckdb.Interval{}, "INTERVAL", false, "00:00:00"},
		{[]byte{0xd2, 0x17, 0xe6, 0x85, 0x19, 0xa1, 0x4a, 0x8d, 0x9b, 0x83, 0x0f, 0x39, 0xa6, 0xc8, 0x2b, 0xfd}, "UUID", false, "d217e685-19a1-4a8d-9b83-0f39a6c82bfd"},
		{[]byte("a\x00\\"), "BLOB", false, `a\x00\x5C`},
		{[]any{"a", dec(5, 2)}, "VARCHAR[]", false, `["a",0.05]`},
		{map[string]any{"b": 1, "a": "<x>"}, "STRUCT", false, `{"a":"<x>","b":1}`},
	}
	for _, tt := range tests {
		if got := text(tt.v, tt.typ, tt.human); got != tt.want {
			t.Errorf("text(%#v, %s, %v) = %q, want %q", tt.v, tt.typ, tt.human, got, tt.want)
		}
	}
}

func TestTotalRow(t *testing.T) {
	r := &Result{
		Columns: []string{"campaign", "currency", "n", "money", "rate"},
		Types:   []string{"VARCHAR", "VARCHAR", "BIGINT", "DECIMAL(38,6)", "DOUBLE"},
		Rows: [][]any{
			{"a", "UAH", int64(3), dec(1, 6), 0.5},
			{"a", "", int64(2), dec(0, 6), 0.0},
			{"b", "UAH", int64(1), nil, nil},
		},
		Total: "n money@currency rate=n/n",
	}
	got, err := totalRow(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"TOTAL", "", "6", "0.000001", "1"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("totalRow = %q, want %q", got, want)
			break
		}
	}

	r.Rows = append(r.Rows, []any{"c", "EUR", int64(0), dec(7, 6), nil})
	if got, _ := totalRow(r); got[3] != "" {
		t.Errorf("money over two currencies totals %q, want blank", got[3])
	}
	r.Total = "campaign"
	if _, err := totalRow(r); err == nil {
		t.Error("totalling a VARCHAR column succeeded, want an error")
	}
	r.Total = "nope"
	if _, err := totalRow(r); err == nil {
		t.Error("totalling a missing column succeeded, want an error")
	}
}
