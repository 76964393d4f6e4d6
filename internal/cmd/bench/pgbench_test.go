package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// pgbench15Output is the report of pgbench 15 for a select-only run.
const pgbench15Output = `pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: select only>
scaling factor: 5
query mode: prepared
number of clients: 8
number of threads: 2
maximum number of tries: 1
duration: 10 s
number of transactions actually processed: 123456
number of failed transactions: 0 (0.000%)
latency average = 0.648 ms
initial connection time = 12.345 ms
tps = 12345.678901 (without initial connection time)
`

func TestParsePgbench(t *testing.T) {
	r, err := parsePgbench(pgbench15Output)
	if err != nil {
		t.Fatal(err)
	}
	want := pgbenchResult{TPS: 12345.678901, LatencyMs: 0.648, Transactions: 123456}
	if r != want {
		t.Errorf("got %+v, want %+v", r, want)
	}
}

func TestParsePgbenchOldFormat(t *testing.T) {
	out := `number of transactions actually processed: 5000
latency average = 2.000 ms
tps = 498.1 (including connections establishing)
tps = 500.5 (excluding connections establishing)
`
	r, err := parsePgbench(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.TPS != 500.5 || r.LatencyMs != 2 || r.Transactions != 5000 {
		t.Errorf("got %+v", r)
	}
}

func TestParsePgbenchErrors(t *testing.T) {
	for name, out := range map[string]string{
		"empty":   "",
		"no tps":  strings.Replace(pgbench15Output, "tps = ", "tps: ", 1),
		"failed":  strings.Replace(pgbench15Output, "failed transactions: 0", "failed transactions: 3", 1),
		"nothing": strings.Replace(pgbench15Output, "processed: 123456", "processed: 0", 1),
	} {
		if _, err := parsePgbench(out); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestLoadArgs(t *testing.T) {
	got := load{Clients: 8, Mode: "prepared", Duration: 10 * time.Second}.args()
	want := []string{"-n", "-S", "-M", "prepared", "-c", "8", "-j", "2", "-T", "10"}
	if !slices.Equal(got, want) {
		t.Errorf("args = %q, want %q", got, want)
	}
	got = load{Clients: 1, Mode: "simple", Duration: 3 * time.Second}.args()
	if i := slices.Index(got, "-j"); got[i+1] != "1" {
		t.Errorf("1 client: -j %s, want 1", got[i+1])
	}
}
