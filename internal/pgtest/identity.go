package pgtest

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// serverOSUser is the account initdb and postgres run as when this process
// is root.
const serverOSUser = "postgres"

// identity is the OS account that owns the cluster files and runs the
// server processes.
type identity struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32 // supplementary groups, including gid
	home   string
	// switchUser is true when the server must run under a different uid
	// than this process (i.e. we are root).
	switchUser bool
}

// serverIdentity returns the account to run PostgreSQL as: the "postgres"
// user when running as root, otherwise the current user.
func serverIdentity() (*identity, error) {
	if os.Geteuid() != 0 {
		id := &identity{
			uid:  uint32(os.Geteuid()),
			gid:  uint32(os.Getegid()),
			home: os.Getenv("HOME"),
		}
		if u, err := user.Current(); err == nil {
			id.name = u.Username
			if id.home == "" {
				id.home = u.HomeDir
			}
		}
		id.groups = append(id.groups, id.gid)
		if gs, err := os.Getgroups(); err == nil {
			for _, g := range gs {
				id.groups = append(id.groups, uint32(g))
			}
		}
		return id, nil
	}

	u, err := user.Lookup(serverOSUser)
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root but cannot find the %q OS user to run PostgreSQL as: %w", serverOSUser, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: user %s: bad uid %q: %w", u.Username, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: user %s: bad gid %q: %w", u.Username, u.Gid, err)
	}
	if uid == 0 {
		return nil, fmt.Errorf("pgtest: OS user %q has uid 0; PostgreSQL refuses to run as root", serverOSUser)
	}
	id := &identity{
		name:       u.Username,
		uid:        uint32(uid),
		gid:        uint32(gid),
		groups:     []uint32{uint32(gid)},
		home:       u.HomeDir,
		switchUser: true,
	}
	if gids, err := u.GroupIds(); err == nil {
		for _, g := range gids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil && !slices.Contains(id.groups, uint32(n)) {
				id.groups = append(id.groups, uint32(n))
			}
		}
	}
	return id, nil
}

// credential returns the SysProcAttr credential for child processes, or
// nil when no uid switch is needed.
func (id *identity) credential() *syscall.Credential {
	if !id.switchUser {
		return nil
	}
	return &syscall.Credential{Uid: id.uid, Gid: id.gid, Groups: id.groups}
}

// chown gives path to the identity when it differs from this process.
func (id *identity) chown(path string) error {
	if !id.switchUser {
		return nil
	}
	if err := os.Chown(path, int(id.uid), int(id.gid)); err != nil {
		return fmt.Errorf("pgtest: chown %s to %s: %w", path, id.name, err)
	}
	return nil
}

// env returns the environment for child processes: this process's
// environment without PG* variables (which could redirect the server or
// initdb), with HOME, USER and LOGNAME describing the identity when
// switching users.
func (id *identity) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "PG") {
			continue
		}
		if id.switchUser && (name == "HOME" || name == "USER" || name == "LOGNAME") {
			continue
		}
		env = append(env, kv)
	}
	if id.switchUser {
		home := id.home
		if home == "" {
			home = "/"
		}
		env = append(env, "HOME="+home, "USER="+id.name, "LOGNAME="+id.name)
	}
	return env
}

// canTraverse reports whether the identity may search (execute) every
// directory from dir up to the filesystem root. dir is resolved through
// symbolic links first.
func (id *identity) canTraverse(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return err
	}
	for p := real; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", p)
		}
		if !id.mayExecute(fi) {
			return fmt.Errorf("%s is not traversable by uid %d", p, id.uid)
		}
		if parent := filepath.Dir(p); parent == p {
			return nil
		}
	}
}

// mayExecute applies the classic owner/group/other permission check for
// the execute (search) bit.
func (id *identity) mayExecute(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fi.Mode().Perm()&0o001 != 0
	}
	mode := fi.Mode().Perm()
	switch {
	case id.uid == 0:
		return true
	case st.Uid == id.uid:
		return mode&0o100 != 0
	case slices.Contains(id.groups, st.Gid):
		return mode&0o010 != 0
	default:
		return mode&0o001 != 0
	}
}
