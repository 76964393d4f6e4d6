package pgtest

import (
	"strconv"
	"strings"
)

// ConnString returns a keyword/value connection string that reaches the
// cluster over TCP (host 127.0.0.1, the cluster's port) with
// sslmode=disable. Every value is single-quoted with backslashes and quotes
// escaped, so arbitrary user names, passwords and database names are safe.
// Empty user, password or database values are omitted, leaving the
// driver's defaults in effect (for the database, the user name).
func (c *Cluster) ConnString(user, password, database string) string {
	return buildDSN([][2]string{
		{"host", c.Host},
		{"port", strconv.Itoa(c.Port)},
		{"user", user},
		{"password", password},
		{"dbname", database},
		{"sslmode", "disable"},
	})
}

// SuperConnString returns [Cluster.ConnString] for the superuser and its
// password. An empty database means "postgres".
func (c *Cluster) SuperConnString(database string) string {
	if database == "" {
		database = "postgres"
	}
	return c.ConnString(c.User, c.Password, database)
}

// TLSConnString returns a keyword/value connection string like
// [Cluster.ConnString] but with host=localhost, sslmode=verify-full and
// sslrootcert=CAFile, so the client verifies the server certificate
// issued by CA. It only connects on clusters started with Options.TLS.
func (c *Cluster) TLSConnString(user, password, database string) string {
	return buildDSN([][2]string{
		{"host", "localhost"},
		{"port", strconv.Itoa(c.Port)},
		{"user", user},
		{"password", password},
		{"dbname", database},
		{"sslmode", "verify-full"},
		{"sslrootcert", c.CAFile},
	})
}

// buildDSN joins non-empty key/value pairs into a keyword/value string.
func buildDSN(pairs [][2]string) string {
	var b strings.Builder
	for _, kv := range pairs {
		if kv[1] == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv[0])
		b.WriteByte('=')
		b.WriteString(quoteDSNValue(kv[1]))
	}
	return b.String()
}

// quoteDSNValue single-quotes v, escaping backslashes and single quotes
// with a backslash, as libpq and pgconn expect.
func quoteDSNValue(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(v) + "'"
}

// quoteIdent quotes an SQL identifier, doubling embedded double quotes.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
