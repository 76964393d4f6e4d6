package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// debianPGRoot is where Debian and Ubuntu install versioned server
// binaries (/usr/lib/postgresql/<N>/bin), which are not on PATH by default.
const debianPGRoot = "/usr/lib/postgresql"

// BinDir returns a directory containing executable initdb and postgres
// binaries.
//
// If initdb is on PATH, the directory it lives in is used; when that entry
// is a symbolic link (as with Debian's wrappers in /usr/local/bin), the
// directory of its target is preferred so that companion tools such as
// pg_ctl are found too. Otherwise the highest-numbered
// /usr/lib/postgresql/<N>/bin holding both binaries is used. If neither
// exists the error names every place searched.
func BinDir() (string, error) {
	var searched []string

	if initdb, err := exec.LookPath("initdb"); err == nil {
		if abs, err := filepath.Abs(initdb); err == nil {
			initdb = abs
		}
		var candidates []string
		if real, err := filepath.EvalSymlinks(initdb); err == nil {
			candidates = append(candidates, filepath.Dir(real))
		}
		candidates = append(candidates, filepath.Dir(initdb))
		for _, dir := range candidates {
			if hasServerBinaries(dir) {
				return dir, nil
			}
			searched = append(searched, dir)
		}
	} else {
		searched = append(searched, "PATH (no initdb)")
	}

	dirs, err := versionedBinDirs(debianPGRoot)
	if err != nil {
		searched = append(searched, fmt.Sprintf("%s/<N>/bin (%v)", debianPGRoot, err))
	} else {
		for _, dir := range dirs {
			if hasServerBinaries(dir) {
				return dir, nil
			}
		}
		searched = append(searched, debianPGRoot+"/<N>/bin")
	}
	return "", fmt.Errorf("pgtest: no PostgreSQL server binaries (initdb and postgres) found; searched %s", strings.Join(searched, ", "))
}

// hasServerBinaries reports whether dir holds executable initdb and
// postgres files.
func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// versionedBinDirs lists root/<N>/bin for every version-like entry N of
// root, highest version first.
func versionedBinDirs(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	type ver struct {
		name  string
		parts []int
	}
	var vers []ver
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if parts, ok := parseVersion(e.Name()); ok {
			vers = append(vers, ver{e.Name(), parts})
		}
	}
	slices.SortFunc(vers, func(a, b ver) int { return compareVersion(b.parts, a.parts) })
	dirs := make([]string, len(vers))
	for i, v := range vers {
		dirs[i] = filepath.Join(root, v.name, "bin")
	}
	return dirs, nil
}

// parseVersion parses dotted decimal versions such as "15" or "9.6".
func parseVersion(s string) ([]int, bool) {
	fields := strings.Split(s, ".")
	parts := make([]int, len(fields))
	for i, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, false
		}
		parts[i] = n
	}
	return parts, true
}

// compareVersion compares two parsed versions like strings.Compare.
func compareVersion(a, b []int) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}
