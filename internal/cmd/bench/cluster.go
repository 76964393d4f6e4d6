package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pgwarden/pgwarden/internal/cmd/bench/targets"
	"github.com/pgwarden/pgwarden/internal/pgtest"
)

const (
	// appUser is the database role the benchmark's tables belong to; the
	// proxies log in to PostgreSQL as this role.
	appUser = "bench_app"
	// database is the benchmark database, owned by appUser.
	database = "bench"
)

// startCluster starts a throwaway PostgreSQL cluster, creates appUser
// (with a random password) and database, and returns the direct target
// for appUser.
func startCluster(ctx context.Context) (*pgtest.Cluster, *targets.Target, error) {
	c, err := pgtest.Start(ctx, pgtest.Options{
		Settings: map[string]string{"max_connections": "100"},
	})
	if err != nil {
		return nil, nil, err
	}
	password, err := randomSecret()
	if err != nil {
		return nil, nil, errors.Join(err, c.Stop())
	}
	for _, sql := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD %s", appUser, quoteLiteral(password)),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", database, appUser),
	} {
		if err := c.Exec(ctx, "postgres", sql); err != nil {
			return nil, nil, errors.Join(err, c.Stop())
		}
	}
	direct := targets.Direct(c.Host, c.Port, appUser, password, database, postgresVersion(c.BinDir))
	return c, direct, nil
}

// postgresVersion returns the first line of `postgres --version`.
func postgresVersion(binDir string) string {
	out, err := exec.Command(filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return "postgres (version unknown)"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// quoteLiteral quotes an SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
