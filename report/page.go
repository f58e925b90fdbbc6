package report

import (
	"cmp"
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// The HTML page: one self-contained file (styles inline, charts as inline SVG, no script,
// no font, no URL) that a campaign manager can open offline or forward. Charts are drawn
// here as SVG shapes through html/template, which escapes every name the data brings;
// a plotting library would bring fonts, an XML prolog with namespace URLs and fixed sizes
// for what is a handful of bars and one curve.

//go:embed page.html.tmpl
var pageTemplate string

//go:embed page_settlement.sql
var settlementSQL string

//go:embed page_latest.sql
var latestSQL string

// PageOptions says what a page shows.
type PageOptions struct {
	// Database is the file name shown in the header.
	Database string
	// Filter selects the campaigns and the period, as for every report.
	Filter Filter
	// Tables are the reports shown as tables, in order (usually the default ones).
	Tables []*Result
	// Now is when the page says it was made; zero = time.Now().
	Now time.Time
	// TopN is how many campaigns a chart names before it adds up the rest as one bar;
	// 0 = 15.
	TopN int
}

// Page is a report page made ready to render: everything it shows has been read.
type Page struct {
	opts                               PageOptions
	delivery, cost, fallback, settling *Result
	latest                             time.Time // the latest answer in the selection; zero = none
}

// NewPage reads what the page shows besides opts.Tables: the builtin delivery, cost and
// fallback reports over opts.Filter for the charts (whether or not they are among the
// tables), how soon messages settled, and the time of the latest answer.
func NewPage(ctx context.Context, db *sql.DB, opts PageOptions) (*Page, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.TopN <= 0 {
		opts.TopN = 15
	}
	p := &Page{opts: opts}
	defs, err := Defs("")
	if err != nil {
		return nil, err
	}
	sel, err := Select(defs, "delivery", "cost", "fallback")
	if err != nil {
		return nil, err
	}
	for i, dst := range []**Result{&p.delivery, &p.cost, &p.fallback} {
		if *dst, err = Run(ctx, db, sel[i], opts.Filter); err != nil {
			return nil, err
		}
	}
	if p.settling, err = Run(ctx, db, Def{Name: "page_settlement", SQL: settlementSQL}, opts.Filter); err != nil {
		return nil, err
	}
	latest, err := Run(ctx, db, Def{Name: "page_latest", SQL: latestSQL}, opts.Filter)
	if err != nil {
		return nil, err
	}
	if len(latest.Rows) == 1 {
		p.latest, _ = latest.Rows[0][0].(time.Time)
	}
	return p, nil
}

// Render writes the page as one HTML document.
func (p *Page) Render(w io.Writer) error {
	t, err := template.New("page").Funcs(template.FuncMap{
		"num": formatCount,
	}).Parse(pageTemplate)
	if err != nil {
		return fmt.Errorf("page template: %w", err)
	}
	v, err := p.view()
	if err != nil {
		return err
	}
	return t.Execute(w, v)
}

// pageView is what the template shows.
type pageView struct {
	Database, Campaigns, Period, Generated, Latest    string
	Tiles                                             []tile
	Delivery, Lowest, StatusMix, Fallback, Settlement *chart
	Costs                                             []*chart
	Notes                                             map[string]string
	SettledTable                                      *settledTable
	Tables                                            []tableView
}

type tile struct{ Label, Value, Title string }

// chart is one SVG chart as shapes, and its HTML legend.
type chart struct {
	ID, Title, Caption string
	Width, Height      float64
	Shapes             []shape
	Legend             []legendItem
}

type legendItem struct{ Class, Label string }

// shape is one SVG element. The data attributes carry exact figures for whoever reads
// the page as data (the tests do).
type shape struct {
	Kind                  string // rect, text, line, path
	X, Y, W, H, X2, Y2    float64
	D                     string
	Class, Anchor         string
	Text, Title           string
	DataCampaign          string
	DataOthers            int // campaigns added up in an "others" bar
	DataStatus, DataValue string
}

type tableView struct {
	Name    string
	Columns []tableColumn
	Rows    [][]tableCell
	Footer  []tableCell
}

type tableColumn struct {
	Name    string
	Numeric bool
}

// tableCell is a cell of a table. Value is the cell as the json format writes it, when
// Text (as the table format shows it) is not that already: a rounded DOUBLE, a NULL, an
// empty string, a time.
type tableCell struct {
	Text, Value string
	Numeric     bool
}

type settledTable struct {
	Within []string
	Rows   []settledRow
}

type settledRow struct {
	Label, Class string
	Messages     int64
	Shares       []string
	Later, Never string // settled after the last column's delay; not settled
}

func (p *Page) view() (*pageView, error) {
	v := &pageView{
		Database:  p.opts.Database,
		Generated: p.opts.Now.UTC().Format("2006-01-02 15:04:05 UTC"),
		Notes:     map[string]string{},
	}
	if !p.latest.IsZero() {
		v.Latest = p.latest.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	f := p.opts.Filter
	switch {
	case !f.Since.IsZero() && !f.Until.IsZero():
		v.Period = "sent from " + f.Since.UTC().Format(time.RFC3339) + " to before " + f.Until.UTC().Format(time.RFC3339)
	case !f.Since.IsZero():
		v.Period = "sent from " + f.Since.UTC().Format(time.RFC3339)
	case !f.Until.IsZero():
		v.Period = "sent before " + f.Until.UTC().Format(time.RFC3339)
	default:
		v.Period = "all messages"
	}

	camps, err := deliveryRows(p.delivery)
	if err != nil {
		return nil, err
	}
	if len(f.Campaigns) > 0 {
		v.Campaigns = strings.Join(f.Campaigns, ", ")
	} else {
		v.Campaigns = fmt.Sprintf("all (%s)", formatCount(int64(len(camps))))
	}
	total := deliveryRow{counts: make([]int64, len(statuses))}
	for _, c := range camps {
		total.add(c)
	}
	v.Tiles = []tile{
		{"campaigns", formatCount(int64(len(camps))), ""},
		{"messages", formatCount(total.messages), ""},
		{"delivered", formatCount(total.counts[0]), ""},
		{"delivery rate", formatPct(total.rate()), "delivered / messages over every selected campaign"},
		{"not final yet", formatCount(total.pending()), "scheduled, processing, not found or never answered"},
	}
	if len(camps) == 0 {
		v.Notes["empty"] = "No message in the selection."
	} else {
		shown := topCampaigns(camps, p.opts.TopN)
		v.Delivery = deliveryChart("delivery-rate", "Delivery rate per campaign", shown)
		if n := len(shown.rows); n < len(camps) {
			others := shown.rows[n-1].others
			v.Delivery.Caption = fmt.Sprintf("The %d largest campaigns by messages; the other %s together in the last bar. The tables below list every campaign.", n-1, formatCount(int64(others)))
			v.Lowest = deliveryChart("lowest-rate", fmt.Sprintf("The %d lowest delivery rates", n-1), lowestRates(camps, n-1))
			v.Lowest.Caption = "Ties by more messages first."
		}
		v.StatusMix = statusMixChart(shown)
		if v.Fallback, err = p.fallbackChart(camps, shown); err != nil {
			return nil, err
		}
		if v.Fallback == nil {
			v.Notes["fallback"] = "No answer in the selection listed a fallback."
		}
		if v.Costs, err = p.costCharts(); err != nil {
			return nil, err
		}
		if len(v.Costs) == 0 {
			v.Notes["cost"] = "No answer in the selection carried a cost."
		}
		if v.Settlement, v.SettledTable, err = p.settlementChart(camps, shown); err != nil {
			return nil, err
		}
	}
	for _, r := range p.opts.Tables {
		tv, err := newTableView(r)
		if err != nil {
			return nil, err
		}
		v.Tables = append(v.Tables, tv)
	}
	return v, nil
}

// newTableView shows a result as a table: each cell as the table format prints it, and
// its JSON value in a data attribute.
func newTableView(r *Result) (tableView, error) {
	tv := tableView{Name: r.Name}
	for i, c := range r.Columns {
		tv.Columns = append(tv.Columns, tableColumn{Name: c, Numeric: isNumeric(r.Types[i])})
	}
	for _, row := range r.Rows {
		cells := make([]tableCell, len(row))
		for i, val := range row {
			b, err := marshal(jsonValue(val, r.Types[i]))
			if err != nil {
				return tv, fmt.Errorf("report %s: %s: %w", r.Name, r.Columns[i], err)
			}
			cell := tableCell{Text: text(val, r.Types[i], true), Numeric: tv.Columns[i].Numeric}
			// The exact value only where the text is not it already, which keeps a
			// page of hundreds of campaigns light: numbers as the json format prints
			// them and non-empty strings are their own text.
			if isText := cell.Text == string(b) || (cell.Text != "" && !cell.Numeric && val == any(cell.Text)); !isText {
				cell.Value = string(b)
			}
			cells[i] = cell
		}
		tv.Rows = append(tv.Rows, cells)
	}
	total, err := totalRow(r)
	if err != nil {
		return tv, fmt.Errorf("report %s: %w", r.Name, err)
	}
	for i, s := range total {
		tv.Footer = append(tv.Footer, tableCell{Text: s, Numeric: tv.Columns[i].Numeric})
	}
	return tv, nil
}

// statuses are the delivery report's status columns in the order the status mix stacks
// them: final outcomes first, then what may still change.
var statuses = []string{"delivered", "undeliverable", "permanenterror", "other", "processing", "scheduled", "not_found", "unchecked"}

// deliveryRow is one campaign of the delivery report, or several added up.
type deliveryRow struct {
	campaign string
	others   int // campaigns added up into this row; 0 for a campaign of its own
	messages int64
	counts   []int64 // by statuses
	// rateValue is the report's delivery_rate for a campaign of its own.
	rateValue float64
}

func (d *deliveryRow) add(o deliveryRow) {
	if d.counts == nil {
		d.counts = make([]int64, len(statuses))
	}
	d.messages += o.messages
	for i, n := range o.counts {
		d.counts[i] += n
	}
	d.others += max(o.others, 1)
}

func (d deliveryRow) rate() float64 {
	if d.others == 0 {
		return d.rateValue
	}
	if d.messages == 0 {
		return 0
	}
	return float64(d.counts[0]) / float64(d.messages)
}

// pending counts the messages whose status may still change.
func (d deliveryRow) pending() int64 {
	var n int64
	for i, s := range statuses {
		if s == "processing" || s == "scheduled" || s == "not_found" || s == "unchecked" {
			n += d.counts[i]
		}
	}
	return n
}

func (d deliveryRow) label() string {
	if d.others > 0 {
		return fmt.Sprintf("%s other campaigns", formatCount(int64(d.others)))
	}
	return d.campaign
}

// columns finds columns of a result by name.
func columns(r *Result, names ...string) ([]int, error) {
	idx := make([]int, len(names))
	for i, n := range names {
		if idx[i] = slices.Index(r.Columns, n); idx[i] < 0 {
			return nil, fmt.Errorf("report %s: no column %s", r.Name, n)
		}
	}
	return idx, nil
}

func deliveryRows(r *Result) ([]deliveryRow, error) {
	idx, err := columns(r, append([]string{"campaign", "messages", "delivery_rate"}, statuses...)...)
	if err != nil {
		return nil, err
	}
	var out []deliveryRow
	for _, row := range r.Rows {
		d := deliveryRow{counts: make([]int64, len(statuses))}
		d.campaign, _ = row[idx[0]].(string)
		d.messages = asInt(row[idx[1]])
		d.rateValue, _ = row[idx[2]].(float64)
		for i := range statuses {
			d.counts[i] = asInt(row[idx[3+i]])
		}
		out = append(out, d)
	}
	return out, nil
}

func asInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case *big.Int:
		return x.Int64()
	}
	return 0
}

// shownRows are the rows a chart draws: the largest campaigns by messages, and when more
// than one is left out, the rest added up as one row.
type shownRows struct {
	rows  []deliveryRow
	names map[string]bool // the campaigns drawn on their own
}

func topCampaigns(camps []deliveryRow, n int) shownRows {
	sorted := slices.Clone(camps)
	slices.SortStableFunc(sorted, func(a, b deliveryRow) int {
		return cmp.Or(cmp.Compare(b.messages, a.messages), strings.Compare(a.campaign, b.campaign))
	})
	s := shownRows{names: map[string]bool{}}
	if len(sorted) <= n+1 {
		n = len(sorted)
	}
	for _, c := range sorted[:n] {
		s.rows = append(s.rows, c)
		s.names[c.campaign] = true
	}
	if rest := sorted[n:]; len(rest) > 0 {
		var o deliveryRow
		for _, c := range rest {
			o.add(c)
		}
		s.rows = append(s.rows, o)
	}
	return s
}

// Layout of the bar charts, in SVG user units (about CSS pixels at full width).
const (
	chartWidth = 760.0
	labelWidth = 200.0
	valueWidth = 120.0
	plotLeft   = labelWidth + 10
	plotWidth  = chartWidth - plotLeft - valueWidth
	rowHeight  = 24.0
	barHeight  = 16.0
	chartTop   = 6.0
	axisHeight = 26.0
	labelRunes = 30
)

// barFrame starts a horizontal bar chart of n rows with an axis of ticks (fractions of
// the plot width, labelled).
func barFrame(id, title string, n int, ticks []float64, tickLabel func(float64) string) *chart {
	c := &chart{ID: id, Title: title, Width: chartWidth, Height: chartTop + float64(n)*rowHeight + axisHeight}
	bottom := chartTop + float64(n)*rowHeight
	for _, t := range ticks {
		x := plotLeft + t*plotWidth
		c.Shapes = append(c.Shapes,
			shape{Kind: "line", X: x, Y: chartTop, X2: x, Y2: bottom, Class: "grid"},
			shape{Kind: "text", X: x, Y: bottom + 16, Anchor: "middle", Class: "tick", Text: tickLabel(t)})
	}
	return c
}

// rowLabel adds the label of row i: the campaign name, shortened when long (the full name
// is its tooltip).
func (c *chart) rowLabel(i int, d deliveryRow) {
	label := d.label()
	short := label
	if utf8.RuneCountInString(label) > labelRunes {
		short = string([]rune(label)[:labelRunes-1]) + "…"
	}
	cls := "label"
	if d.others > 0 {
		cls = "label others"
	}
	c.Shapes = append(c.Shapes, shape{Kind: "text", X: labelWidth, Y: rowY(i) + barHeight - 3, Anchor: "end", Class: cls, Text: short, Title: label})
}

func rowY(i int) float64 { return chartTop + float64(i)*rowHeight + (rowHeight-barHeight)/2 }

func (c *chart) rowValue(i int, text string) {
	c.Shapes = append(c.Shapes, shape{Kind: "text", X: plotLeft + plotWidth + 8, Y: rowY(i) + barHeight - 3, Class: "value", Text: text})
}

var quarterTicks = []float64{0, 0.25, 0.5, 0.75, 1}

// lowestRates are the n campaigns with the lowest delivery rates, lowest first.
func lowestRates(camps []deliveryRow, n int) shownRows {
	sorted := slices.Clone(camps)
	slices.SortStableFunc(sorted, func(a, b deliveryRow) int {
		return cmp.Or(cmp.Compare(a.rate(), b.rate()), cmp.Compare(b.messages, a.messages), strings.Compare(a.campaign, b.campaign))
	})
	s := shownRows{names: map[string]bool{}}
	for _, c := range sorted[:min(n, len(sorted))] {
		s.rows = append(s.rows, c)
		s.names[c.campaign] = true
	}
	return s
}

func deliveryChart(id, title string, s shownRows) *chart {
	c := barFrame(id, title, len(s.rows), quarterTicks, func(t float64) string { return formatPct(t) })
	for i, d := range s.rows {
		c.rowLabel(i, d)
		r := d.rate()
		c.Shapes = append(c.Shapes, shape{Kind: "rect", X: plotLeft, Y: rowY(i), W: r * plotWidth, H: barHeight,
			Class: "bar delivered", DataCampaign: campaignAttr(d), DataOthers: d.others, DataValue: strconv.FormatFloat(r, 'g', -1, 64),
			Title: fmt.Sprintf("%s: %s delivered (%s of %s)", d.label(), formatPct(r), formatCount(d.counts[0]), formatCount(d.messages))})
		c.rowValue(i, formatPct(r))
	}
	return c
}

func campaignAttr(d deliveryRow) string {
	if d.others > 0 {
		return ""
	}
	return d.campaign
}

func statusMixChart(s shownRows) *chart {
	c := barFrame("status-mix", "Status mix per campaign (latest status of each message)", len(s.rows), quarterTicks, func(t float64) string { return formatPct(t) })
	for _, st := range statuses {
		c.Legend = append(c.Legend, legendItem{Class: "s-" + st, Label: strings.ReplaceAll(st, "_", " ")})
	}
	for i, d := range s.rows {
		c.rowLabel(i, d)
		x := plotLeft
		for j, st := range statuses {
			n := d.counts[j]
			if n == 0 || d.messages == 0 {
				continue
			}
			w := float64(n) / float64(d.messages) * plotWidth
			c.Shapes = append(c.Shapes, shape{Kind: "rect", X: x, Y: rowY(i), W: w, H: barHeight, Class: "seg s-" + st,
				DataCampaign: campaignAttr(d), DataOthers: d.others, DataStatus: st, DataValue: strconv.FormatInt(n, 10),
				Title: fmt.Sprintf("%s: %s %s of %s (%s)", d.label(), st, formatCount(n), formatCount(d.messages), formatPct(float64(n)/float64(d.messages)))})
			x += w
		}
		c.rowValue(i, formatCount(d.messages)+" msgs")
	}
	return c
}

// fallbackChart draws, per campaign, the share of messages whose answer listed a
// fallback, used one, and was delivered by one (each within the one before); nil when no
// answer listed any.
func (p *Page) fallbackChart(camps []deliveryRow, s shownRows) (*chart, error) {
	idx, err := columns(p.fallback, "campaign", "messages", "with_fallback", "fallback_used", "fallback_delivered")
	if err != nil {
		return nil, err
	}
	type fb struct{ messages, with, used, delivered int64 }
	byName := map[string]fb{}
	listed := false
	for _, row := range p.fallback.Rows {
		name, _ := row[idx[0]].(string)
		f := fb{asInt(row[idx[1]]), asInt(row[idx[2]]), asInt(row[idx[3]]), asInt(row[idx[4]])}
		byName[name] = f
		listed = listed || f.with > 0
	}
	if !listed {
		return nil, nil
	}
	rows := make([]fb, len(s.rows))
	for i, d := range s.rows {
		if d.others == 0 {
			rows[i] = byName[d.campaign]
			continue
		}
		for _, c := range camps {
			if !s.names[c.campaign] {
				f := byName[c.campaign]
				rows[i].messages += f.messages
				rows[i].with += f.with
				rows[i].used += f.used
				rows[i].delivered += f.delivered
			}
		}
	}
	top := 0.0
	for _, f := range rows {
		if f.messages > 0 {
			top = max(top, float64(f.with)/float64(f.messages))
		}
	}
	scale := niceCeil(top)
	ticks := []float64{0, 0.25, 0.5, 0.75, 1}
	c := barFrame("fallback", "Fallback usage per campaign (share of its messages)", len(s.rows), ticks, func(t float64) string { return formatPct(t * scale) })
	c.Legend = []legendItem{{"f-with", "fallback listed"}, {"f-used", "fallback used"}, {"f-delivered", "delivered by fallback"}}
	for i, d := range s.rows {
		c.rowLabel(i, d)
		f := rows[i]
		share := func(n int64) float64 {
			if f.messages == 0 {
				return 0
			}
			return float64(n) / float64(f.messages)
		}
		for _, part := range []struct {
			cls, what string
			n         int64
			inset     float64
		}{{"f-with", "listed a fallback", f.with, 0}, {"f-used", "used a fallback", f.used, 3}, {"f-delivered", "delivered by a fallback", f.delivered, 6}} {
			if part.n == 0 {
				continue
			}
			c.Shapes = append(c.Shapes, shape{Kind: "rect", X: plotLeft, Y: rowY(i) + part.inset/2, W: share(part.n) / scale * plotWidth, H: barHeight - part.inset,
				Class: "seg " + part.cls, DataCampaign: campaignAttr(d), DataOthers: d.others, DataStatus: part.cls, DataValue: strconv.FormatInt(part.n, 10),
				Title: fmt.Sprintf("%s: %s of %s messages %s (%s)", d.label(), formatCount(part.n), formatCount(f.messages), part.what, formatPct(share(part.n)))})
		}
		c.rowValue(i, "used "+formatPct(share(f.used)))
	}
	return c, nil
}

// costCharts draws, per currency that carries any cost, the cost of each campaign (the
// largest ones, the rest added up), exactly summed.
func (p *Page) costCharts() ([]*chart, error) {
	idx, err := columns(p.cost, "campaign", "currency", "cost")
	if err != nil {
		return nil, err
	}
	type amount struct {
		campaign string
		v        *big.Int // micro-units, scale 6
	}
	byCurrency := map[string][]amount{}
	var currencies []string
	for _, row := range p.cost.Rows {
		name, _ := row[idx[0]].(string)
		cur, _ := row[idx[1]].(string)
		v, err := micros(row[idx[2]])
		if err != nil {
			return nil, fmt.Errorf("report cost: %w", err)
		}
		if _, ok := byCurrency[cur]; !ok {
			currencies = append(currencies, cur)
		}
		byCurrency[cur] = append(byCurrency[cur], amount{name, v})
	}
	slices.Sort(currencies)
	var charts []*chart
	for _, cur := range currencies {
		amounts := byCurrency[cur]
		total := new(big.Int)
		for _, a := range amounts {
			total.Add(total, a.v)
		}
		if total.Sign() == 0 {
			continue
		}
		slices.SortStableFunc(amounts, func(a, b amount) int {
			return cmp.Or(b.v.Cmp(a.v), strings.Compare(a.campaign, b.campaign))
		})
		n := p.opts.TopN
		if len(amounts) <= n+1 {
			n = len(amounts)
		}
		rows := make([]deliveryRow, 0, n+1)
		values := make([]*big.Int, 0, n+1)
		for _, a := range amounts[:n] {
			rows = append(rows, deliveryRow{campaign: a.campaign})
			values = append(values, a.v)
		}
		if rest := amounts[n:]; len(rest) > 0 {
			sum := new(big.Int)
			for _, a := range rest {
				sum.Add(sum, a.v)
			}
			rows = append(rows, deliveryRow{others: len(rest)})
			values = append(values, sum)
		}
		// The scale fits the named campaigns: the others together may be far larger, and
		// would flatten every other bar. Their bar is then cut, and says so.
		top := 0.0
		for i, v := range values {
			if rows[i].others == 0 || len(values) == 1 {
				top = max(top, microsFloat(v))
			}
		}
		scale := niceCeil(top)
		name, title := cur, fmt.Sprintf("Cost in %s per campaign: %s in all", cur, scaledString(total, 6))
		if cur == "" {
			name, title = "(no currency)", fmt.Sprintf("Cost without a currency per campaign: %s in all", scaledString(total, 6))
		}
		c := barFrame("cost-"+cur, title, len(rows), quarterTicks,
			func(t float64) string { return strconv.FormatFloat(math.Round(t*scale*1e9)/1e9, 'f', -1, 64) })
		for i, d := range rows {
			c.rowLabel(i, d)
			exact := scaledString(values[i], 6)
			w := microsFloat(values[i]) / scale * plotWidth
			cut := w > plotWidth
			c.Shapes = append(c.Shapes, shape{Kind: "rect", X: plotLeft, Y: rowY(i), W: min(w, plotWidth), H: barHeight,
				Class: "bar cost", DataCampaign: campaignAttr(d), DataOthers: d.others, DataStatus: cur, DataValue: exact,
				Title: fmt.Sprintf("%s: %s %s", d.label(), exact, name)})
			if cut {
				x, y := plotLeft+plotWidth-16, rowY(i)
				c.Shapes = append(c.Shapes, shape{Kind: "path", Class: "cut",
					D: fmt.Sprintf("M%.1f,%.1f L%.1f,%.1f M%.1f,%.1f L%.1f,%.1f", x, y+barHeight+1, x+5, y-1, x+5, y+barHeight+1, x+10, y-1)})
			}
			c.rowValue(i, exact)
		}
		charts = append(charts, c)
	}
	return charts, nil
}

// micros reads a DECIMAL of scale 6 (or less) as micro-units.
func micros(v any) (*big.Int, error) {
	d, ok := v.(duckdb.Decimal)
	if !ok {
		return nil, fmt.Errorf("cost is %T, not a DECIMAL", v)
	}
	if d.Value == nil {
		return new(big.Int), nil
	}
	if d.Scale > 6 {
		return nil, fmt.Errorf("cost has scale %d, more than 6", d.Scale)
	}
	return new(big.Int).Mul(d.Value, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(6-d.Scale)), nil)), nil
}

func microsFloat(v *big.Int) float64 {
	f, _ := new(big.Rat).SetFrac(v, big.NewInt(1_000_000)).Float64()
	return f
}

// niceCeil rounds a positive top value of an axis up to 1, 2, 2.5 or 5 times a power of
// ten, so that quarter ticks read well; 1 for nothing to show.
func niceCeil(x float64) float64 {
	if x <= 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= x*(1-1e-12) {
			return m * p
		}
	}
	return 10 * p
}

// settleEdges are the delays the curve is drawn at, the bucket edges of
// page_settlement.sql, and the columns of the table under it.
var settleColumns = []struct {
	seconds float64
	label   string
}{{60, "1 min"}, {600, "10 min"}, {3600, "1 h"}, {21600, "6 h"}, {86400, "1 day"}, {604800, "7 days"}}

// series is a settlement curve: messages, and how many settled within each delay.
type series struct {
	label, class string
	messages     int64
	settled      int64 // at any delay
	within       map[float64]int64
}

func (s *series) share(n int64) float64 {
	if s.messages == 0 {
		return 0
	}
	return float64(n) / float64(s.messages)
}

// cumulative returns the delays at which the series settled more, in order, with the
// share settled by then.
func (s *series) cumulative() (delays, shares []float64) {
	ds := slices.Sorted(func(yield func(float64) bool) {
		for d := range s.within {
			if !yield(d) {
				return
			}
		}
	})
	var n int64
	for _, d := range ds {
		n += s.within[d]
		delays = append(delays, d)
		shares = append(shares, s.share(n))
	}
	return delays, shares
}

func (s *series) settledBy(seconds float64) int64 {
	var n int64
	for d, k := range s.within {
		if d <= seconds {
			n += k
		}
	}
	return n
}

// Layout of the curve.
const (
	curveLeft   = 56.0
	curveRight  = 20.0
	curveTop    = 10.0
	curveHeight = 240.0
)

// settlementChart draws the share of messages settled by time since sending: every
// selected campaign together, and the largest few on their own when there are several.
func (p *Page) settlementChart(camps []deliveryRow, s shownRows) (*chart, *settledTable, error) {
	idx, err := columns(p.settling, "campaign", "settled", "within_s", "messages")
	if err != nil {
		return nil, nil, err
	}
	all := &series{label: "all selected campaigns", class: "c0", within: map[float64]int64{}}
	if len(camps) == 1 {
		all.label = camps[0].campaign
	}
	per := map[string]*series{}
	for _, row := range p.settling.Rows {
		name, _ := row[idx[0]].(string)
		settled, _ := row[idx[1]].(bool)
		n := asInt(row[idx[3]])
		sr := per[name]
		if sr == nil {
			sr = &series{label: name, within: map[float64]int64{}}
			per[name] = sr
		}
		for _, x := range []*series{all, sr} {
			x.messages += n
			if settled {
				x.settled += n
				if d, ok := row[idx[2]].(float64); ok {
					x.within[d] += n
				}
			}
		}
	}
	lines := []*series{all}
	if len(camps) > 1 {
		for _, d := range s.rows {
			if d.others > 0 || len(lines) > 5 {
				continue
			}
			if sr := per[d.campaign]; sr != nil {
				sr.class = fmt.Sprintf("c%d", len(lines))
				lines = append(lines, sr)
			}
		}
	}
	// The x axis runs from 1 s to the first tick past the longest delay seen, so that the
	// last step shows as a step, on a log scale: settling takes seconds for some messages
	// and days for others.
	longest := 0.0
	for d := range all.within {
		longest = max(longest, d)
	}
	xMax := longest
	ticks := []struct {
		s     float64
		label string
	}{{1, "1s"}, {10, "10s"}, {60, "1m"}, {600, "10m"}, {3600, "1h"}, {21600, "6h"}, {86400, "1d"}, {604800, "7d"}}
	for _, t := range ticks {
		if t.s > longest && t.s >= 60 {
			xMax = t.s
			break
		}
	}
	plotW := chartWidth - curveLeft - curveRight
	xOf := func(sec float64) float64 {
		return curveLeft + math.Log10(max(sec, 1))/math.Log10(xMax)*plotW
	}
	yOf := func(share float64) float64 { return curveTop + (1-share)*curveHeight }
	c := &chart{ID: "settlement", Title: "Settlement: share of messages with a final status, by time since sending",
		Width: chartWidth, Height: curveTop + curveHeight + 34,
		Caption: "Time to the first check that saw a final status (delivered, undeliverable or permanenterror), from the message's sent time (else when batstat first loaded it); log scale. Checks come at intervals, so a message may have settled earlier than drawn."}
	for _, t := range ticks {
		if t.s > xMax {
			break
		}
		x := xOf(t.s)
		c.Shapes = append(c.Shapes,
			shape{Kind: "line", X: x, Y: curveTop, X2: x, Y2: curveTop + curveHeight, Class: "grid"},
			shape{Kind: "text", X: x, Y: curveTop + curveHeight + 16, Anchor: "middle", Class: "tick", Text: t.label})
	}
	for _, q := range quarterTicks {
		y := yOf(q)
		c.Shapes = append(c.Shapes,
			shape{Kind: "line", X: curveLeft, Y: y, X2: curveLeft + plotW, Y2: y, Class: "grid"},
			shape{Kind: "text", X: curveLeft - 6, Y: y + 4, Anchor: "end", Class: "tick", Text: formatPct(q)})
	}
	c.Shapes = append(c.Shapes, shape{Kind: "text", X: curveLeft + plotW/2, Y: curveTop + curveHeight + 32, Anchor: "middle", Class: "tick", Text: "time since sending"})
	table := &settledTable{}
	for _, col := range settleColumns {
		table.Within = append(table.Within, col.label)
	}
	for _, sr := range lines {
		delays, shares := sr.cumulative()
		// A step curve: the share holds until the next delay at which more settled.
		var b strings.Builder
		fmt.Fprintf(&b, "M%.1f,%.1f", xOf(1), yOf(0))
		prev := 0.0
		for i, d := range delays {
			x := xOf(d)
			fmt.Fprintf(&b, " H%.1f V%.1f", x, yOf(shares[i]))
			prev = shares[i]
		}
		fmt.Fprintf(&b, " H%.1f", xOf(xMax))
		campaign := sr.label
		if sr == all {
			campaign = ""
		}
		c.Shapes = append(c.Shapes, shape{Kind: "path", D: b.String(), Class: "curve " + sr.class,
			DataCampaign: campaign, DataValue: strconv.FormatFloat(prev, 'g', -1, 64),
			Title: fmt.Sprintf("%s: %s of %s messages settled within %s", sr.label, formatPct(prev), formatCount(sr.messages), ticksLabel(xMax))})
		c.Legend = append(c.Legend, legendItem{Class: sr.class, Label: sr.label})
		last := settleColumns[len(settleColumns)-1].seconds
		row := settledRow{Label: sr.label, Class: sr.class, Messages: sr.messages,
			Later: formatPct(sr.share(sr.settled - sr.settledBy(last))), Never: formatPct(sr.share(sr.messages - sr.settled))}
		for _, col := range settleColumns {
			row.Shares = append(row.Shares, formatPct(sr.share(sr.settledBy(col.seconds))))
		}
		table.Rows = append(table.Rows, row)
	}
	return c, table, nil
}

func ticksLabel(sec float64) string {
	switch {
	case sec >= 86400:
		return fmt.Sprintf("%g days", sec/86400)
	case sec >= 3600:
		return fmt.Sprintf("%g h", sec/3600)
	case sec >= 60:
		return fmt.Sprintf("%g min", sec/60)
	}
	return fmt.Sprintf("%g s", sec)
}

// formatCount writes n with thousands separators.
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// formatPct writes a fraction as a percentage with one decimal, 100% and 0% plain. Only
// all is 100% and only nothing is 0%: 99.97% shows as 99.9%, 0.02% as <0.1%.
func formatPct(f float64) string {
	switch p := f * 100; {
	case p > 99.9 && p < 100:
		return "99.9%"
	case p > 0 && p < 0.05:
		return "<0.1%"
	}
	s := strconv.FormatFloat(math.Round(f*1000)/10, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + "%"
}
