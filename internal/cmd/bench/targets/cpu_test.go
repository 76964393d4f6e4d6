package targets

import (
	"os"
	"testing"
)

func TestParseStatCPUTicks(t *testing.T) {
	// A command name with spaces and a ')' must not shift the fields.
	stat := "4242 (pg (x) bouncer) S 1 4242 4242 0 -1 4194560 900 0 0 0 " +
		"123 45 0 0 20 0 1 0 1000 10000000 500 18446744073709551615\n"
	got, err := parseStatCPUTicks([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if got != 168 {
		t.Errorf("ticks = %d, want 168", got)
	}
	if _, err := parseStatCPUTicks([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("short stat: no error")
	}
}

func TestProcessCPUTimeSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := processCPUTime(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}
