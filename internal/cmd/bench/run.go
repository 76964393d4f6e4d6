package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/pgwarden/pgwarden/internal/cmd/bench/targets"
)

// runResult is one pgbench run against one target.
type runResult struct {
	Round   int    `json:"round"` // 1-based
	Clients int    `json:"clients"`
	Mode    string `json:"mode"`
	Target  string `json:"target"`
	// Position is the run's place (0, 1, 2, …) among the targets measured
	// back to back for this round, clients and mode.
	Position     int     `json:"position"`
	TPS          float64 `json:"tps"`
	LatencyMs    float64 `json:"latency_ms"`
	Transactions int64   `json:"transactions"`
	// CPUSeconds is the CPU time (user+system) the proxy process used
	// during the run, and CPUUsPerTx that time per transaction; both are
	// absent for the direct target.
	CPUSeconds *float64 `json:"cpu_seconds,omitempty"`
	CPUUsPerTx *float64 `json:"cpu_us_per_tx,omitempty"`
}

// measurement is the plan of pgbench runs.
type measurement struct {
	pgbench  *pgbench
	targets  []*targets.Target // direct, pgwarden, pgbouncer and, with -floor, the floor
	clients  []int
	modes    []string
	duration time.Duration
	rounds   int
	progress io.Writer
}

// warmUp runs a short load per target and mode before measuring: it fills
// caches and checks that every combination works before the long part.
func (m *measurement) warmUp(ctx context.Context) error {
	d := min(m.duration, 2*time.Second)
	for _, mode := range m.modes {
		for _, t := range m.targets {
			res, err := m.pgbench.measure(ctx, t, load{Clients: slices.Max(m.clients), Mode: mode, Duration: d})
			if err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
			fmt.Fprintf(m.progress, "warm-up: mode=%s target=%s: %.0f tps\n", mode, t.Name, res.TPS)
		}
	}
	return nil
}

// run performs every round. Within a round, for each (clients, mode) the
// targets run back to back, in an order that rotates from one line to the
// next, so that slow drifts of the machine (other load, thermal limits,
// caches) spread over all targets rather than favouring one position.
func (m *measurement) run(ctx context.Context) ([]runResult, error) {
	var results []runResult
	line := 0
	for round := 1; round <= m.rounds; round++ {
		for _, clients := range m.clients {
			for _, mode := range m.modes {
				order := rotate(m.targets, line)
				line++
				for pos, t := range order {
					l := load{Clients: clients, Mode: mode, Duration: m.duration}
					r, err := m.one(ctx, t, l)
					if err != nil {
						return results, err
					}
					r.Round, r.Position = round, pos
					results = append(results, r)
					fmt.Fprintf(m.progress, "round %d/%d: clients=%d mode=%s target=%s: %.0f tps, latency %.3f ms%s\n",
						round, m.rounds, clients, mode, t.Name, r.TPS, r.LatencyMs, cpuNote(r))
				}
			}
		}
	}
	return results, nil
}

// one runs l against t, measuring the CPU time of t's process around it.
func (m *measurement) one(ctx context.Context, t *targets.Target, l load) (runResult, error) {
	var cpuBefore time.Duration
	if t.HasProcess() {
		var err error
		if cpuBefore, err = t.CPUTime(); err != nil {
			return runResult{}, err
		}
	}
	res, err := m.pgbench.measure(ctx, t, l)
	if err != nil {
		if tail := t.LogTail(10); tail != "" {
			err = fmt.Errorf("%w\n%s log tail:\n%s", err, t.Name, tail)
		}
		return runResult{}, err
	}
	r := runResult{
		Clients: l.Clients, Mode: l.Mode, Target: t.Name,
		TPS: res.TPS, LatencyMs: res.LatencyMs, Transactions: res.Transactions,
	}
	if t.HasProcess() {
		cpuAfter, err := t.CPUTime()
		if err != nil {
			return runResult{}, err
		}
		secs := (cpuAfter - cpuBefore).Seconds()
		perTx := secs * 1e6 / float64(res.Transactions)
		r.CPUSeconds, r.CPUUsPerTx = &secs, &perTx
	}
	return r, nil
}

// rotate returns ts rotated left by k.
func rotate[T any](ts []T, k int) []T {
	if len(ts) == 0 {
		return nil
	}
	k %= len(ts)
	out := make([]T, 0, len(ts))
	out = append(out, ts[k:]...)
	return append(out, ts[:k]...)
}

// cpuNote formats a run's proxy CPU use for the progress line.
func cpuNote(r runResult) string {
	if r.CPUUsPerTx == nil {
		return ""
	}
	return fmt.Sprintf(", proxy CPU %.1f µs/tx", *r.CPUUsPerTx)
}
