package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const (
	// dataDirName is the data directory's name inside the cluster root.
	dataDirName = "data"
	// initdbTimeout bounds a single initdb run.
	initdbTimeout = 2 * time.Minute
)

// randomPassword returns 24 URL-safe random characters (144 bits).
func randomPassword() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("pgtest: generate password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// initdb creates the data directory with SCRAM authentication for the
// superuser, using the C.UTF-8 locale or, where that is missing, C. The
// password file exists only while initdb runs.
func (c *Cluster) initdb(ctx context.Context) error {
	pwFile := filepath.Join(c.Dir, "pwfile")
	if err := os.WriteFile(pwFile, []byte(c.Password+"\n"), 0o600); err != nil {
		return fmt.Errorf("pgtest: write password file: %w", err)
	}
	defer os.Remove(pwFile)
	if err := c.id.chown(pwFile); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, initdbTimeout)
	defer cancel()

	var failures []string
	for _, locale := range []string{"C.UTF-8", "C"} {
		cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, "initdb"),
			"-D", c.DataDir,
			"--auth=scram-sha-256",
			"--username="+c.User,
			"--pwfile="+pwFile,
			"--encoding=UTF8",
			"--locale="+locale,
			"-N",
		)
		cmd.Dir = c.Dir
		cmd.Env = c.id.env()
		cmd.SysProcAttr = serverProcAttr(c.id)
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = &out
		err := cmd.Run()
		if err == nil {
			return nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("pgtest: initdb: %w", errors.Join(ctxErr, err))
		}
		failures = append(failures, fmt.Sprintf("--locale=%s: %v\n%s", locale, err, strings.TrimSpace(out.String())))
		// initdb normally cleans up after itself; make sure the next
		// attempt starts from an empty slate.
		if err := os.RemoveAll(c.DataDir); err != nil {
			return fmt.Errorf("pgtest: initdb cleanup: %w", err)
		}
	}
	return fmt.Errorf("pgtest: initdb failed:\n%s", strings.Join(failures, "\n"))
}

// writeHBA replaces pg_hba.conf: the caller's lines first, then SCRAM for
// every local and loopback connection.
func (c *Cluster) writeHBA(extra []string) error {
	var b strings.Builder
	b.WriteString("# Written by pgwarden internal/pgtest.\n")
	for _, line := range extra {
		b.WriteString(line)
		b.WriteByte('\n')
	}
	b.WriteString("local all all scram-sha-256\n")
	b.WriteString("host all all 127.0.0.1/32 scram-sha-256\n")
	b.WriteString("host all all ::1/128 scram-sha-256\n")
	return c.writeDataFile("pg_hba.conf", []byte(b.String()), 0o600)
}

// writeDataFile writes a file into the data directory, owned by the
// server identity with the given mode.
func (c *Cluster) writeDataFile(name string, data []byte, perm os.FileMode) error {
	path := filepath.Join(c.DataDir, name)
	if err := os.WriteFile(path, data, perm); err != nil {
		return fmt.Errorf("pgtest: write %s: %w", name, err)
	}
	if err := os.Chmod(path, perm); err != nil {
		return fmt.Errorf("pgtest: chmod %s: %w", name, err)
	}
	return c.id.chown(path)
}
