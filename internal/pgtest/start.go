package pgtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Start creates and starts a new cluster described by opts, and returns
// once the server accepts superuser connections over TCP (and the optional
// database exists).
//
// ctx bounds start-up only (initdb, readiness wait, database creation);
// the server keeps running after ctx ends until [Cluster.Stop]. Readiness is
// awaited for at most 30 seconds regardless of ctx. Before creating the
// cluster, Start sweeps stale clusters left by dead processes in the same
// temporary directory. On any error, everything Start created is removed
// and the error includes the tail of the server log when there is one.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	return startCluster(ctx, opts, freePort)
}

// startCluster implements Start with a replaceable port picker, so tests
// can provoke port clashes.
func startCluster(ctx context.Context, opts Options, pickPort func() (int, error)) (*Cluster, error) {
	if err := validateOptions(opts); err != nil {
		return nil, err
	}
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	id, err := serverIdentity()
	if err != nil {
		return nil, err
	}
	parent, err := chooseTempParent(id)
	if err != nil {
		return nil, err
	}
	// Best effort: a stale directory we cannot remove (for example one
	// owned by another user) must not stop us.
	_ = sweepStale(parent)

	password, err := randomPassword()
	if err != nil {
		return nil, err
	}
	dir, err := makeRootDir(parent, id)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		Dir:       dir,
		DataDir:   filepath.Join(dir, dataDirName),
		SocketDir: filepath.Join(dir, "sock"),
		Host:      "127.0.0.1",
		User:      Superuser,
		Password:  password,
		BinDir:    binDir,
		id:        id,
		logPath:   filepath.Join(dir, "postgres.log"),
		pickPort:  pickPort,
	}
	if err := c.start(ctx, opts); err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	return c, nil
}

// start performs the steps of Start after the root directory exists.
func (c *Cluster) start(ctx context.Context, opts Options) error {
	if err := c.initdb(ctx); err != nil {
		return err
	}
	if err := c.writeHBA(opts.HBA); err != nil {
		return err
	}
	if err := os.Mkdir(c.SocketDir, 0o700); err != nil {
		return fmt.Errorf("pgtest: create socket directory: %w", err)
	}
	if err := c.id.chown(c.SocketDir); err != nil {
		return err
	}
	logFile, err := os.OpenFile(c.logPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("pgtest: create server log: %w", err)
	}
	if err := logFile.Close(); err != nil {
		return fmt.Errorf("pgtest: create server log: %w", err)
	}
	if err := c.id.chown(c.logPath); err != nil {
		return err
	}

	settings := baseSettings()
	if opts.TLS {
		tlsSettings, err := c.setupTLS()
		if err != nil {
			return err
		}
		settings = append(settings, tlsSettings...)
	}
	for _, name := range slices.Sorted(maps.Keys(opts.Settings)) {
		settings = append(settings, name+"="+opts.Settings[name])
	}

	if err := c.launch(ctx, settings); err != nil {
		return err
	}
	if opts.Database != "" {
		if err := c.Exec(ctx, "postgres", "CREATE DATABASE "+quoteIdent(opts.Database)); err != nil {
			return fmt.Errorf("pgtest: create database %q: %w", opts.Database, err)
		}
	}
	return nil
}

// validateOptions rejects options that cannot be passed through safely.
func validateOptions(opts Options) error {
	for i, line := range opts.HBA {
		if strings.ContainsAny(line, "\r\n") {
			return fmt.Errorf("pgtest: Options.HBA[%d] contains a line break", i)
		}
	}
	for name, value := range opts.Settings {
		if name == "" || strings.ContainsAny(name, "= \t\r\n") {
			return fmt.Errorf("pgtest: invalid setting name %q", name)
		}
		if strings.ContainsRune(value, 0) {
			return fmt.Errorf("pgtest: setting %s contains a NUL byte", name)
		}
	}
	if strings.ContainsRune(opts.Database, 0) {
		return errors.New("pgtest: Options.Database contains a NUL byte")
	}
	return nil
}
