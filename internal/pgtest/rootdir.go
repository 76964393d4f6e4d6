package pgtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	// rootDirPrefix prefixes every cluster root created by this package;
	// the stale sweep only considers directories with this prefix.
	rootDirPrefix = "pgwarden-pg-"
	// ownerPIDFile, inside a cluster root, holds the pid of the process
	// that created it.
	ownerPIDFile = "owner.pid"
	// maxSocketPath is the longest Unix-domain socket path Linux accepts
	// (sizeof(sun_path) - 1).
	maxSocketPath = 107
	// socketName is the longest socket file name PostgreSQL creates.
	socketName = ".s.PGSQL.65535"
)

// tempParents lists the candidate parents for cluster roots, in order of
// preference and without duplicates.
func tempParents() []string {
	var out []string
	for _, d := range []string{os.TempDir(), "/tmp", "/var/tmp"} {
		if d == "" {
			continue
		}
		d = filepath.Clean(d)
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// chooseTempParent returns the first candidate parent whose every ancestor
// the server identity can traverse.
func chooseTempParent(id *identity) (string, error) {
	var reasons []string
	for _, parent := range tempParents() {
		if err := id.canTraverse(parent); err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v", parent, err))
			continue
		}
		return parent, nil
	}
	return "", fmt.Errorf("pgtest: no temporary directory usable by uid %d: %s", id.uid, strings.Join(reasons, "; "))
}

// makeRootDir creates a fresh cluster root in parent, records this
// process as its owner and hands it to the server identity.
func makeRootDir(parent string, id *identity) (string, error) {
	dir, err := os.MkdirTemp(parent, rootDirPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("pgtest: create cluster directory: %w", err)
	}
	if err := setupRootDir(dir, id); err != nil {
		return "", errors.Join(err, os.RemoveAll(dir))
	}
	return dir, nil
}

func setupRootDir(dir string, id *identity) error {
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := os.WriteFile(filepath.Join(dir, ownerPIDFile), pid, 0o644); err != nil {
		return fmt.Errorf("pgtest: write owner pid: %w", err)
	}
	if n := len(filepath.Join(dir, "sock", socketName)); n > maxSocketPath {
		return fmt.Errorf("pgtest: cluster directory %s is too deep for a Unix socket path (%d > %d bytes)", dir, n, maxSocketPath)
	}
	return id.chown(dir)
}
