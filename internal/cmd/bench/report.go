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
	// Throughput ratios of the medians; 0 when the divisor is 0.
	PgwardenPerDirect    float64 `json:"pgwarden_per_direct"`
	PgbouncerPerDirect   float64 `json:"pgbouncer_per_direct"`
	PgwardenPerPgbouncer float64 `json:"pgwarden_per_pgbouncer"`
	// Median average latency minus the direct one, in microseconds.
	AddedLatencyPgwardenUs  float64 `json:"added_latency_pgwarden_us"`
	AddedLatencyPgbouncerUs float64 `json:"added_latency_pgbouncer_us"`
}

// summarize computes one row per (clients, mode), in the order given.
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

// writeTable prints rows as a markdown table.
func writeTable(w io.Writer, rows []summaryRow) {
	fmt.Fprintln(w, "| clients | mode | direct tps | pgwarden tps | pgbouncer tps | pgwarden/direct | pgbouncer/direct | pgwarden/pgbouncer | added latency pgwarden (µs) | added latency pgbouncer (µs) | CPU µs/tx pgwarden | CPU µs/tx pgbouncer |")
	fmt.Fprintln(w, "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range rows {
		cells := []string{
			fmt.Sprint(r.Clients),
			r.Mode,
			fmt.Sprintf("%.0f", r.Direct.TPS),
			fmt.Sprintf("%.0f", r.Pgwarden.TPS),
			fmt.Sprintf("%.0f", r.Pgbouncer.TPS),
			fmt.Sprintf("%.3f", r.PgwardenPerDirect),
			fmt.Sprintf("%.3f", r.PgbouncerPerDirect),
			fmt.Sprintf("%.3f", r.PgwardenPerPgbouncer),
			fmt.Sprintf("%+.1f", r.AddedLatencyPgwardenUs),
			fmt.Sprintf("%+.1f", r.AddedLatencyPgbouncerUs),
			formatCPU(r.Pgwarden.CPUUsPerTx),
			formatCPU(r.Pgbouncer.CPUUsPerTx),
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

func formatCPU(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", *v)
}

// verdicts returns one line per row: whether pgwarden's throughput is at
// least pgbouncer's and, at one client (where latency is not just a
// consequence of queueing), whether its added latency is at most
// pgbouncer's.
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
	}
	return out
}
