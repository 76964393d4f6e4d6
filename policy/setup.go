package policy

// Setup is what the policies ask of a session's upstream connection before
// its first statement.
type Setup struct {
	// ReadOnly starts the upstream session with
	// default_transaction_read_only on, so that the server itself refuses
	// writes the gateway cannot see (inside functions, DO blocks, ...).
	ReadOnly bool
}

// SessionSetup is implemented by policies that need something of the
// upstream session (see Setup). The combinators and When pass the call
// on. SetupSession must only ever turn settings on, never off, so that
// one policy cannot undo another's setup.
type SessionSetup interface {
	// SetupSession turns on in s what the session q describes needs.
	SetupSession(q *Query, s *Setup)
}

// SetupFor returns the setup p asks for a session, given q made of the
// session and the time (no statements).
func SetupFor(p Policy, q *Query) Setup {
	var s Setup
	setupOf(p, q, &s)
	return s
}

func setupOf(p Policy, q *Query, s *Setup) {
	if ss, ok := p.(SessionSetup); ok {
		ss.SetupSession(q, s)
	}
}
