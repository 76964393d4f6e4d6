package pgtest

import (
	"os"
	"testing"
)

// shared is the cluster started by TestMain through Main.
var shared *Cluster

func TestMain(m *testing.M) {
	if os.Getenv(orphanHelperEnv) != "" {
		os.Exit(runOrphanHelper())
	}
	os.Exit(Main(m, Options{Database: "shared db"}, &shared))
}
