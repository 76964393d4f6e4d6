package analysis

import (
	"container/list"
	"sync"

	"github.com/pgwarden/pgwarden/policy"
)

// cache keeps analysis results by exact text, least recently used first
// out, within a budget of bytes (an estimate of the memory each entry
// holds, text and parse tree included).
type cache struct {
	mu      sync.Mutex
	budget  int64
	used    int64
	entries map[string]*list.Element
	lru     list.List // of *cacheEntry, most recent at the front
}

type cacheEntry struct {
	sql  string
	sts  []*policy.Statement
	cost int64
}

func newCache(budget int64) *cache {
	return &cache{budget: budget, entries: make(map[string]*list.Element)}
}

func (c *cache) get(sql string) ([]*policy.Statement, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.use(c.entries[sql])
}

// getBytes is get for a key in bytes, which it does not copy.
func (c *cache) getBytes(key []byte) ([]*policy.Statement, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.use(c.entries[string(key)])
}

// use marks e, when there is one, as the most recently used entry and
// returns its analysis. c.mu is held.
func (c *cache) use(e *list.Element) ([]*policy.Statement, bool) {
	if e == nil {
		return nil, false
	}
	c.lru.MoveToFront(e)
	return e.Value.(*cacheEntry).sts, true
}

func (c *cache) put(sql string, sts []*policy.Statement, cost int64) {
	cost += int64(len(sql)) + 128 // the key and the bookkeeping
	if cost > c.budget/4 {
		return // one entry may not crowd out the rest
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[sql]; ok {
		return
	}
	for c.used+cost > c.budget {
		oldest := c.lru.Back()
		if oldest == nil {
			break
		}
		old := c.lru.Remove(oldest).(*cacheEntry)
		delete(c.entries, old.sql)
		c.used -= old.cost
	}
	c.entries[sql] = c.lru.PushFront(&cacheEntry{sql: sql, sts: sts, cost: cost})
	c.used += cost
}

// size returns the bytes in use and the number of entries.
func (c *cache) size() (int64, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used, len(c.entries)
}
