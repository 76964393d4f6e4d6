package proxy

// OpenTelemetry traces and metrics of sessions and statements (see the
// Telemetry section of the package documentation).
//
// Nothing here may cost the relay when telemetry is off: statement spans
// are only made when the session's span records, attribute sets are built
// once per Proxy, and byte counts are added up per relayed batch, not per
// message.

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgwarden/pgwarden/policy"
)

// instrumentationName names the tracer and the meter.
const instrumentationName = "github.com/pgwarden/pgwarden/proxy"

// Span and attribute names of pgwarden's own (the others are OpenTelemetry's
// semantic conventions).
const (
	sessionSpanName = "pgwarden.session"

	attrSessionID      = attribute.Key("pgwarden.session.id")
	attrIssuer         = attribute.Key("pgwarden.identity.issuer")
	attrChain          = attribute.Key("pgwarden.chain")
	attrChainDepth     = attribute.Key("pgwarden.chain.depth")
	attrAuthMethod     = attribute.Key("pgwarden.auth.method")
	attrUpstreamUser   = attribute.Key("pgwarden.upstream.user")
	attrEndReason      = attribute.Key("pgwarden.session.end_reason")
	attrStatementCount = attribute.Key("pgwarden.session.statements")
	attrDecision       = attribute.Key("pgwarden.decision")
	attrRule           = attribute.Key("pgwarden.rule")
	attrStage          = attribute.Key("pgwarden.stage")
	attrSeq            = attribute.Key("pgwarden.statement.seq")
	attrDirection      = attribute.Key("direction")
)

// maxNormalizedCache bounds the cache of normalized statement texts, in
// bytes of text; texts longer than maxNormalizedText are not cached.
const (
	maxNormalizedCache = 4 << 20
	maxNormalizedText  = 8 << 10
)

// maxOperationNames bounds the attribute sets of the duration histogram
// made per db.operation.name (statement commands are a bounded set; this
// is a backstop).
const maxOperationNames = 512

// durationBuckets are the histogram boundaries OpenTelemetry's database
// conventions recommend for db.client.operation.duration, in seconds.
var durationBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}

// stages indexes the judging stages for the precomputed attribute sets.
var stages = [...]policy.Stage{policy.StageQuery, policy.StageParse, policy.StageBind, policy.StageFunctionCall}

// telemetry is a Proxy's tracer and instruments, made once (see
// Proxy.telemetry).
type telemetry struct {
	tracer trace.Tracer

	statements  metric.Int64Counter
	duration    metric.Float64Histogram
	active      metric.Int64UpDownCounter
	sessions    metric.Int64Counter
	bytes       metric.Int64Counter
	maskedCells metric.Int64Counter
	approvals   metric.Int64UpDownCounter

	// Attribute sets made once, so that recording allocates nothing.
	statementOpts [policy.Terminate + 1][len(stages)][]metric.AddOption
	upOpts        []metric.AddOption
	downOpts      []metric.AddOption
	durationOpts  atomic.Pointer[map[string][]metric.RecordOption] // by db.operation.name, copied on write
	durationMu    sync.Mutex                                       // serialises writers of durationOpts

	normalize  func(string) (string, error)
	normMu     sync.Mutex
	normalized map[string]string // statement text to its normalized text ("" when it has none)
	normBytes  int               // the text in normalized
}

// telemetry returns the proxy's telemetry, made on first use from
// TracerProvider and MeterProvider.
func (p *Proxy) telemetry() *telemetry {
	p.telemetryOnce.Do(func() {
		tp, mp := p.TracerProvider, p.MeterProvider
		if tp == nil {
			tp = otel.GetTracerProvider()
		}
		if mp == nil {
			mp = otel.GetMeterProvider()
		}
		p.tel = newTelemetry(tp, mp, p.analyzer().Normalize, p.logger())
	})
	return p.tel
}

func newTelemetry(tp trace.TracerProvider, mp metric.MeterProvider, normalize func(string) (string, error), log *slog.Logger) *telemetry {
	t := &telemetry{
		tracer:     tp.Tracer(instrumentationName, trace.WithSchemaURL(semconv.SchemaURL)),
		normalize:  normalize,
		normalized: map[string]string{},
	}
	m := mp.Meter(instrumentationName, metric.WithSchemaURL(semconv.SchemaURL))
	noop := metricnoop.Meter{}
	failed := func(name string, err error) {
		log.Warn("pgwarden: telemetry instrument not available", "instrument", name, "err", err)
	}
	var err error
	if t.statements, err = m.Int64Counter("pgwarden.statements", metric.WithUnit("{statement}"),
		metric.WithDescription("Statements judged by the gateway, by decision and stage.")); err != nil {
		failed("pgwarden.statements", err)
		t.statements, _ = noop.Int64Counter("")
	}
	if t.duration, err = m.Float64Histogram("db.client.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of statements through the gateway, from their judgement to their completion."),
		metric.WithExplicitBucketBoundaries(durationBuckets...)); err != nil {
		failed("db.client.operation.duration", err)
		t.duration, _ = noop.Float64Histogram("")
	}
	if t.active, err = m.Int64UpDownCounter("pgwarden.sessions.active", metric.WithUnit("{session}"),
		metric.WithDescription("Sessions running.")); err != nil {
		failed("pgwarden.sessions.active", err)
		t.active, _ = noop.Int64UpDownCounter("")
	}
	if t.sessions, err = m.Int64Counter("pgwarden.sessions", metric.WithUnit("{session}"),
		metric.WithDescription("Sessions ended, by end reason.")); err != nil {
		failed("pgwarden.sessions", err)
		t.sessions, _ = noop.Int64Counter("")
	}
	if t.bytes, err = m.Int64Counter("pgwarden.bytes", metric.WithUnit("By"),
		metric.WithDescription("Protocol bytes relayed, by direction.")); err != nil {
		failed("pgwarden.bytes", err)
		t.bytes, _ = noop.Int64Counter("")
	}
	if t.maskedCells, err = m.Int64Counter("pgwarden.masked_cells", metric.WithUnit("{cell}"),
		metric.WithDescription("Result cells masked.")); err != nil {
		failed("pgwarden.masked_cells", err)
		t.maskedCells, _ = noop.Int64Counter("")
	}
	if t.approvals, err = m.Int64UpDownCounter("pgwarden.approvals.pending", metric.WithUnit("{statement}"),
		metric.WithDescription("Statements waiting for approval.")); err != nil {
		failed("pgwarden.approvals.pending", err)
		t.approvals, _ = noop.Int64UpDownCounter("")
	}

	for v := range t.statementOpts {
		for i, stage := range stages {
			t.statementOpts[v][i] = addOpts(attrDecision.String(policy.Verdict(v).String()), attrStage.String(string(stage)))
		}
	}
	t.upOpts = addOpts(attrDirection.String("client_to_server"))
	t.downOpts = addOpts(attrDirection.String("server_to_client"))
	t.durationOpts.Store(&map[string][]metric.RecordOption{})
	return t
}

func addOpts(kv ...attribute.KeyValue) []metric.AddOption {
	return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
}

// countStatement counts a judged statement.
func (t *telemetry) countStatement(ctx context.Context, v policy.Verdict, stage policy.Stage) {
	if v >= 0 && int(v) < len(t.statementOpts) {
		for i, s := range stages {
			if s == stage {
				t.statements.Add(ctx, 1, t.statementOpts[v][i]...)
				return
			}
		}
	}
	t.statements.Add(ctx, 1, addOpts(attrDecision.String(v.String()), attrStage.String(string(stage)))...)
}

// recordDuration records a statement's duration. Failed statements carry
// their SQLSTATE; their attribute set is made each time (errors are not the
// hot path).
func (t *telemetry) recordDuration(ctx context.Context, d time.Duration, operation, code string) {
	secs := d.Seconds()
	if code != "" {
		kv := []attribute.KeyValue{semconv.DBSystemNamePostgreSQL, semconv.DBResponseStatusCode(code),
			semconv.ErrorTypeKey.String(code)}
		if operation != "" {
			kv = append(kv, semconv.DBOperationName(operation))
		}
		t.duration.Record(ctx, secs, metric.WithAttributeSet(attribute.NewSet(kv...)))
		return
	}
	opts, ok := (*t.durationOpts.Load())[operation]
	if !ok {
		opts = t.addOperation(operation)
	}
	t.duration.Record(ctx, secs, opts...)
}

// addOperation makes the duration's attribute set for an operation name.
func (t *telemetry) addOperation(operation string) []metric.RecordOption {
	t.durationMu.Lock()
	defer t.durationMu.Unlock()
	old := *t.durationOpts.Load()
	if opts, ok := old[operation]; ok {
		return opts
	}
	kv := []attribute.KeyValue{semconv.DBSystemNamePostgreSQL}
	if operation != "" {
		kv = append(kv, semconv.DBOperationName(operation))
	}
	opts := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	if len(old) >= maxOperationNames {
		return opts
	}
	m := make(map[string][]metric.RecordOption, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[operation] = opts
	t.durationOpts.Store(&m)
	return opts
}

// normalizedText returns the statement's text with its literals replaced
// (see analysis.Analyzer.Normalize), or "" when it cannot be normalized:
// then no text is shown at all.
func (t *telemetry) normalizedText(sql string) string {
	if sql == "" {
		return ""
	}
	if len(sql) <= maxNormalizedText {
		t.normMu.Lock()
		n, ok := t.normalized[sql]
		t.normMu.Unlock()
		if ok {
			return n
		}
	}
	n, err := t.normalize(sql)
	if err != nil {
		n = ""
	}
	if len(sql) <= maxNormalizedText {
		t.normMu.Lock()
		if t.normBytes+len(sql)+len(n) > maxNormalizedCache {
			clear(t.normalized)
			t.normBytes = 0
		}
		if _, ok := t.normalized[sql]; !ok {
			t.normalized[sql] = n
			t.normBytes += len(sql) + len(n)
		}
		t.normMu.Unlock()
	}
	return n
}

// sessionTelemetry is a session's part of telemetry.
type sessionTelemetry struct {
	t *telemetry
	// ctx carries the session's span: statement spans are its children,
	// and metric exemplars point to it.
	ctx  context.Context
	span trace.Span // nil before start
	// tracing is set when the session's span records: only then are
	// statement spans made.
	tracing bool
	started bool // counted in pgwarden.sessions.active
	// Bytes relayed and not yet counted, each written by one relay.
	up, down int64
	masked   int64 // cells masked since the last flush (backend relay)
	// portals holds, by portal, what a judged Bind started, until the
	// Execute of the portal takes it (backend relay).
	portals byName[opTelemetry]
	// fatal is the SQLSTATE of a FATAL the server sent (backend relay).
	fatal string
}

// opTelemetry follows a request that carries a judged statement, from the
// judgement to the server's answer (see clientSession.telDone).
type opTelemetry struct {
	start time.Time  // when the statement was judged; zero: not followed
	span  trace.Span // nil unless the session is traced
	name  string     // db.operation.name
	rows  int64
	code  string // the SQLSTATE of the first error
}

// abandon ends the span of a request the server will not answer.
func (ot *opTelemetry) abandon(why string) {
	if ot.span != nil {
		ot.span.SetStatus(codes.Error, why)
		ot.span.End()
	}
	*ot = opTelemetry{}
}

// telInit readies the session's telemetry (before its start).
func (s *clientSession) telInit() {
	s.tel.t = s.p.telemetry()
	s.tel.ctx = context.Background()
}

// telStart counts the session as active and starts its span, from the
// client's connection.
func (s *clientSession) telStart() {
	t := s.tel.t
	t.active.Add(s.tel.ctx, 1)
	s.tel.started = true
	ctx, span := t.tracer.Start(context.Background(), sessionSpanName,
		trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(s.info.StartedAt),
		trace.WithAttributes(s.sessionAttributes()...))
	s.tel.span = span
	if span.IsRecording() {
		s.tel.ctx, s.tel.tracing = ctx, true
	}
}

// sessionAttributes describes the session: who, from where, to which
// database and server. Never a credential.
func (s *clientSession) sessionAttributes() []attribute.KeyValue {
	id := s.info.Identity
	chain := make([]string, 0, 1+len(id.Chain))
	chain = append(chain, id.Subject)
	for _, a := range id.Chain {
		chain = append(chain, a.Subject)
	}
	kv := []attribute.KeyValue{
		semconv.DBSystemNamePostgreSQL,
		semconv.DBNamespace(s.info.Database),
		attrSessionID.String(s.info.ID),
		semconv.EnduserID(id.Subject),
		attrIssuer.String(id.Issuer),
		attrAuthMethod.String(id.Method),
		attrChainDepth.Int(id.Depth()),
		attrChain.String(strings.Join(chain, " > ")),
		attrUpstreamUser.String(s.info.UpstreamUser),
	}
	if host, port, ok := splitHostPort(s.info.ClientAddr); ok {
		kv = append(kv, semconv.NetworkPeerAddress(host), semconv.NetworkPeerPort(port))
	}
	if host, port, ok := splitHostPort(s.p.Upstream.Address); ok {
		kv = append(kv, semconv.ServerAddress(host), semconv.ServerPort(port))
	} else if s.p.Upstream.Address != "" {
		kv = append(kv, semconv.ServerAddress(s.p.Upstream.Address)) // a Unix socket
	}
	return kv
}

func splitHostPort(addr string) (string, int, bool) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, false
	}
	return host, port, true
}

// telStatement counts a judged statement, and starts its span when the
// session is traced. start is when its judgement began. The result goes
// with the request that carries the statement to the server.
func (s *clientSession) telStatement(st *statement, stage policy.Stage, d policy.Decision, start time.Time) opTelemetry {
	t := s.tel.t
	t.countStatement(s.tel.ctx, d.Verdict, stage)
	ot := opTelemetry{start: start, name: operationName(st.analysis)}
	if !s.tel.tracing {
		return ot
	}
	collection := collectionName(st.analysis)
	name := ot.name
	switch {
	case name == "":
		name = "postgresql"
	case collection != "":
		name += " " + collection
	}
	kv := make([]attribute.KeyValue, 0, 12)
	kv = append(kv, semconv.DBSystemNamePostgreSQL, semconv.DBNamespace(s.info.Database),
		attrDecision.String(d.Verdict.String()), attrStage.String(string(stage)))
	if ot.name != "" {
		kv = append(kv, semconv.DBOperationName(ot.name), semconv.DBQuerySummary(name))
	}
	if collection != "" {
		kv = append(kv, semconv.DBCollectionName(collection))
	}
	if len(st.analysis) > 1 {
		kv = append(kv, semconv.DBOperationBatchSize(len(st.analysis)))
	}
	if text := t.normalizedText(st.shownSQL()); text != "" {
		kv = append(kv, semconv.DBQueryText(text))
	}
	if d.Rule != "" {
		kv = append(kv, attrRule.String(d.Rule))
	}
	if st.seq != 0 {
		kv = append(kv, attrSeq.Int64(st.seq))
	}
	_, ot.span = t.tracer.Start(s.tel.ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(start), trace.WithAttributes(kv...))
	return ot
}

// operationName is db.operation.name: the statement's command (SELECT,
// INSERT, CREATE TABLE, ...), for several "BATCH" followed by their command
// when they share it.
func operationName(sts []*policy.Statement) string {
	switch len(sts) {
	case 0:
		return ""
	case 1:
		return sts[0].Command
	}
	for _, st := range sts[1:] {
		if st.Command != sts[0].Command {
			return "BATCH"
		}
	}
	return "BATCH " + sts[0].Command
}

// collectionName is db.collection.name: the first table the statements
// name, schema-qualified as written.
func collectionName(sts []*policy.Statement) string {
	for _, st := range sts {
		for x := st; x != nil; x = x.Inner {
			if len(x.Written) > 0 {
				return x.Written[0].String()
			}
			if len(x.Reads) > 0 {
				return x.Reads[0].String()
			}
		}
	}
	return ""
}

// telResult notes a command's result (CommandComplete, an empty query, a
// suspended portal or an error) on the request it answers.
func (s *clientSession) telResult(o *op, rows int64, code string) {
	if o.tel.start.IsZero() {
		return
	}
	o.tel.rows += rows
	if o.tel.code == "" {
		o.tel.code = code
	}
}

// telDone ends what a request followed, once the server answered it: the
// duration is recorded (but not for a Parse that succeeded, a preparation
// rather than a run), and the span ends, with the SQLSTATE of an error.
func (s *clientSession) telDone(o *op) {
	ot := &o.tel
	if ot.start.IsZero() {
		return
	}
	if ot.code != "" || o.kind != opParse {
		s.tel.t.recordDuration(s.tel.ctx, time.Since(ot.start), ot.name, ot.code)
	}
	if ot.span != nil {
		if o.kind != opParse {
			ot.span.SetAttributes(semconv.DBResponseReturnedRows(int(ot.rows)))
		}
		if ot.code != "" {
			// The SQLSTATE only: messages may quote values.
			ot.span.SetAttributes(semconv.DBResponseStatusCode(ot.code), semconv.ErrorTypeKey.String(ot.code))
			ot.span.SetStatus(codes.Error, ot.code)
		}
		ot.span.End()
	}
	*ot = opTelemetry{}
}

// telBound keeps what a judged Bind started for the Execute of its portal.
func (s *clientSession) telBound(o *op) {
	if o.tel.start.IsZero() {
		return
	}
	if prev, ok := s.tel.portals.get(o.portal); ok {
		prev.abandon("the portal was replaced before it ran")
	}
	s.tel.portals.set(o.portal, o.tel)
	o.tel = opTelemetry{}
}

// telExecute gives an Execute what the Bind of its portal started. A
// portal run again (after PortalSuspended) is not followed again.
func (s *clientSession) telExecute(o *op) {
	if s.tel.portals.len() == 0 {
		return
	}
	if ot, ok := s.tel.portals.get(o.portal); ok {
		o.tel = ot
		s.tel.portals.delete(o.portal)
	}
}

// telPortalsClosed ends what Binds started for portals that were never
// run, when the server drops its portals.
func (s *clientSession) telPortalsClosed() {
	for _, ot := range s.tel.portals.all() {
		ot.abandon("the portal was closed before it ran")
	}
	s.tel.portals.clear()
}

// telFlushUp counts the bytes the frontend relay forwarded since the last
// time.
func (s *clientSession) telFlushUp() {
	if s.tel.up > 0 {
		s.tel.t.bytes.Add(s.tel.ctx, s.tel.up, s.tel.t.upOpts...)
		s.tel.up = 0
	}
}

// telFlushDown counts the bytes the backend relay forwarded since the last
// time.
func (s *clientSession) telFlushDown() {
	if s.tel.down > 0 {
		s.tel.t.bytes.Add(s.tel.ctx, s.tel.down, s.tel.t.downOpts...)
		s.tel.down = 0
	}
	if s.tel.masked > 0 {
		s.tel.t.maskedCells.Add(s.tel.ctx, s.tel.masked)
		s.tel.masked = 0
	}
}

// telFinish ends the session's telemetry, after both relays returned:
// requests left unanswered, the bytes not yet counted, the session's span
// (an error when the session ended with a FATAL) and its counts.
func (s *clientSession) telFinish() {
	s.pipe.abandonAll("the session ended before the server answered")
	s.telPortalsClosed()
	s.telFlushUp()
	s.telFlushDown()
	if !s.tel.started {
		return
	}
	t := s.tel.t
	t.active.Add(s.tel.ctx, -1)
	t.sessions.Add(s.tel.ctx, 1, metric.WithAttributes(attrEndReason.String(string(s.reason))))
	span := s.tel.span
	if !s.tel.tracing {
		span.End()
		return
	}
	span.SetAttributes(attrEndReason.String(string(s.reason)), attrStatementCount.Int64(s.seq.Load()))
	code := s.tel.fatal
	if s.endFatal != nil {
		code = s.endFatal.Code
	}
	if code != "" || s.endFatal != nil {
		span.SetAttributes(semconv.DBResponseStatusCode(code), semconv.ErrorTypeKey.String(code))
		span.SetStatus(codes.Error, "FATAL "+code)
	}
	span.End()
}

// abandonAll ends the spans of the requests still queued (the session is
// over).
func (p *pipeline) abandonAll(why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.n {
		p.ring[(p.head+i)%len(p.ring)].tel.abandon(why)
	}
}

// telApprovalPending counts a statement starting (1) or ending (-1) its
// wait for approval.
func (s *clientSession) telApprovalPending(n int64) {
	s.tel.t.approvals.Add(s.tel.ctx, n)
}
