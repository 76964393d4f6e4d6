// Package pgtest runs throwaway PostgreSQL clusters for tests, benchmarks
// and the demo.
//
// [Start] initialises a fresh cluster with initdb in a new temporary
// directory, runs the postgres server binary directly as a child process on
// a free loopback TCP port, and waits until it accepts connections. The
// superuser (named [Superuser]) authenticates with SCRAM-SHA-256 using a
// random password; pg_hba.conf is written by this package so tests know
// exactly which rules apply. [Cluster.Stop] shuts the server down and
// removes every file.
//
// For tests, [New] ties a cluster to a testing.TB and [Main] shares one
// cluster across a package from TestMain. A missing PostgreSQL installation
// is reported as a failure, never a skip.
//
// # Running as root
//
// PostgreSQL refuses to run as root. When the process runs with effective
// uid 0, initdb and postgres are run as the "postgres" OS user, and the
// cluster directory is created under a temporary directory that user can
// traverse, then chowned to it.
//
// # Cleanup guarantees
//
// The server is started with a parent-death signal (SIGQUIT, PostgreSQL's
// immediate shutdown) on Linux, so a test binary that is killed does not
// leave a running server behind. Each cluster directory records its owner's
// pid in a file named owner.pid; every Start sweeps directories whose owner
// is gone, killing any server still running there and removing the files.
// Directories owned by live processes are never touched.
package pgtest
