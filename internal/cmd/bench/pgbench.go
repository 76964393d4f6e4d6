package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgwarden/pgwarden/internal/cmd/bench/targets"
)

// pgbench runs the pgbench binary that ships with the PostgreSQL server in
// use (or the one on PATH).
type pgbench struct {
	path string
}

// findPgbench prefers binDir/pgbench, the client matching the server.
func findPgbench(binDir string) (*pgbench, error) {
	if p := filepath.Join(binDir, "pgbench"); isExecutable(p) {
		return &pgbench{path: p}, nil
	}
	p, err := exec.LookPath("pgbench")
	if err != nil {
		return nil, fmt.Errorf("pgbench not found in %s or on PATH: %w", binDir, err)
	}
	return &pgbench{path: p}, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// version returns the first line of `pgbench --version`.
func (p *pgbench) version() string {
	out, err := exec.Command(p.path, "--version").Output()
	if err != nil {
		return p.path
	}
	line, _, _ := bytes.Cut(out, []byte("\n"))
	return strings.TrimSpace(string(line))
}

// run runs pgbench with args against t (connection options and database
// name are added here; the password travels in PGPASSWORD) and returns its
// combined output. The child has its own process group, so that a Ctrl-C
// in the terminal is handled by this program alone; it is killed when ctx
// ends or when this program dies.
func (p *pgbench) run(ctx context.Context, t *targets.Target, args ...string) (string, error) {
	full := slices.Concat(args, []string{"-h", t.Host, "-p", strconv.Itoa(t.Port), "-U", t.User, t.Database})
	cmd := exec.CommandContext(ctx, p.path, full...)
	cmd.Env = append(targets.CleanEnv(),
		"PGPASSWORD="+t.Password, "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.String(), ctx.Err()
	}
	if err != nil {
		return out.String(), fmt.Errorf("pgbench %s against %s: %w\n%s", strings.Join(args, " "), t.Name, err, tail(out.String(), 15))
	}
	return out.String(), nil
}

// initialize runs `pgbench -i -s scale -q` against t.
func (p *pgbench) initialize(ctx context.Context, t *targets.Target, scale int) error {
	_, err := p.run(ctx, t, "-i", "-s", strconv.Itoa(scale), "-q")
	return err
}

// load is one pgbench select-only measurement.
type load struct {
	Clients  int
	Mode     string // pgbench -M: simple, extended or prepared
	Duration time.Duration
}

// args returns the pgbench arguments for l: no vacuum, select-only, at
// most two threads (the machine this was written for has two cores).
func (l load) args() []string {
	secs := int((l.Duration + time.Second - 1) / time.Second)
	return []string{
		"-n", "-S",
		"-M", l.Mode,
		"-c", strconv.Itoa(l.Clients),
		"-j", strconv.Itoa(min(l.Clients, 2)),
		"-T", strconv.Itoa(max(secs, 1)),
	}
}

// measure runs l against t and parses the result.
func (p *pgbench) measure(ctx context.Context, t *targets.Target, l load) (pgbenchResult, error) {
	out, err := p.run(ctx, t, l.args()...)
	if err != nil {
		return pgbenchResult{}, err
	}
	res, err := parsePgbench(out)
	if err != nil {
		return res, fmt.Errorf("pgbench against %s: %w\n%s", t.Name, err, tail(out, 15))
	}
	return res, nil
}

// pgbenchResult is what the benchmark takes from pgbench's report.
type pgbenchResult struct {
	TPS          float64
	LatencyMs    float64
	Transactions int64
	Failed       int64
}

var (
	tpsRE     = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)\)`)
	latencyRE = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
	txRE      = regexp.MustCompile(`(?m)^number of transactions actually processed: ([0-9]+)`)
	failedRE  = regexp.MustCompile(`(?m)^number of failed transactions: ([0-9]+)`)
)

// parsePgbench extracts the throughput, average latency and transaction
// counts from pgbench's report. It understands the lines of pgbench 14
// and later ("without initial connection time") and of older versions
// ("excluding connections establishing").
func parsePgbench(out string) (pgbenchResult, error) {
	var r pgbenchResult
	var errs []error
	float := func(re *regexp.Regexp, what string) float64 {
		m := re.FindStringSubmatch(out)
		if m == nil {
			errs = append(errs, fmt.Errorf("no %s line", what))
			return 0
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("bad %s %q", what, m[1]))
		}
		return v
	}
	r.TPS = float(tpsRE, "tps")
	r.LatencyMs = float(latencyRE, "latency average")
	r.Transactions = int64(float(txRE, "transactions processed"))
	if m := failedRE.FindStringSubmatch(out); m != nil {
		r.Failed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if r.Failed > 0 {
		errs = append(errs, fmt.Errorf("%d failed transactions", r.Failed))
	}
	if len(errs) == 0 && (r.TPS <= 0 || r.Transactions <= 0) {
		errs = append(errs, errors.New("no transactions were processed"))
	}
	return r, errors.Join(errs...)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
