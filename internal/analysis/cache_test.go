package analysis

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/pgwarden/pgwarden/policy"
)

// entryCost is what put charges for an entry on top of the cost it is
// given: the key and the bookkeeping.
func entryCost(sql string, cost int64) int64 { return cost + int64(len(sql)) + 128 }

func fakeStatements(sql string) []*policy.Statement {
	return []*policy.Statement{{Kind: policy.KindSelect, Command: "SELECT", SQL: sql}}
}

// checkCacheInvariants checks the cache's bookkeeping: within budget, the
// map and the list agree, and used is the sum of the entries' costs.
func checkCacheInvariants(t *testing.T, c *cache) {
	t.Helper()
	used, n := c.size()
	if used > c.budget {
		t.Fatalf("cache uses %d bytes, over its budget of %d", used, c.budget)
	}
	if used < 0 {
		t.Fatalf("cache uses %d bytes", used)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n != c.lru.Len() {
		t.Fatalf("cache has %d map entries but %d in its LRU list", n, c.lru.Len())
	}
	var sum int64
	for e := c.lru.Front(); e != nil; e = e.Next() {
		ce := e.Value.(*cacheEntry)
		sum += ce.cost
		if c.entries[ce.sql] != e {
			t.Fatalf("LRU entry %q is not the map's", ce.sql)
		}
	}
	if sum != used {
		t.Fatalf("cache says it uses %d bytes, its entries cost %d", used, sum)
	}
}

func TestCacheGetPut(t *testing.T) {
	c := newCache(1 << 20)
	if _, ok := c.get("SELECT 1"); ok {
		t.Fatal("empty cache has an entry")
	}
	sts := fakeStatements("SELECT 1")
	c.put("SELECT 1", sts, 100)
	got, ok := c.get("SELECT 1")
	if !ok {
		t.Fatal("entry just put is missing")
	}
	if &got[0] != &sts[0] || got[0] != sts[0] {
		t.Errorf("get returned a different slice than put stored")
	}
	if _, ok := c.get("SELECT 1 "); ok {
		t.Error("a text that differs by a space hit the cache: keys must be exact")
	}
	if _, ok := c.get("select 1"); ok {
		t.Error("a text that differs in case hit the cache: keys must be exact")
	}
	used, n := c.size()
	if n != 1 || used != entryCost("SELECT 1", 100) {
		t.Errorf("size() = %d bytes, %d entries; want %d, 1", used, n, entryCost("SELECT 1", 100))
	}
	// Putting the same text again neither replaces nor double-counts.
	c.put("SELECT 1", fakeStatements("SELECT 1"), 100)
	got, _ = c.get("SELECT 1")
	if &got[0] != &sts[0] {
		t.Error("a second put replaced the first entry")
	}
	if used2, n2 := c.size(); used2 != used || n2 != n {
		t.Errorf("after a second put of the same text size() = %d, %d; want %d, %d", used2, n2, used, n)
	}
	checkCacheInvariants(t, c)
}

func TestCacheBoundedByBytes(t *testing.T) {
	for _, budget := range []int64{4 << 10, 64 << 10, 1 << 20} {
		t.Run(fmt.Sprint(budget), func(t *testing.T) {
			c := newCache(budget)
			maxEntries := 0
			for i := range 20000 {
				sql := fmt.Sprintf("SELECT * FROM t%d WHERE a = '%s'", i, strings.Repeat("x", i%97))
				c.put(sql, fakeStatements(sql), int64(i%300))
				used, n := c.size()
				if used > budget {
					t.Fatalf("after %d puts the cache uses %d bytes, over its budget of %d", i+1, used, budget)
				}
				maxEntries = max(maxEntries, n)
			}
			checkCacheInvariants(t, c)
			used, n := c.size()
			if n == 0 || used == 0 {
				t.Fatalf("cache is empty after 20000 puts that fit")
			}
			// The smallest entry is 128 bytes of bookkeeping: never more.
			if int64(maxEntries)*128 > budget {
				t.Errorf("cache held %d entries in %d bytes", maxEntries, budget)
			}
			// Eviction leaves the cache reasonably full.
			if used < budget/2 {
				t.Errorf("cache uses %d of %d bytes after 20000 puts; eviction removes too much", used, budget)
			}
		})
	}
}

func TestCacheSkipsLargeEntries(t *testing.T) {
	const budget = 4000
	c := newCache(budget)
	fits := "fits"
	c.put(fits, fakeStatements(fits), budget/4-entryCost(fits, 0)) // exactly a quarter
	if _, ok := c.get(fits); !ok {
		t.Errorf("an entry of exactly a quarter of the budget was not kept")
	}
	big := "big"
	c.put(big, fakeStatements(big), budget/4-entryCost(big, 0)+1) // one byte over
	if _, ok := c.get(big); ok {
		t.Errorf("an entry of more than a quarter of the budget was kept")
	}
	huge := strings.Repeat("x", budget) // the key alone is over
	c.put(huge, fakeStatements(huge), 0)
	if _, ok := c.get(huge); ok {
		t.Errorf("an entry whose text is larger than the budget was kept")
	}
	if _, ok := c.get(fits); !ok {
		t.Errorf("skipping large entries evicted a small one")
	}
	checkCacheInvariants(t, c)
}

func TestCacheLRU(t *testing.T) {
	// Each entry costs 250 bytes; the budget holds four.
	const each = 250
	c := newCache(4 * each)
	put := func(sql string) { c.put(sql, fakeStatements(sql), each-entryCost(sql, 0)) }
	has := func(sql string) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.entries[sql] // without touching the LRU order
		return ok
	}
	for _, sql := range []string{"a", "b", "c", "d"} {
		put(sql)
	}
	if _, n := c.size(); n != 4 {
		t.Fatalf("cache holds %d entries, want 4", n)
	}
	c.get("a") // a is now the most recent; b the least
	put("e")
	if has("b") {
		t.Error("b, the least recently used entry, was not evicted")
	}
	for _, sql := range []string{"a", "c", "d", "e"} {
		if !has(sql) {
			t.Errorf("%s was evicted; only b should have been", sql)
		}
	}
	c.get("c")
	c.get("a")
	put("f") // evicts d, then
	put("g") // e
	for sql, want := range map[string]bool{"a": true, "c": true, "d": false, "e": false, "f": true, "g": true} {
		if has(sql) != want {
			t.Errorf("after more puts, has(%s) = %v, want %v", sql, has(sql), want)
		}
	}
	checkCacheInvariants(t, c)
}

func TestCacheConcurrent(t *testing.T) {
	c := newCache(32 << 10)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				sql := fmt.Sprintf("SELECT %d", (i*7+g)%500)
				if _, ok := c.get(sql); !ok {
					c.put(sql, fakeStatements(sql), 64)
				}
			}
		})
	}
	wg.Wait()
	checkCacheInvariants(t, c)
}

// TestAnalyzerCache checks the cache through the Analyzer.
func TestAnalyzerCache(t *testing.T) {
	t.Run("same text gives the same statements", func(t *testing.T) {
		a := New(Limits{}, 1<<20)
		for _, sql := range []string{
			"SELECT * FROM t WHERE name = 'x'",
			"SELECT 1; DELETE FROM t",                   // several statements: never shared
			"SET search_path = a",                       // settings: never shared
			"EXPLAIN ANALYZE DELETE FROM t WHERE a = 1", // EXPLAIN: never shared
		} {
			first, err := a.Analyze(sql)
			if err != nil {
				t.Fatal(err)
			}
			second, err := a.Analyze(sql)
			if err != nil {
				t.Fatal(err)
			}
			if len(first) == 0 || &first[0] != &second[0] {
				t.Errorf("%q: the second Analyze did not return the cached statements", sql)
			}
		}
	})
	t.Run("texts that differ in integers share an analysis", func(t *testing.T) {
		a := New(Limits{}, 1<<20)
		first, err := a.Analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 17")
		if err != nil {
			t.Fatal(err)
		}
		second, err := a.Analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 90210")
		if err != nil {
			t.Fatal(err)
		}
		if second[0].SQL != "SELECT abalance FROM pgbench_accounts WHERE aid = 90210" {
			t.Errorf("shared analysis has SQL %q, want the text's own", second[0].SQL)
		}
		if first[0].SQL == second[0].SQL {
			t.Errorf("sharing changed the first statement's SQL")
		}
		if !reflect.DeepEqual(first[0].Reads, second[0].Reads) || first[0].Kind != second[0].Kind {
			t.Errorf("shared analysis differs: %s vs %s", describe(first), describe(second))
		}
		raw, err := second[0].Tree()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(raw.String(), "90210") {
			t.Errorf("the shared analysis' Tree is not its own text's: %v", raw)
		}
	})
	t.Run("template sharing respects MaxBytes", func(t *testing.T) {
		// Texts of one template differ in length.
		a := New(Limits{MaxBytes: 30}, 1<<20)
		short := "SELECT * FROM t WHERE id = 1"        // 28 bytes
		long := "SELECT * FROM t WHERE id = 123456789" // 36 bytes
		if _, err := a.Analyze(short); err != nil {
			t.Fatal(err)
		}
		sts, err := a.Analyze(long)
		var aerr *Error
		if !errors.As(err, &aerr) || !strings.Contains(aerr.Reason, "bytes") {
			t.Errorf("Analyze(%q) (%d bytes, MaxBytes 30) after %q = %s, %v; want an *Error about the length",
				long, len(long), short, describe(sts), err)
		}
	})
	t.Run("cache disabled", func(t *testing.T) {
		a := New(Limits{}, 0)
		first, _ := a.Analyze("SELECT * FROM t")
		second, _ := a.Analyze("SELECT * FROM t")
		if &first[0] == &second[0] {
			t.Errorf("an analyzer without a cache returned the same statements twice")
		}
	})
	t.Run("errors are not cached", func(t *testing.T) {
		a := New(Limits{}, 1<<20)
		for range 2 {
			if _, err := a.Analyze("SELECT * FROM"); err == nil {
				t.Fatal("want a syntax error")
			}
		}
		if _, n := a.cache.size(); n != 0 {
			t.Errorf("the cache holds %d entries after errors only", n)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		const budget = 256 << 10
		a := New(Limits{}, budget)
		for i := range 5000 {
			// Texts without integers (cached by text) and with (shared by
			// template), with distinct templates.
			name := strings.Repeat(string(rune('a'+i%26)), 1+i/26)
			if _, err := a.Analyze("SELECT * FROM t_" + name + " WHERE c = 'v'"); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Analyze("SELECT * FROM u_" + name + " WHERE c = 42"); err != nil {
				t.Fatal(err)
			}
		}
		checkCacheInvariants(t, a.cache)
		checkCacheInvariants(t, a.shared)
		used1, _ := a.cache.size()
		used2, n2 := a.shared.size()
		if used1+used2 > budget {
			t.Errorf("the analyzer's caches use %d+%d bytes, over the %d it was given", used1, used2, budget)
		}
		if n2 == 0 {
			t.Errorf("no analysis was shared by template")
		}
	})
}
