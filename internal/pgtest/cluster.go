package pgtest

import (
	"net"
	"strconv"
	"sync"

	"github.com/pgwarden/pgwarden/internal/testcert"
)

// Superuser is the name of the bootstrap superuser of every cluster.
const Superuser = "pgwarden_admin"

// Cluster is a running throwaway PostgreSQL cluster created by [Start].
//
// The exported fields describe the cluster and must be treated as read-only.
// All methods are safe for concurrent use.
type Cluster struct {
	// Dir is the temporary root holding everything below; Stop removes it.
	Dir string
	// DataDir is the cluster's data directory (PGDATA), inside Dir.
	DataDir string
	// SocketDir is the directory of the server's Unix-domain socket.
	SocketDir string
	// Host is the TCP address the server listens on: always "127.0.0.1".
	Host string
	// Port is the free TCP port chosen when the server started.
	Port int
	// User is the superuser name (Superuser).
	User string
	// Password is the superuser's random SCRAM password.
	Password string
	// CA is the authority that signed the server certificate; nil unless
	// Options.TLS was set.
	CA *testcert.Authority
	// CAFile is the path of CA's certificate in PEM form, for clients
	// (sslrootcert); empty unless Options.TLS was set.
	CAFile string
	// BinDir is the directory the initdb and postgres binaries came from.
	BinDir string

	id      *identity
	logPath string
	srv     *server // the running postmaster; nil before launch

	pickPort func() (int, error) // chooses the port for each launch attempt

	stopOnce sync.Once
	stopErr  error

	mu       sync.Mutex
	finalLog []byte // log contents captured by Stop before removing Dir
}

// Addr returns the server's TCP address as "127.0.0.1:PORT".
func (c *Cluster) Addr() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// PID returns the process id of the postmaster, or 0 if it never started.
// After Stop the process is gone and the pid may be reused by the system.
func (c *Cluster) PID() int {
	if c.srv == nil {
		return 0
	}
	return c.srv.cmd.Process.Pid
}
