package pgtest

// Options configures a cluster created by [Start], [New] or [Main]. The zero
// value is a plain cluster without TLS.
type Options struct {
	// TLS turns on ssl=on with a server certificate for 127.0.0.1 and
	// localhost signed by a fresh testcert.Authority, exposed as
	// Cluster.CA and written to Cluster.CAFile.
	TLS bool
	// HBA holds extra pg_hba.conf lines, placed BEFORE the default rules
	// (so they take precedence). Each entry must be a single line.
	HBA []string
	// Settings holds extra server settings, passed as -c name=value after
	// the package defaults (so they may override them).
	Settings map[string]string
	// Database, if set, names a database that is created (owned by the
	// superuser) after the server has started.
	Database string
}
