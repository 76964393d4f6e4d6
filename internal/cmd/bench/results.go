package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// resultsDir is where the JSON results go, relative to the working
// directory (git-ignored).
const resultsDir = "bench-results"

// results is the JSON record of a benchmark run.
type results struct {
	StartedAt  time.Time         `json:"started_at"`
	FinishedAt time.Time         `json:"finished_at"`
	Settings   settings          `json:"settings"`
	Software   map[string]string `json:"software"`
	Host       host              `json:"host"`
	Runs       []runResult       `json:"runs"`
	Summary    []summaryRow      `json:"summary"`
	Verdicts   []string          `json:"verdicts"`
}

// settings are the parameters of the run.
type settings struct {
	Duration string   `json:"duration"`
	Rounds   int      `json:"rounds"`
	Scale    int      `json:"scale"`
	Clients  []int    `json:"clients"`
	Modes    []string `json:"modes"`
	Pgwarden string   `json:"pgwarden"`
	// Floor is set when the floor (the byte relay) was measured too.
	Floor bool `json:"floor,omitempty"`
}

// host describes the machine.
type host struct {
	CPUs      int    `json:"cpus"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	GoVersion string `json:"go_version"`
}

// writeResults writes r as indented JSON to bench-results/<timestamp>.json
// and returns the path.
func writeResults(r *results) (string, error) {
	if err := os.MkdirAll(resultsDir, 0o755); err != nil {
		return "", fmt.Errorf("results: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("results: %w", err)
	}
	path := filepath.Join(resultsDir, r.StartedAt.UTC().Format("20060102T150405Z")+".json")
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("results: %w", err)
	}
	return path, nil
}
