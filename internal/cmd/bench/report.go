package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/pgwarden/pgwarden/internal/cmd/bench/targets"
)

// stats are the medians over rounds of one target's runs for one line.
type stats struct {
	Runs       int      `json:"runs"`
	TPS        float64  `json:"tps"`
	LatencyMs  float64  `json:"latency_ms"`
	CPUUsPerTx *float64 `json:"cpu_us_per_tx,omitempty"`
}

// summaryRow is one line of the report: one (clients, mode) pair.
type summaryRow struct {
	Clients   int    `json:"clients"`
	Mode      string `json:"mode"`
	Direct    stats  `json:"direct"`
	Pgwarden  stats  `json:"pgwarden"`
	Pgbouncer stats  `json:"pgbouncer"`
	// Floor is the byte relay's (see forward.go); nil, like the floor's
	// ratios and added latency below, when the floor did not run.
	Floor *stats `json:"floor,omitempty"`
	// Throughput ratios of the medians; 0 when the divisor is 0.
	PgwardenPerDirect    float64  `json:"pgwarden_per_direct"`
	PgbouncerPerDirect   float64  `json:"pgbouncer_per_direct"`
	PgwardenPerPgbouncer float64  `json:"pgwarden_per_pgbouncer"`
	FloorPerPgbouncer    *float64 `json:"floor_per_pgbouncer,omitempty"`
	PgwardenPerFloor     *float64 `json:"pgwarden_per_floor,omitempty"`
	// Median average latency minus the direct one, in microseconds.
	AddedLatencyPgwardenUs  float64  `json:"added_latency_pgwarden_us"`
	AddedLatencyPgbouncerUs float64  `json:"added_latency_pgbouncer_us"`
	AddedLatencyFloorUs     *float64 `json:"added_latency_floor_us,omitempty"`
}

// summarize computes one row per (clients, mode), in the order given. A
// row has the floor's figures when runs has floor runs for it.
func summarize(runs []runResult, clients []int, modes []string) []summaryRow {
	var rows []summaryRow
	for _, c := range clients {
		for _, m := range modes {
			of := func(target string) stats {
				var tps, lat, cpu []float64
				for _, r := range runs {
					if r.Clients != c || r.Mode != m || r.Target != target {
						continue
					}
					tps = append(tps, r.TPS)
					lat = append(lat, r.LatencyMs)
					if r.CPUUsPerTx != nil {
						cpu = append(cpu, *r.CPUUsPerTx)
					}
				}
				s := stats{Runs: len(tps), TPS: median(tps), LatencyMs: median(lat)}
				if len(cpu) > 0 {
					v := median(cpu)
					s.CPUUsPerTx = &v
				}
				return s
			}
			row := summaryRow{
				Clients:   c,
				Mode:      m,
				Direct:    of(targets.NameDirect),
				Pgwarden:  of(targets.NamePgwarden),
				Pgbouncer: of(targets.NamePgbouncer),
			}
			row.PgwardenPerDirect = ratio(row.Pgwarden.TPS, row.Direct.TPS)
			row.PgbouncerPerDirect = ratio(row.Pgbouncer.TPS, row.Direct.TPS)
			row.PgwardenPerPgbouncer = ratio(row.Pgwarden.TPS, row.Pgbouncer.TPS)
			row.AddedLatencyPgwardenUs = (row.Pgwarden.LatencyMs - row.Direct.LatencyMs) * 1000
			row.AddedLatencyPgbouncerUs = (row.Pgbouncer.LatencyMs - row.Direct.LatencyMs) * 1000
			if floor := of(targets.NameFloor); floor.Runs > 0 {
				row.Floor = &floor
				perPgbouncer := ratio(floor.TPS, row.Pgbouncer.TPS)
				pgwardenPer := ratio(row.Pgwarden.TPS, floor.TPS)
				added := (floor.LatencyMs - row.Direct.LatencyMs) * 1000
				row.FloorPerPgbouncer, row.PgwardenPerFloor, row.AddedLatencyFloorUs = &perPgbouncer, &pgwardenPer, &added
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none. xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ratio returns a/b, or 0 when b is not positive (or the result is not a
// number JSON can hold).
func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	r := a / b
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return 0
	}
	return r
}

// writeTable prints rows as a markdown table. The floor's columns, each
// after pgbouncer's of its group, are there when any row has the floor's
// figures.
func writeTable(w io.Writer, rows []summaryRow) {
	floor := hasFloor(rows)
	f := func(format string, v func(r summaryRow) float64) func(summaryRow) string {
		return func(r summaryRow) string { return fmt.Sprintf(format, v(r)) }
	}
	// fl formats a floor figure, "n/a" for a row without the floor.
	fl := func(format string, v func(r summaryRow) *float64) func(summaryRow) string {
		return func(r summaryRow) string {
			if r.Floor == nil || v(r) == nil {
				return "n/a"
			}
			return fmt.Sprintf(format, *v(r))
		}
	}
	cols := []struct {
		head string
		cell func(summaryRow) string
		show bool
	}{
		{"clients", func(r summaryRow) string { return fmt.Sprint(r.Clients) }, true},
		{"mode", func(r summaryRow) string { return r.Mode }, true},
		{"direct tps", f("%.0f", func(r summaryRow) float64 { return r.Direct.TPS }), true},
		{"pgwarden tps", f("%.0f", func(r summaryRow) float64 { return r.Pgwarden.TPS }), true},
		{"pgbouncer tps", f("%.0f", func(r summaryRow) float64 { return r.Pgbouncer.TPS }), true},
		{"floor tps", fl("%.0f", func(r summaryRow) *float64 { return &r.Floor.TPS }), floor},
		{"pgwarden/direct", f("%.3f", func(r summaryRow) float64 { return r.PgwardenPerDirect }), true},
		{"pgbouncer/direct", f("%.3f", func(r summaryRow) float64 { return r.PgbouncerPerDirect }), true},
		{"pgwarden/pgbouncer", f("%.3f", func(r summaryRow) float64 { return r.PgwardenPerPgbouncer }), true},
		{"floor/pgbouncer", fl("%.3f", func(r summaryRow) *float64 { return r.FloorPerPgbouncer }), floor},
		{"pgwarden/floor", fl("%.3f", func(r summaryRow) *float64 { return r.PgwardenPerFloor }), floor},
		{"added latency pgwarden (µs)", f("%+.1f", func(r summaryRow) float64 { return r.AddedLatencyPgwardenUs }), true},
		{"added latency pgbouncer (µs)", f("%+.1f", func(r summaryRow) float64 { return r.AddedLatencyPgbouncerUs }), true},
		{"added latency floor (µs)", fl("%+.1f", func(r summaryRow) *float64 { return r.AddedLatencyFloorUs }), floor},
		{"CPU µs/tx pgwarden", func(r summaryRow) string { return formatCPU(r.Pgwarden.CPUUsPerTx) }, true},
		{"CPU µs/tx pgbouncer", func(r summaryRow) string { return formatCPU(r.Pgbouncer.CPUUsPerTx) }, true},
		{"CPU µs/tx floor", fl("%.1f", func(r summaryRow) *float64 { return r.Floor.CPUUsPerTx }), floor},
	}
	var heads, aligns []string
	for _, c := range cols {
		if !c.show {
			continue
		}
		heads = append(heads, c.head)
		if c.head == "mode" {
			aligns = append(aligns, "---")
		} else {
			aligns = append(aligns, "--:")
		}
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(heads, " | "))
	fmt.Fprintf(w, "|%s|\n", strings.Join(aligns, "|"))
	for _, r := range rows {
		var cells []string
		for _, c := range cols {
			if c.show {
				cells = append(cells, c.cell(r))
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

// hasFloor reports whether any row has the floor's figures.
func hasFloor(rows []summaryRow) bool {
	return slices.ContainsFunc(rows, func(r summaryRow) bool { return r.Floor != nil })
}

// floorNote explains the floor's columns, for under the table.
const floorNote = "floor: `bench forward`, a byte relay on pgwarden's own event loop (internal/evloop, same shards and socket options) " +
	"with no protocol handling; PostgreSQL authenticates through it. floor/pgbouncer compares relaying bytes in Go on this loop with pgbouncer; " +
	"pgwarden/floor is what understanding every message costs."

// formatCPU formats a CPU time per transaction, or "n/a" when there is
// none.
func formatCPU(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", *v)
}

// verdicts returns one line per row: whether pgwarden's throughput is at
// least pgbouncer's and, at one client (where latency is not just a
// consequence of queueing), whether its added latency is at most
// pgbouncer's. A row with the floor's figures gets a second line: the
// floor's throughput against pgbouncer's, pgwarden's against the floor's
// and, at one client, the floor's added latency next to pgwarden's.
func verdicts(rows []summaryRow) []string {
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "NO"
	}
	var out []string
	for _, r := range rows {
		v := fmt.Sprintf("clients=%d mode=%s: pgwarden tps ≥ pgbouncer: %s (%.0f vs %.0f, ×%.3f)",
			r.Clients, r.Mode, yesNo(r.Pgwarden.TPS >= r.Pgbouncer.TPS),
			r.Pgwarden.TPS, r.Pgbouncer.TPS, r.PgwardenPerPgbouncer)
		if r.Clients == 1 {
			v += fmt.Sprintf("; pgwarden added latency ≤ pgbouncer: %s (%+.1f vs %+.1f µs)",
				yesNo(r.AddedLatencyPgwardenUs <= r.AddedLatencyPgbouncerUs),
				r.AddedLatencyPgwardenUs, r.AddedLatencyPgbouncerUs)
		}
		out = append(out, v)
		if r.Floor != nil && r.FloorPerPgbouncer != nil && r.PgwardenPerFloor != nil {
			f := fmt.Sprintf("clients=%d mode=%s: floor (byte relay, no protocol handling) ×%.3f of pgbouncer; pgwarden ×%.3f of the floor",
				r.Clients, r.Mode, *r.FloorPerPgbouncer, *r.PgwardenPerFloor)
			if r.Clients == 1 && r.AddedLatencyFloorUs != nil {
				f += fmt.Sprintf("; added latency floor %+.1f µs, pgwarden %+.1f µs", *r.AddedLatencyFloorUs, r.AddedLatencyPgwardenUs)
			}
			out = append(out, f)
		}
	}
	return out
}
