// Command bench measures the pgwarden gateway against a direct PostgreSQL
// connection, against pgbouncer and against a byte relay (the floor), in
// the same run, and prints ratios.
//
// Run it from the module root (make bench does):
//
//	go run ./internal/cmd/bench -pgwarden bin/pgwarden
//
// It starts a throwaway PostgreSQL cluster (internal/pgtest), loads it with
// `pgbench -i` (scale -scale), and puts two proxies in front of it: the
// pgwarden binary (`pgwarden serve`, built from ./examples/gateway if the
// -pgwarden file does not exist) with one static user, one credential and
// an allow-all policy; and pgbouncer in session pooling mode. Clients of
// both proxies log in with SCRAM-SHA-256 as the same user, and both proxies
// log in to PostgreSQL as the same role; there is no TLS anywhere.
//
// The third proxy, the floor (-floor, on by default), is this program
// itself run as `bench forward` (see forward.go): a relay of bytes with no
// protocol handling, on the gateway's own event loop (internal/evloop)
// with the gateway's shard count and socket options. Clients log in
// through it to PostgreSQL directly, as the database role. It shows what
// relaying bytes in Go on that loop costs, apart from what understanding
// every message costs: pgwarden/floor is the price of the protocol
// handling, floor/pgbouncer that of the relay itself.
//
// Then `pgbench -n -S` (select-only: one primary-key SELECT per
// transaction, the workload where a proxy's overhead shows most) runs
// against each target for every combination of -clients and -modes (pgbench
// -M: simple or extended/prepared protocol), for -duration each, -rounds
// times. Within a round the targets run back to back for each
// combination, in an order that rotates from one combination to the next.
// A short warm-up per target and mode comes first.
//
// # Reading the results
//
// Everything — PostgreSQL, the proxy under test, pgbench — shares the same
// machine (the reference machine has 2 cores), so a proxy competes with the
// database and the client for CPU: the ratios measure overhead on a loaded
// host, not a proxy's capacity on its own cores. Each figure is the median
// over rounds, which makes one disturbed run harmless; compare the rounds
// in the JSON file when figures look odd.
//
//   - tps: transactions per second (pgbench, without connection time).
//   - pgwarden/direct, pgbouncer/direct: the fraction of direct throughput
//     kept through each proxy; pgwarden/pgbouncer above 1 means pgwarden is
//     faster.
//   - floor/pgbouncer, pgwarden/floor (when the floor runs): the byte
//     relay against pgbouncer, and pgwarden against the byte relay.
//   - added latency: the proxy's average latency minus the direct one, in
//     microseconds. At 1 client it is the cost of the extra hop per
//     round trip; at more clients it also includes queueing for the CPU.
//   - CPU µs/tx: user+system CPU time of the proxy process during its runs
//     (/proc/<pid>/stat, clock-tick resolution) per transaction: the work
//     the proxy does, independent of how the CPU was shared.
//
// A verdict line per row says whether pgwarden's throughput is at least
// pgbouncer's and, at 1 client, whether its added latency is at most
// pgbouncer's; when the floor runs, a second line per row gives the
// floor's throughput as a fraction of pgbouncer's and pgwarden's as a
// fraction of the floor's. The raw per-round runs and the summary are
// written to bench-results/<timestamp>.json.
//
// pgbouncer must be installed (Debian: apt-get install pgbouncer); when run
// as root, bench installs it if missing, and runs it as the postgres OS
// user since pgbouncer refuses to run as root. On SIGINT or SIGTERM, and at
// the end, every child process is stopped and every temporary directory
// removed (-keep keeps the proxies' directories, with their configurations
// and logs, for debugging).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgwarden/pgwarden/internal/cmd/bench/targets"
)

// clientUser is the user pgbench logs in to the proxies as.
const clientUser = "bench"

// options are the command-line flags.
type options struct {
	pgwarden string
	duration time.Duration
	rounds   int
	scale    int
	clients  []int
	modes    []string
	procs    int
	keep     bool
	policy   string
	record   bool
	floor    bool
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs the benchmark and returns the exit code: 0, 1 on failure,
// 2 for bad flags, 128+n after signal n. With "forward" as its first
// argument it runs the floor's byte forwarder instead (see forwardMain).
func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "forward" {
		return forwardMain(args[1:], stdout, stderr)
	}
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return 2
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig, ok := <-sigs
		if !ok {
			return
		}
		fmt.Fprintf(stderr, "bench: %v: stopping and cleaning up (again to abort at once)\n", sig)
		// A second signal kills this program; the children still get their
		// parent-death signals.
		signal.Reset(syscall.SIGINT, syscall.SIGTERM)
		cancel(signalError{sig})
	}()

	err = run(ctx, opts, stdout, stderr)
	signal.Stop(sigs)
	close(sigs)
	var se signalError
	if errors.As(context.Cause(ctx), &se) {
		if s, ok := se.sig.(syscall.Signal); ok {
			return 128 + int(s)
		}
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

// signalError is the cancellation cause when a signal arrives.
type signalError struct{ sig os.Signal }

func (e signalError) Error() string { return "interrupted by " + e.sig.String() }

// parseFlags parses and checks the command line.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.pgwarden, "pgwarden", "bin/pgwarden", "pgwarden `binary`; built from ./examples/gateway if it does not exist")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each pgbench run (whole seconds)")
	fs.IntVar(&o.rounds, "rounds", 3, "number of rounds; each figure is the median over rounds")
	fs.IntVar(&o.scale, "scale", 5, "pgbench scale factor")
	clients := fs.String("clients", "1,8", "comma-separated pgbench client counts")
	modes := fs.String("modes", "simple,prepared", "comma-separated pgbench query modes (simple, extended, prepared)")
	fs.IntVar(&o.procs, "pgwarden-procs", 0, "GOMAXPROCS for pgwarden (0: Go's default, one per core; 1 matches pgbouncer's single thread)")
	fs.StringVar(&o.policy, "policy", "rules", "pgwarden's policy: rules (read-only and block rules: every statement analysed) or allow (allow-all)")
	fs.BoolVar(&o.record, "recording", false, "record every pgwarden session to a file store (write-ahead, group commit)")
	fs.BoolVar(&o.floor, "floor", true, "also measure the floor: a byte relay with no protocol handling on pgwarden's event loop")
	fs.BoolVar(&o.keep, "keep", false, "keep the proxies' temporary directories (configs, logs)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	fail := func(format string, a ...any) (options, error) {
		err := fmt.Errorf(format, a...)
		fmt.Fprintf(stderr, "bench: %v\n", err)
		fs.Usage()
		return o, err
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	if o.duration < time.Second || o.duration%time.Second != 0 {
		return fail("-duration must be a whole number of seconds, at least 1s")
	}
	if o.policy != "rules" && o.policy != "allow" {
		return fail("-policy must be rules or allow")
	}
	if o.rounds < 1 || o.scale < 1 {
		return fail("-rounds and -scale must be at least 1")
	}
	for _, f := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 90 {
			return fail("-clients: %q is not a client count between 1 and 90", f)
		}
		o.clients = append(o.clients, n)
	}
	for _, f := range strings.Split(*modes, ",") {
		m := strings.TrimSpace(f)
		if !slices.Contains([]string{"simple", "extended", "prepared"}, m) {
			return fail("-modes: %q is not simple, extended or prepared", m)
		}
		o.modes = append(o.modes, m)
	}
	return o, nil
}

// run sets everything up, measures, reports, and tears everything down in
// reverse order whatever happens.
func run(ctx context.Context, o options, stdout, stderr io.Writer) (err error) {
	started := time.Now()
	var cleanups []func() error
	defer func() {
		var errs []error
		for _, c := range slices.Backward(cleanups) {
			errs = append(errs, c())
		}
		if cerr := errors.Join(errs...); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
	}()
	step := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }

	step("starting PostgreSQL")
	cluster, direct, err := startCluster(ctx)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, cluster.Stop)
	defer func() {
		if err != nil && ctx.Err() == nil {
			fmt.Fprintf(stderr, "PostgreSQL log tail:\n%s\n", cluster.LogTail(20))
		}
	}()
	pgb, err := findPgbench(cluster.BinDir)
	if err != nil {
		return err
	}
	step("loading pgbench data at scale %d", o.scale)
	if err := pgb.initialize(ctx, direct, o.scale); err != nil {
		return err
	}

	clientPassword, err := randomSecret()
	if err != nil {
		return err
	}
	step("starting pgwarden")
	pgw, err := targets.StartPgwarden(ctx, targets.PgwardenOptions{
		Binary: o.pgwarden, Upstream: cluster.Addr(),
		User: clientUser, Password: clientPassword,
		DBUser: direct.User, DBPassword: direct.Password,
		Database: database, Procs: o.procs, Rules: o.policy == "rules", Recording: o.record, Progress: stderr,
	})
	if err != nil {
		return err
	}
	cleanups = append(cleanups, closer(pgw, o.keep, stderr))
	step("starting pgbouncer")
	pgbouncer, err := targets.StartPgbouncer(ctx, targets.PgbouncerOptions{
		ServerHost: cluster.Host, ServerPort: cluster.Port,
		User: clientUser, Password: clientPassword,
		DBUser: direct.User, DBPassword: direct.Password,
		Database: database, Progress: stderr,
	})
	if err != nil {
		return err
	}
	cleanups = append(cleanups, closer(pgbouncer, o.keep, stderr))
	measured := []*targets.Target{direct, pgw, pgbouncer}
	var floor *targets.Target
	if o.floor {
		step("starting the floor (byte relay)")
		floor, err = targets.StartForwarder(ctx, targets.ForwarderOptions{
			Upstream: cluster.Addr(),
			User:     direct.User, Password: direct.Password, Database: direct.Database,
			Procs: o.procs,
		})
		if err != nil {
			return err
		}
		cleanups = append(cleanups, closer(floor, o.keep, stderr))
		measured = append(measured, floor)
	}
	var addrs []string
	for _, t := range measured {
		addrs = append(addrs, t.Name+" "+t.Addr())
	}
	step("%s", strings.Join(addrs, ", "))

	m := &measurement{
		pgbench:  pgb,
		targets:  measured,
		clients:  o.clients,
		modes:    o.modes,
		duration: o.duration,
		rounds:   o.rounds,
		progress: stderr,
	}
	if err := m.warmUp(ctx); err != nil {
		return err
	}
	runs, err := m.run(ctx)
	if err != nil {
		return err
	}

	rows := summarize(runs, o.clients, o.modes)
	res := &results{
		StartedAt:  started,
		FinishedAt: time.Now(),
		Settings: settings{
			Duration: o.duration.String(), Rounds: o.rounds, Scale: o.scale,
			Clients: o.clients, Modes: o.modes, Pgwarden: o.pgwarden, Floor: o.floor,
		},
		Software: map[string]string{
			"postgres":  direct.Software,
			"pgbench":   pgb.version(),
			"pgwarden":  pgw.Software,
			"pgbouncer": pgbouncer.Software,
		},
		Host:     host{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, GoVersion: runtime.Version()},
		Runs:     runs,
		Summary:  rows,
		Verdicts: verdicts(rows),
	}
	compared := "pgwarden vs direct vs pgbouncer"
	software := []string{direct.Software, pgw.Software, pgbouncer.Software}
	if floor != nil {
		res.Software["floor"] = floor.Software
		compared += " vs floor"
		software = append(software, floor.Software)
	}
	software = append(software, res.Software["pgbench"])
	fmt.Fprintf(stdout, "\n%s: pgbench -n -S, scale %d, %v per run, median of %d round(s), %d CPUs shared by all\n",
		compared, o.scale, o.duration, o.rounds, runtime.NumCPU())
	fmt.Fprintf(stdout, "(%s)\n\n", strings.Join(software, "; "))
	writeTable(stdout, rows)
	fmt.Fprintln(stdout)
	if hasFloor(rows) {
		fmt.Fprintf(stdout, "%s\n\n", floorNote)
	}
	for _, v := range res.Verdicts {
		fmt.Fprintf(stdout, "- %s\n", v)
	}
	path, err := writeResults(res)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nraw results: %s\n", path)
	return nil
}

// closer returns the cleanup for t, telling where its files are when they
// are kept.
func closer(t *targets.Target, keep bool, stderr io.Writer) func() error {
	return func() error {
		if keep && t.Dir() != "" {
			fmt.Fprintf(stderr, "kept %s files in %s\n", t.Name, t.Dir())
		}
		return t.Close(keep)
	}
}

// randomSecret returns 32 random hexadecimal characters (128 bits): safe
// unquoted in every configuration format used here.
func randomSecret() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}
