//go:build linux

package evloop

import (
	"errors"
	"iter"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// StallLimit bounds how long a relay may hold a loop (blocked, or busy)
// before the watchdog hands the loop's other sockets to a new goroutine.
const StallLimit = 2 * watchInterval

// watchInterval is the watchdog's period.
const watchInterval = 5 * time.Millisecond

// wakeID is the epoll data of a shard's eventfd; relays use their slot
// numbers, which are never negative.
const wakeID = -1

// ErrClosed is returned by Go once the Loop is closed.
var ErrClosed = errors.New("evloop: loop closed")

// Loop is a set of epoll loops (shards), each served by one goroutine at a
// time. Its methods are safe for concurrent use.
type Loop struct {
	// holdLimit is how many runners of the process may wait holding their
	// P (see Shard.wait): half the Ps. The watchdog brings it up to date
	// at every tick, because GOMAXPROCS can change at run time (the
	// runtime follows a container's CPU limit, a program may set it): a
	// limit made for 2 Ps would let a runner hold the only P of 1, and
	// every other goroutine would wait for its preemption.
	holdLimit atomic.Int32
	shards    []*Shard
	rr        atomic.Uint32

	mu       sync.Mutex
	tasks    int
	watching bool
	closing  bool
}

// New returns a Loop of n shards (at least one). It fails only when the
// system refuses epoll or eventfd descriptors.
func New(n int) (*Loop, error) {
	l := &Loop{}
	l.holdLimit.Store(holdLimitFor(runtime.GOMAXPROCS(0)))
	for range max(n, 1) {
		sh, err := newShard(l)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.shards = append(l.shards, sh)
	}
	return l, nil
}

// Shard returns one of the loop's shards, in turn. The relays of one
// session belong on one shard, so that Conn.Blocking hands over the right
// loop.
func (l *Loop) Shard() *Shard {
	return l.shards[int(l.rr.Add(1))%len(l.shards)]
}

// Close makes the loop stop once its last relay has returned; relays still
// running are served until then. It does not wait.
func (l *Loop) Close() {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	for _, sh := range l.shards {
		sh.mu.Lock()
		sh.kickLocked()
		sh.mu.Unlock()
	}
}

// taskAdded counts a relay and makes sure the watchdog runs.
func (l *Loop) taskAdded() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return ErrClosed
	}
	l.tasks++
	if !l.watching {
		l.watching = true
		go l.watch()
	}
	return nil
}

func (l *Loop) taskEnded() {
	l.mu.Lock()
	l.tasks--
	last := l.tasks == 0 && l.closing
	l.mu.Unlock()
	if last {
		for _, sh := range l.shards {
			sh.mu.Lock()
			sh.kickLocked()
			sh.mu.Unlock()
		}
	}
}

func (l *Loop) stopping() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closing && l.tasks == 0
}

// watch hands a loop to a new goroutine when a relay has held it for a
// whole watchInterval (between one and two intervals: StallLimit). It runs
// while the loop has relays. Ticking costs the host a wake-up per
// interval, which is why the interval is not shorter.
func (l *Loop) watch() {
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	seen := make([]uint64, len(l.shards))
	for range t.C {
		l.mu.Lock()
		if l.tasks == 0 {
			l.watching = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		l.holdLimit.Store(holdLimitFor(runtime.GOMAXPROCS(0)))
		for i, sh := range l.shards {
			r := sh.active.Load()
			b := r.busy.Load()
			if b == seen[i] {
				sh.handoff(r, b)
			}
			seen[i] = b
		}
	}
}

// Shard is one epoll loop.
type Shard struct {
	loop   *Loop
	active atomic.Pointer[runner]
	relays atomic.Int32 // relays registered: an idle shard gives its P back while it waits

	mu      sync.Mutex // guards what follows
	epfd    int        // -1 once closed
	evfd    int
	kicked  bool // the eventfd was written and not yet read
	slots   []*task
	free    []int32
	wakeups []*task
	runners int
}

// runner is a goroutine serving a shard. Only the shard's active runner
// waits in epoll; an orphaned one returns as soon as the relay it switched
// into gives it back.
type runner struct {
	// busy is odd while the runner is inside a relay, and counts its
	// switches in and out; orphanBit is set (by handoff) only while it is
	// inside one, so that an orphan always notices when the relay gives it
	// back, and never sleeps in epoll_wait.
	busy atomic.Uint64
	cur  *task   // the relay it is in, for a Goexit (see run)
	rest []*task // wake-ups still to serve after cur, for a Goexit
	// events is epoll's output, here rather than on the stack: a runner
	// starts at each hand-over, and a fresh goroutine's stack would grow
	// (a copy) to hold it.
	events [128]unix.EpollEvent
}

const orphanBit = 1 << 63

func (r *runner) orphaned() bool { return r.busy.Load()&orphanBit != 0 }

func newShard(l *Loop) (*Shard, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeID}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, err
	}
	sh := &Shard{loop: l, epfd: epfd, evfd: evfd}
	r := &runner{}
	sh.active.Store(r)
	sh.runners = 1
	go sh.run(r)
	return sh, nil
}

// Go runs fn as a relay coroutine reading c: while fn's reads of c find
// nothing to read, the coroutine waits on this shard instead of parking
// its goroutine. c belongs to the shard until fn returns; the returned
// channel is closed then.
func (sh *Shard) Go(c *Conn, fn func()) (<-chan struct{}, error) {
	if err := sh.loop.taskAdded(); err != nil {
		return nil, err
	}
	if !c.incref() {
		sh.loop.taskEnded()
		return nil, errClosedConn
	}
	t := &task{sh: sh, c: c, done: make(chan struct{})}
	t.next, t.stop = iter.Pull(func(yield func(struct{}) bool) {
		t.yield = yield
		fn()
	})
	sh.mu.Lock()
	if n := len(sh.free); n > 0 {
		t.id = sh.free[n-1]
		sh.free = sh.free[:n-1]
		sh.slots[t.id] = t
	} else {
		t.id = int32(len(sh.slots))
		sh.slots = append(sh.slots, t)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: t.id}
	err := unix.EpollCtl(sh.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev)
	if err != nil {
		sh.slots[t.id] = nil
		sh.free = append(sh.free, t.id)
		sh.mu.Unlock()
		t.stop()
		c.decref()
		sh.loop.taskEnded()
		return nil, err
	}
	c.sh.Store(sh)
	c.task.Store(t)
	sh.relays.Add(1)
	// Start it: the relay runs until its first read finds nothing.
	sh.wakeups = append(sh.wakeups, t)
	sh.kickLocked()
	sh.mu.Unlock()
	return t.done, nil
}

// kickLocked wakes the shard's runner.
func (sh *Shard) kickLocked() {
	if sh.kicked || sh.epfd < 0 {
		return
	}
	sh.kicked = true
	one := [8]byte{1}
	unix.Write(sh.evfd, one[:])
}

// handoff replaces r by a new runner if r is still the active runner and
// still inside the relay it was in when its busy count was b.
func (sh *Shard) handoff(r *runner, b uint64) {
	if b%2 == 0 {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.epfd < 0 || sh.active.Load() != r {
		return
	}
	// Counted before r can see itself orphaned and leave, so that the
	// count never drops to zero (which closes the shard) in between.
	sh.runners++
	if !r.busy.CompareAndSwap(b, b|orphanBit) {
		sh.runners-- // r left that relay meanwhile: nothing to hand over
		return
	}
	nr := &runner{}
	sh.active.Store(nr)
	go sh.run(nr)
}

// handoffIfBusy hands the loop over when its runner is inside a relay.
func (sh *Shard) handoffIfBusy() {
	r := sh.active.Load()
	sh.handoff(r, r.busy.Load())
}

func (sh *Shard) run(r *runner) {
	returned := false
	defer func() {
		if !returned {
			sh.goexit(r)
		}
		sh.runnerDone()
	}()
	sh.serve(r)
	returned = true
}

// serve waits for events and resumes relays until r is orphaned or the loop
// stops.
func (sh *Shard) serve(r *runner) {
	events := r.events[:]
	for !r.orphaned() {
		if sh.loop.stopping() {
			return
		}
		n, err := sh.wait(events)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return // EBADF after Close, or a kernel refusal: nothing to serve
		}
		for i := range n {
			if r.orphaned() {
				// Level-triggered: the new runner sees the rest.
				break
			}
			if id := events[i].Fd; id == wakeID {
				sh.serveWakeups(r)
			} else if t := sh.task(id); t != nil {
				sh.resume(r, t)
			}
		}
	}
}

// wait waits for events. While the shard has relays, and fewer than half
// the process's Ps are held this way, it waits without telling the
// scheduler: the runner keeps its P, so that when a socket becomes readable
// it runs at once on the same thread, rather than find its P taken by the
// system monitor and wait for another (which made each wake-up cost extra
// context switches). The scheduler still preempts it after 10 ms (the
// signal ends the wait with EINTR), so garbage collection is not held up.
// Otherwise it waits the ordinary way and holds no P.
func (sh *Shard) wait(events []unix.EpollEvent) (int, error) {
	if sh.relays.Load() == 0 || !sh.loop.holdP() {
		return unix.EpollWait(sh.epfd, events, -1)
	}
	n, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(sh.epfd), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), uintptr(rawWaitMillis), 0, 0)
	heldPs.Add(-1)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// heldPs counts the runners that wait holding their P, across every Loop
// of the process: Ps belong to the process, so the budget does too (two
// proxies in one program must not hold every P between them).
var heldPs atomic.Int32

// holdP takes a place among the runners that wait holding their P.
func (l *Loop) holdP() bool {
	for {
		n := heldPs.Load()
		if n >= l.holdLimit.Load() {
			return false
		}
		if heldPs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// holdLimitFor is the hold limit for procs Ps: half of them, so that as
// many Ps stay free for the rest of the program.
func holdLimitFor(procs int) int32 { return int32(procs / 2) }

// rawWaitMillis bounds a wait that keeps its P, so that the runner looks at
// its orphaned and stopping flags now and then.
const rawWaitMillis = 20

func (sh *Shard) task(id int32) *task {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if int(id) < len(sh.slots) {
		return sh.slots[id]
	}
	return nil
}

// serveWakeups resumes the relays woken by a deadline, a Close or their
// start.
func (sh *Shard) serveWakeups(r *runner) {
	sh.mu.Lock()
	var buf [8]byte
	unix.Read(sh.evfd, buf[:])
	sh.kicked = false
	woken := sh.wakeups
	sh.wakeups = nil
	sh.mu.Unlock()
	for i, t := range woken {
		if r.orphaned() {
			sh.requeue(woken[i:])
			return
		}
		r.rest = woken[i+1:] // for a Goexit of t (see goexit)
		sh.resume(r, t)
		r.rest = nil
	}
}

// goexit runs when a relay called runtime.Goexit, which iter.Pull
// propagates to the runner that resumed it: the relay is over, like one
// that returned, and the shard gets a new runner if r was its active one.
func (sh *Shard) goexit(r *runner) {
	t := r.cur
	if t == nil {
		return
	}
	sh.requeue(r.rest)
	t.mu.Lock()
	t.state = stateDone
	t.mu.Unlock()
	sh.finish(t)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.epfd >= 0 && sh.active.Load() == r {
		sh.runners++
		nr := &runner{}
		sh.active.Store(nr)
		go sh.run(nr)
	}
}

// requeue puts wake-ups a runner could not serve back in the shard's list.
func (sh *Shard) requeue(woken []*task) {
	if len(woken) == 0 {
		return
	}
	sh.mu.Lock()
	sh.wakeups = append(sh.wakeups, woken...)
	sh.kickLocked()
	sh.mu.Unlock()
}

func (sh *Shard) runnerDone() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.runners--
	if sh.runners == 0 && sh.epfd >= 0 {
		unix.Close(sh.epfd)
		unix.Close(sh.evfd)
		sh.epfd, sh.evfd = -1, -1
	}
}

// ctlLocked changes t's registration; errors are ignored (the descriptor
// stays open while registered, see Conn.incref).
func (sh *Shard) ctlLocked(op int, t *task) {
	if sh.epfd < 0 {
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: t.id}
	unix.EpollCtl(sh.epfd, op, t.c.fd, &ev)
}

// resume switches into t until it waits for its socket again or returns.
func (sh *Shard) resume(r *runner, t *task) {
	for {
		t.mu.Lock()
		switch t.state {
		case stateRunning:
			// An orphaned runner is in it: stop the level-triggered
			// reports until it gives the relay back (see below).
			if !t.disarmed {
				sh.mu.Lock()
				sh.ctlLocked(unix.EPOLL_CTL_DEL, t)
				sh.mu.Unlock()
				t.disarmed = true
			}
			t.mu.Unlock()
			return
		case stateDone:
			t.mu.Unlock()
			return
		}
		t.state, t.woken = stateRunning, false
		t.mu.Unlock()

		r.busy.Add(1)
		r.cur = t
		_, more := t.next() // a Goexit of the relay ends the runner here (see run)
		r.cur = nil
		r.busy.Add(1)

		t.mu.Lock()
		if !more {
			t.state = stateDone
			t.mu.Unlock()
			sh.finish(t)
			return
		}
		t.state = stateWaiting
		if t.disarmed {
			sh.mu.Lock()
			sh.ctlLocked(unix.EPOLL_CTL_ADD, t)
			sh.mu.Unlock()
			t.disarmed = false
		}
		again := t.woken
		t.woken = false
		t.mu.Unlock()
		if !again {
			return
		}
		if r.orphaned() {
			t.wake()
			return
		}
	}
}

// finish unregisters a relay that returned.
func (sh *Shard) finish(t *task) {
	sh.mu.Lock()
	if !t.disarmed {
		sh.ctlLocked(unix.EPOLL_CTL_DEL, t)
	}
	sh.slots[t.id] = nil
	sh.free = append(sh.free, t.id)
	sh.mu.Unlock()
	sh.relays.Add(-1)
	t.c.task.Store(nil)
	t.c.decref()
	t.stop()
	close(t.done)
	sh.loop.taskEnded()
}

const (
	stateWaiting = iota
	stateRunning
	stateDone
)

// task is a relay coroutine and the socket it reads.
type task struct {
	sh   *Shard
	c    *Conn
	id   int32
	done chan struct{}

	next  func() (struct{}, bool)
	stop  func()
	yield func(struct{}) bool

	mu       sync.Mutex
	state    int
	disarmed bool // taken out of epoll while an orphaned runner holds it
	woken    bool // wake was called while it ran
}

// wake makes the shard resume t (to see a deadline or a Close), now or as
// soon as it waits again.
func (t *task) wake() {
	t.mu.Lock()
	switch t.state {
	case stateRunning:
		t.woken = true
		t.mu.Unlock()
		return
	case stateDone:
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	sh := t.sh
	sh.mu.Lock()
	sh.wakeups = append(sh.wakeups, t)
	sh.kickLocked()
	sh.mu.Unlock()
}
