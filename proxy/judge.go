package proxy

import (
	"time"

	"github.com/pgwarden/pgwarden/internal/analysis"
	"github.com/pgwarden/pgwarden/internal/judge"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// analyzer returns the proxy's analyzer, made on first use.
func (p *Proxy) analyzer() *analysis.Analyzer {
	p.analyzerOnce.Do(func() {
		lim := p.Limits.effective()
		p.analysis = analysis.New(analysis.Limits{MaxBytes: lim.MaxStatementSize}, lim.AnalysisCacheSize)
	})
	return p.analysis
}

// judge analyses a statement and asks the policy about it at stage. It
// fails closed: an analysis error, a missing policy, a policy error or an
// abstention refuses the statement. On an allowed Query or Parse, the
// session's names are updated.
func (s *clientSession) judge(st *statement, stage policy.Stage, params []policy.Param) policy.Decision {
	if st.protocol == session.ProtocolFunctionCall {
		st.analysis = []*policy.Statement{analysis.FunctionCall(st.fnOID)}
		if d, refused := judge.GatewaySettings(st.analysis); refused {
			return d
		}
	} else if stage != policy.StageBind {
		sts, err := s.p.analyzer().Analyze(st.sql)
		if err != nil {
			d := judge.AnalysisRefusal(err)
			if st.withheld = s.withheldUnparsed(st.sql); st.withheld != "" {
				// The parser's reason quotes the text near the error.
				d.Reason = "The gateway cannot analyse this statement; its text is not kept, as it may carry a credential."
			}
			return d
		}
		st.withheld = s.withheldText(st.sql, sts)
		if d, refused := judge.GatewaySettings(sts); refused {
			return d
		}
		st.analysis = sts
	}
	sts, overlay := s.names.Resolve(st.analysis, s.info.UpstreamUser)
	// The contract lets the policy see q only during the call, so one per
	// session will do.
	q := &s.query
	*q = policy.Query{Session: s.info, Protocol: st.protocol, Stage: stage, Time: time.Now(), SQL: st.sql,
		Statements: sts, StatementName: st.name, Params: params, FunctionOID: st.fnOID, SearchPath: overlay.SearchPath}
	if stage == policy.StageBind {
		q.Portal = st.portal
	}
	d, err := judge.Decide(s.ctx, s.p.Policy, q)
	d = judge.Enforced(d)
	*q = policy.Query{}
	if err != nil {
		s.log.Error("pgwarden: policy failed; statement refused", "err", err, "seq", st.seq)
	}
	if d.Verdict == policy.Approve && stage == policy.StageParse {
		// Preparing runs nothing: the Bind that would run it, with its
		// parameters, is what a person approves.
		d = policy.Decision{Verdict: policy.Allow, Rule: d.Rule,
			Reason: "Prepared; running it needs a person's approval (asked at Bind, with its parameters)."}
	}
	if (d.Verdict == policy.Allow || d.Verdict == policy.Approve) && stage != policy.StageBind && s.masking != nil {
		if md, refused := s.judgeMasks(st, sts); refused {
			s.log.Info("pgwarden: statement refused for masking", "rule", md.Rule, "seq", st.seq)
			return md
		}
	}
	switch {
	case d.Verdict == policy.Allow && stage != policy.StageBind:
		s.names = overlay
	case d.Verdict == policy.Approve && stage != policy.StageBind:
		// Applied once approved. A copy: taking overlay's own address
		// would move it to the heap on every call.
		approved := overlay
		st.approvalNames = &approved
	}
	return d
}

// protocolStatement returns what the statement a Parse prepared under
// name is, for SQL EXECUTE (see judge.Names.Protocol): every definition
// the name may still have.
func (s *clientSession) protocolStatement(name string) []*policy.Statement {
	var defs []*policy.Statement
	for st := resolvePrev(s.statements[name]); st != nil; st = resolvePrev(st.prev) {
		defs = append(defs, st.analysis...)
	}
	return defs
}
