package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgwarden/pgwarden/internal/judge"
	"github.com/pgwarden/pgwarden/internal/lineage"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// opKind is a client request that the server answers.
type opKind uint8

const (
	opQuery        opKind = iota + 1 // Query: answered up to ReadyForQuery
	opParse                          // ParseComplete
	opBind                           // BindComplete
	opDescribe                       // [ParameterDescription] RowDescription | NoData
	opExecute                        // rows, then CommandComplete | EmptyQueryResponse | PortalSuspended
	opClose                          // CloseComplete
	opSync                           // ReadyForQuery
	opFunctionCall                   // FunctionCallResponse, then ReadyForQuery
	opCopyEnd                        // CopyDone or CopyFail: no answer of its own
)

var opNames = [...]string{opQuery: "Query", opParse: "Parse", opBind: "Bind", opDescribe: "Describe",
	opExecute: "Execute", opClose: "Close", opSync: "Sync", opFunctionCall: "FunctionCall", opCopyEnd: "CopyDone"}

func (k opKind) String() string {
	if int(k) < len(opNames) && opNames[k] != "" {
		return opNames[k]
	}
	return "op?"
}

// extended reports whether an error answering k makes the server skip the
// client's messages up to the next Sync.
func (k opKind) extended() bool {
	return k == opParse || k == opBind || k == opDescribe || k == opExecute || k == opClose
}

// portal is an open portal: the statement bound, the statement event of
// the Bind that opened it (0 when not recorded), and the result formats the
// Bind asked for (kept only when the statement is masked).
type portal struct {
	stmt    *statement
	seq     int64
	formats []int16
}

// statement is a statement the client sent, as judged. Its fields are
// immutable once it is forwarded, so both relay directions may hold it;
// only parse changes, once, when the server answers its Parse.
type statement struct {
	seq      int64
	protocol session.Protocol
	sql      string
	name     string
	fnOID    uint32
	// paramTypes are the parameter types a Parse declared.
	paramTypes []uint32
	// portal is the portal a judged Bind creates.
	portal   string
	decision policy.Decision
	// analysis is the statement's analysis, once judged.
	analysis []*policy.Statement
	// parse is the outcome of a Parse: parsePending until the server
	// answers, then parseOK or parseFailed (an error, or skipped after an
	// earlier error).
	parse atomic.Int32
	// prev is the statement of the same name whose Parse was still pending
	// when this one was sent: the server keeps whichever succeeds first.
	prev *statement
	// masks are the mask plans of the analysed statements (nil when the
	// statement returns nothing masked; see masking.go); maskTouched is set
	// when it reads masked columns anywhere.
	masks       []*lineage.Plan
	maskTouched bool
	// rowDesc is what the server described of a masked Parse's result
	// (the gateway asks, see injectDescribe); only the backend relay
	// touches it.
	rowDesc   []pgproto3.FieldDescription
	described bool
	// approvalNames are the names the statement changes, applied once it
	// is approved (see approval.go); refusedCode is the SQLSTATE of its
	// refusal when not 42501.
	approvalNames *judge.Names
	refusedCode   string
	// withheld, when set, is the text recordings, approval requests and
	// spans get instead of sql, which may carry a credential (see
	// withheldText).
	withheld string
}

// shownSQL is the statement's text as the gateway may keep or show it.
func (st *statement) shownSQL() string {
	if st.withheld != "" {
		return st.withheld
	}
	return st.sql
}

// Outcomes of a Parse.
const (
	parsePending int32 = iota
	parseOK
	parseFailed
)

// op is one client request awaiting the server's answer. The frontend relay
// fills it before forwarding the request; from then on only the backend
// relay touches it.
type op struct {
	kind opKind
	// stmt is the statement a Query, Parse or FunctionCall is about, or
	// that a Bind binds (nil when the client named a statement it never
	// prepared: the server will refuse it). An Execute learns it from the
	// portal, when the server answers.
	stmt *statement
	// portal names the portal a Bind creates, an Execute runs, or a Close
	// (with closesPortal) closes.
	portal       string
	closesPortal bool
	// refused is set when the gateway replaced the request by one that the
	// server is certain to reject, to refuse the statement in place: the
	// server's error is rewritten into the refusal, with refusedCode as
	// its SQLSTATE when set (42501 otherwise).
	refused     *policy.Decision
	refusedCode string
	// sent is when the request was forwarded.
	sent time.Time
	// seq is a Bind's own statement event, and for the Execute of its
	// portal, that Bind's (ResultEvent.Bind).
	seq int64
	// rows counts DataRows of the current command.
	rows int64
	// copyIn is set once the server entered COPY FROM STDIN (or COPY BOTH)
	// for this request.
	copyIn bool
	// verify, on a Query the gateway sent itself, collects the answer
	// (see barrier); nothing of it reaches the client.
	verify *verification
	// tel follows a judged statement for telemetry, from its judgement to
	// its answer (see telemetry.go).
	tel opTelemetry
	// Masking (see masking.go): formats are a masked Bind's result
	// formats; describes is the statement a Describe the gateway sent
	// itself is about (its answer does not reach the client); result is
	// the index of the statement a Query's current result belongs to;
	// cells mask the current result's columns (nil: raw rows), once
	// cellsBuilt.
	formats    []int16
	describes  *statement
	result     int
	cells      []*cellMask
	cellsBuilt bool
	copyOut    *copyMask // masks the rows of a COPY TO STDOUT
}

// pipeline is the queue of requests awaiting answers, in the order the
// client sent them: the frontend relay pushes, the backend relay pops.
type pipeline struct {
	mu     sync.Mutex
	space  sync.Cond // signalled when ops are popped or the pipeline closes
	ring   []*op
	head   int
	n      int
	free   []*op
	max    int // 0: unbounded
	closed bool
}

func newPipeline(max int) *pipeline {
	p := &pipeline{ring: make([]*op, 64), max: max}
	p.space.L = &p.mu
	return p
}

// copyEndSlack is how far past MaxPipeline CopyDone and CopyFail may go.
const copyEndSlack = 4

// tryPush appends a request unless the pipeline is full; it reports whether
// it did. On false the caller must flush what it forwarded (so the server
// can answer) and call pushWait.
func (p *pipeline) tryPush(o op) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	limit := p.max
	if o.kind == opCopyEnd {
		// CopyDone or CopyFail is what lets the server answer the COPY:
		// waiting for room to forward it would wait for ever when the
		// pipeline is full of requests queued behind the COPY. A few
		// places beyond the limit, so that a client sending them outside
		// COPY still cannot grow the pipeline without bound.
		limit += copyEndSlack
	}
	if p.max > 0 && p.n >= limit && !p.closed {
		return false
	}
	p.pushLocked(o)
	return true
}

// pushWait appends a request, waiting for room. It returns false if the
// pipeline was closed.
func (p *pipeline) pushWait(o op) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	limit := p.max
	if o.kind == opCopyEnd {
		limit += copyEndSlack
	}
	for p.max > 0 && p.n >= limit && !p.closed {
		p.space.Wait()
	}
	if p.closed {
		return false
	}
	p.pushLocked(o)
	return true
}

func (p *pipeline) pushLocked(o op) {
	if p.n == len(p.ring) {
		grown := make([]*op, 2*len(p.ring))
		for i := range p.n {
			grown[i] = p.ring[(p.head+i)%len(p.ring)]
		}
		p.ring, p.head = grown, 0
	}
	var slot *op
	if k := len(p.free); k > 0 {
		slot = p.free[k-1]
		p.free = p.free[:k-1]
	} else {
		slot = new(op)
	}
	*slot = o
	p.ring[(p.head+p.n)%len(p.ring)] = slot
	p.n++
}

// front returns the oldest request that expects an answer, dropping
// CopyDone/CopyFail markers that reached the front (the server ignores
// those outside COPY). It returns nil when nothing is pending.
func (p *pipeline) front() *op {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.n > 0 {
		o := p.ring[p.head]
		if o.kind != opCopyEnd {
			return o
		}
		p.popLocked()
	}
	return nil
}

// pop removes the front request. The *op must not be used afterwards.
func (p *pipeline) pop() {
	p.mu.Lock()
	p.popLocked()
	p.mu.Unlock()
}

func (p *pipeline) popLocked() {
	if p.n == 0 {
		return
	}
	p.recycle(p.ring[p.head])
	p.ring[p.head] = nil
	p.head = (p.head + 1) % len(p.ring)
	p.n--
	p.space.Signal()
}

// recycle keeps a removed request's slot for the next push.
func (p *pipeline) recycle(o *op) {
	o.tel.abandon("the server did not run it: an earlier request failed") // telemetry: answered ones were ended
	*o = op{}
	if len(p.free) < 64 {
		p.free = append(p.free, o)
	}
}

// popThroughSync removes requests up to and including the first Sync, as
// the server skips them after an error in the extended protocol; a skipped
// Parse has failed. It reports false when no Sync is pending, which means
// the server answered a Sync the client never sent.
func (p *pipeline) popThroughSync() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.n > 0 {
		o := p.ring[p.head]
		kind := o.kind
		if kind == opParse && o.stmt != nil {
			o.stmt.parse.Store(parseFailed)
		}
		p.popLocked()
		if kind == opSync {
			return true
		}
	}
	return false
}

// endCopyIn accounts for the requests the server consumed while it was in
// COPY FROM STDIN for the front request, which has just finished: the Syncs
// (and Flushes) it ignored up to the CopyDone or CopyFail that ended the
// copy, that marker itself, or the first other request, which the server
// took as the reason to abort the copy.
func (p *pipeline) endCopyIn() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.n > 1 {
		i := (p.head + 1) % len(p.ring)
		kind := p.ring[i].kind
		p.removeLocked(i)
		if kind != opSync {
			return
		}
	}
}

// removeLocked removes the request at ring index i (not the front),
// shifting the ones after it.
func (p *pipeline) removeLocked(i int) {
	o := p.ring[i]
	last := (p.head + p.n - 1) % len(p.ring)
	for j := i; j != last; j = (j + 1) % len(p.ring) {
		p.ring[j] = p.ring[(j+1)%len(p.ring)]
	}
	p.ring[last] = nil
	p.n--
	p.recycle(o)
	p.space.Signal()
}

// pending returns the number of requests awaiting answers.
func (p *pipeline) pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// close wakes a frontend relay waiting for room; later pushes fail.
func (p *pipeline) close() {
	p.mu.Lock()
	p.closed = true
	p.space.Broadcast()
	p.mu.Unlock()
}
