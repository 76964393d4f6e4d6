package main

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{7}, 7},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{10, 1000, 11}, 11}, // one outlier does not move it
	} {
		in := slices.Clone(tc.in)
		if got := median(in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("median modified its input: %v", in)
		}
	}
}

func TestRatio(t *testing.T) {
	if got := ratio(900, 1000); got != 0.9 {
		t.Errorf("ratio(900, 1000) = %v", got)
	}
	if got := ratio(5, 0); got != 0 {
		t.Errorf("ratio(5, 0) = %v, want 0", got)
	}
	if got := ratio(math.Inf(1), 1); got != 0 {
		t.Errorf("ratio(+Inf, 1) = %v, want 0", got)
	}
}

func ptr(v float64) *float64 { return &v }

func TestSummarize(t *testing.T) {
	var runs []runResult
	add := func(round int, target string, tps, lat float64, cpu *float64) {
		runs = append(runs, runResult{Round: round, Clients: 1, Mode: "simple", Target: target, TPS: tps, LatencyMs: lat, CPUUsPerTx: cpu})
	}
	// Three rounds; each target has one outlier round.
	add(1, "direct", 1000, 1.0, nil)
	add(2, "direct", 1100, 0.9, nil)
	add(3, "direct", 100, 9.0, nil)
	add(1, "pgwarden", 800, 1.25, ptr(30))
	add(2, "pgwarden", 900, 1.1, ptr(20))
	add(3, "pgwarden", 5000, 0.2, ptr(25))
	add(1, "pgbouncer", 700, 1.4, ptr(50))
	add(2, "pgbouncer", 750, 1.3, ptr(40))
	add(3, "pgbouncer", 10, 99, ptr(45))
	// A run of another line must not be mixed in.
	runs = append(runs, runResult{Round: 1, Clients: 8, Mode: "simple", Target: "pgwarden", TPS: 1, LatencyMs: 1})

	rows := summarize(runs, []int{1}, []string{"simple"})
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	r := rows[0]
	near(t, "direct tps", r.Direct.TPS, 1000)
	near(t, "pgwarden tps", r.Pgwarden.TPS, 900)
	near(t, "pgbouncer tps", r.Pgbouncer.TPS, 700)
	near(t, "pgwarden/direct", r.PgwardenPerDirect, 0.9)
	near(t, "pgbouncer/direct", r.PgbouncerPerDirect, 0.7)
	near(t, "pgwarden/pgbouncer", r.PgwardenPerPgbouncer, 900.0/700)
	near(t, "added latency pgwarden", r.AddedLatencyPgwardenUs, 100)   // 1.1 - 1.0 ms
	near(t, "added latency pgbouncer", r.AddedLatencyPgbouncerUs, 400) // 1.4 - 1.0 ms
	if r.Direct.CPUUsPerTx != nil {
		t.Errorf("direct CPU = %v, want none", *r.Direct.CPUUsPerTx)
	}
	near(t, "pgwarden cpu", *r.Pgwarden.CPUUsPerTx, 25)
	near(t, "pgbouncer cpu", *r.Pgbouncer.CPUUsPerTx, 45)
	if r.Pgwarden.Runs != 3 {
		t.Errorf("pgwarden runs = %d, want 3", r.Pgwarden.Runs)
	}

	v := verdicts(rows)
	if len(v) != 1 || !strings.Contains(v[0], "tps ≥ pgbouncer: yes") || !strings.Contains(v[0], "latency ≤ pgbouncer: yes") {
		t.Errorf("verdicts = %q", v)
	}
	var table bytes.Buffer
	writeTable(&table, rows)
	if lines := strings.Split(strings.TrimSpace(table.String()), "\n"); len(lines) != 3 ||
		lines[0] != "| clients | mode | direct tps | pgwarden tps | pgbouncer tps | pgwarden/direct | pgbouncer/direct | pgwarden/pgbouncer | added latency pgwarden (µs) | added latency pgbouncer (µs) | CPU µs/tx pgwarden | CPU µs/tx pgbouncer |" ||
		lines[1] != "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|" ||
		lines[2] != "| 1 | simple | 1000 | 900 | 700 | 0.900 | 0.700 | 1.286 | +100.0 | +400.0 | 25.0 | 45.0 |" {
		t.Errorf("table:\n%s", table.String())
	}

	// Without floor runs, nothing of the floor: not in the row, nor in
	// its JSON (the shape from before the floor), nor in the verdicts.
	if r.Floor != nil || r.FloorPerPgbouncer != nil || r.PgwardenPerFloor != nil || r.AddedLatencyFloorUs != nil || hasFloor(rows) {
		t.Errorf("floor figures without floor runs: %+v", r)
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), "floor") {
		t.Errorf("JSON mentions the floor: %s", js)
	}
}

func TestSummarizeWithFloor(t *testing.T) {
	var runs []runResult
	add := func(round, clients int, target string, tps, lat float64, cpu *float64) {
		runs = append(runs, runResult{Round: round, Clients: clients, Mode: "prepared", Target: target, TPS: tps, LatencyMs: lat, CPUUsPerTx: cpu})
	}
	for _, c := range []int{1, 8} {
		add(1, c, "direct", 1000, 1.0, nil)
		add(1, c, "pgwarden", 880, 1.2, ptr(30))
		add(1, c, "pgbouncer", 1000, 1.1, ptr(20))
		add(1, c, "floor", 990, 1.05, ptr(18))
		add(2, c, "floor", 1010, 1.07, ptr(22))
		add(3, c, "floor", 10, 50, ptr(1000)) // an outlier round
	}
	rows := summarize(runs, []int{1, 8}, []string{"prepared"})
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	r := rows[0]
	if r.Floor == nil || r.FloorPerPgbouncer == nil || r.PgwardenPerFloor == nil || r.AddedLatencyFloorUs == nil {
		t.Fatalf("floor figures missing: %+v", r)
	}
	near(t, "floor tps", r.Floor.TPS, 990)
	near(t, "floor latency", r.Floor.LatencyMs, 1.07)
	near(t, "floor cpu", *r.Floor.CPUUsPerTx, 22)
	near(t, "floor/pgbouncer", *r.FloorPerPgbouncer, 0.99)
	near(t, "pgwarden/floor", *r.PgwardenPerFloor, 880.0/990)
	near(t, "added latency floor", *r.AddedLatencyFloorUs, 70) // 1.07 - 1.0 ms
	if r.Floor.Runs != 3 {
		t.Errorf("floor runs = %d, want 3", r.Floor.Runs)
	}
	// The other figures are as without the floor.
	near(t, "pgwarden/pgbouncer", r.PgwardenPerPgbouncer, 0.88)

	var table bytes.Buffer
	writeTable(&table, rows)
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(lines) != 4 ||
		lines[0] != "| clients | mode | direct tps | pgwarden tps | pgbouncer tps | floor tps | pgwarden/direct | pgbouncer/direct | pgwarden/pgbouncer | floor/pgbouncer | pgwarden/floor | added latency pgwarden (µs) | added latency pgbouncer (µs) | added latency floor (µs) | CPU µs/tx pgwarden | CPU µs/tx pgbouncer | CPU µs/tx floor |" ||
		lines[1] != "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|" ||
		lines[2] != "| 1 | prepared | 1000 | 880 | 1000 | 990 | 0.880 | 1.000 | 0.880 | 0.990 | 0.889 | +200.0 | +100.0 | +70.0 | 30.0 | 20.0 | 22.0 |" {
		t.Errorf("table:\n%s", table.String())
	}

	v := verdicts(rows)
	want := []string{
		"clients=1 mode=prepared: pgwarden tps ≥ pgbouncer: NO (880 vs 1000, ×0.880); pgwarden added latency ≤ pgbouncer: NO (+200.0 vs +100.0 µs)",
		"clients=1 mode=prepared: floor (byte relay, no protocol handling) ×0.990 of pgbouncer; pgwarden ×0.889 of the floor; added latency floor +70.0 µs, pgwarden +200.0 µs",
		"clients=8 mode=prepared: pgwarden tps ≥ pgbouncer: NO (880 vs 1000, ×0.880)",
		"clients=8 mode=prepared: floor (byte relay, no protocol handling) ×0.990 of pgbouncer; pgwarden ×0.889 of the floor",
	}
	if !slices.Equal(v, want) {
		t.Errorf("verdicts:\n%s\nwant:\n%s", strings.Join(v, "\n"), strings.Join(want, "\n"))
	}

	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"floor":{"runs":3,`, `"floor_per_pgbouncer":0.99`, `"pgwarden_per_floor":`, `"added_latency_floor_us":`} {
		if !strings.Contains(string(js), key) {
			t.Errorf("JSON lacks %s: %s", key, js)
		}
	}
}

func TestTableFloorMissingInARow(t *testing.T) {
	// A row without floor runs in a table with the floor's columns shows
	// n/a there rather than zeros.
	rows := []summaryRow{
		{Clients: 1, Mode: "simple", Floor: &stats{Runs: 1, TPS: 5}, FloorPerPgbouncer: ptr(1), PgwardenPerFloor: ptr(1), AddedLatencyFloorUs: ptr(1)},
		{Clients: 8, Mode: "simple"},
	}
	var table bytes.Buffer
	writeTable(&table, rows)
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[3], "| 0 | n/a | 0.000 |") || strings.Count(lines[3], "n/a") != 7 {
		t.Errorf("table:\n%s", table.String())
	}
}

func TestVerdictsOnlyTPSAboveOneClient(t *testing.T) {
	v := verdicts([]summaryRow{{Clients: 8, Mode: "prepared", Pgwarden: stats{TPS: 90}, Pgbouncer: stats{TPS: 100}}})
	if !strings.Contains(v[0], "tps ≥ pgbouncer: NO") || strings.Contains(v[0], "latency") {
		t.Errorf("verdict = %q", v[0])
	}
}

func TestRotate(t *testing.T) {
	ts := []string{"a", "b", "c"}
	for k, want := range [][]string{{"a", "b", "c"}, {"b", "c", "a"}, {"c", "a", "b"}, {"a", "b", "c"}} {
		if got := rotate(ts, k); !slices.Equal(got, want) {
			t.Errorf("rotate(%d) = %v, want %v", k, got, want)
		}
	}
	if !slices.Equal(ts, []string{"a", "b", "c"}) {
		t.Errorf("rotate modified its input")
	}
}

// near fails t unless got is want, up to rounding.
func near(t *testing.T, name string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9 {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}
