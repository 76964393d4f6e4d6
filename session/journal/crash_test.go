package journal

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/session"
)

const crashChildEnv = "PGWARDEN_JOURNAL_CRASH_CHILD"

// crashScript is the session the child records as its n-th.
func crashScript(n int) []session.Event {
	sqls := make([]string, 40)
	for i := range sqls {
		sqls[i] = fmt.Sprintf("select %d from orders", i)
	}
	return script(sid(n), "alice", t0.Add(time.Duration(n)*time.Second), sqls...)
}

// crashChild records sessions from 4 goroutines, printing "ack <n> <i>"
// once event i of session n is acknowledged, until it is killed.
func crashChild(dir string) {
	j, err := Open(dir, testKey, Options{Logger: quietLog()})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	next := 0
	for range 4 {
		go func() {
			for {
				mu.Lock()
				n := next
				next++
				mu.Unlock()
				for i, ev := range crashScript(n) {
					if err := j.Record(context.Background(), ev); err != nil {
						fmt.Println("error", err)
						os.Exit(2)
					}
					mu.Lock()
					fmt.Printf("ack %d %d\n", n, i)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(time.Minute) // the parent kills the child long before
	os.Exit(3)
}

// A real crash: a process recording sessions is killed (SIGKILL) mid-run,
// a half-written line is added to one of its files, and, as a power loss
// would, another file loses its tail and another one is lost. Open
// restores the files from the write-ahead log, cuts the torn line, seals
// every session left open, and every acknowledged event is in the record.
func TestCrashRecoveryKilled(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if runtime.GOOS == "windows" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("needs a killable child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecoveryKilled$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[int]int{} // session → acknowledged events
	sc := bufio.NewScanner(out)
	total := 0
	killed := false
	for sc.Scan() {
		var n, i int
		if _, err := fmt.Sscanf(sc.Text(), "ack %d %d", &n, &i); err != nil {
			t.Errorf("child: %s", sc.Text())
			continue
		}
		acked[n] = max(acked[n], i+1)
		if total++; total == 500 && !killed {
			cmd.Process.Kill() // SIGKILL: no Close, no deferred code
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatal("the child stopped before it was killed")
	}

	// Add half a line to the file of a session left open.
	var torn string
	for n, k := range acked {
		if k < len(crashScript(n)) {
			p := filepath.Join(dir, sid(n)+ext)
			b, _ := os.ReadFile(p)
			if len(b) > 0 && b[len(b)-1] == '\n' {
				torn = p
				os.WriteFile(p, append(b, `{"session":"`+sid(n)+`","seq":99,"prev":"ab`...), 0o600)
				break
			}
		}
	}
	if torn == "" {
		t.Fatal("no session was left open")
	}
	// And a power loss on top: the sessions' files lose what was never
	// synced (the log's commits were): one open session's file is cut back
	// to its first two lines, one ended session's file is lost.
	var cut, lost string
	for n, k := range acked {
		p := filepath.Join(dir, sid(n)+ext)
		switch {
		case p == torn:
		case cut == "" && k < len(crashScript(n)) && k > 2:
			cut = p
			writeLines(t, p, lines(t, p)[:2])
		case lost == "" && k == len(crashScript(n)):
			lost = p
			os.Remove(p)
		}
	}
	if cut == "" || lost == "" {
		t.Fatalf("no session to cut (%q) or to lose (%q)", cut, lost)
	}

	j := openT(t, dir, Options{}, hooks{})
	ctx := context.Background()
	if b, _ := os.ReadFile(torn); bytes.Contains(b, []byte(`"seq":99`)) || !bytes.HasSuffix(b, []byte("\n")) {
		t.Fatal("the torn line is still there")
	}
	all, err := j.VerifyAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	open := 0
	for n, k := range acked {
		id := sid(n)
		if err := all[id]; err != nil {
			t.Errorf("session %d: %v", n, err)
			continue
		}
		want := crashScript(n)
		got, err := j.Events(ctx, id)
		if err != nil || len(got) < k || jsonOf(t, got) != jsonOf(t, want[:len(got)]) {
			t.Errorf("session %d: %d events (%v), %d acknowledged", n, len(got), err, k)
		}
		rec, err := j.Recovered(ctx, id)
		if err != nil || rec != (len(got) < len(want)) {
			t.Errorf("session %d: Recovered = %v, %v with %d of %d events", n, rec, err, len(got), len(want))
		}
		if rec {
			open++
		}
	}
	t.Logf("%d events acknowledged in %d sessions, %d left open and recovered; %s", total, len(acked), open,
		strings.TrimSpace(strconv.Itoa(len(all))+" files"))
}
