package session

import (
	"maps"
	"time"
)

// Info describes one client session. The proxy builds it once the client has
// authenticated and hands the same value to the credential store, the policy
// and the recorder. Plugins must treat it as read-only.
type Info struct {
	// ID is unique among the sessions of a process and hard to guess (it is
	// random); recordings and logs use it.
	ID string
	// Identity is who the session acts for.
	Identity Identity
	// ClientAddr is the client's network address.
	ClientAddr string
	// TLS describes the client-facing TLS connection; nil when the client
	// connected without TLS.
	TLS *TLSInfo
	// User is the user name the client sent in its startup packet. It names
	// the identity to authenticate, never the database role: the upstream
	// role comes from the credential store.
	User string
	// Database is the database the client asked for, canonicalised as the
	// server would (an empty name means the user name).
	Database string
	// ApplicationName is the application_name startup parameter, if any.
	ApplicationName string
	// Params are the startup parameters that were allowed and are forwarded
	// to the server (user and database excluded).
	Params map[string]string
	// UpstreamUser is the database role the gateway logged in as; empty
	// until the credential is known.
	UpstreamUser string
	// Lease names the just-in-time credential's lease, if any.
	Lease string
	// StartedAt is when the client connected.
	StartedAt time.Time
}

// Clone returns a deep copy of info.
func (info *Info) Clone() *Info {
	c := *info
	c.Params = maps.Clone(info.Params)
	c.Identity.Groups = append([]string(nil), info.Identity.Groups...)
	c.Identity.Chain = append([]Actor(nil), info.Identity.Chain...)
	if info.TLS != nil {
		t := *info.TLS
		c.TLS = &t
	}
	return &c
}

// TLSInfo describes a TLS connection.
type TLSInfo struct {
	// Version is the negotiated protocol, for example "TLS 1.3".
	Version string
	// CipherSuite is the negotiated cipher suite's name.
	CipherSuite string
	// ServerName is the name the client asked for (SNI), if any.
	ServerName string
	// PeerSubject is the verified client certificate's subject, if the client
	// presented one that verified.
	PeerSubject string
}
