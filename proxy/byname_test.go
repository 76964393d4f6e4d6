package proxy

import (
	"maps"
	"testing"
)

func TestByNameKeepsUnnamedAndNamedApart(t *testing.T) {
	var b byName[int]
	if _, ok := b.get(""); ok || b.len() != 0 {
		t.Fatalf("zero value: get(\"\") ok=%v len=%d, want empty", ok, b.len())
	}
	b.set("", 1)
	b.set("p1", 2)
	b.set("p2", 3)
	b.set("", 4) // replaces the unnamed one
	if v, ok := b.get(""); !ok || v != 4 {
		t.Fatalf("get(\"\") = %d, %v; want 4, true", v, ok)
	}
	if v, ok := b.get("p1"); !ok || v != 2 {
		t.Fatalf("get(p1) = %d, %v; want 2, true", v, ok)
	}
	if b.len() != 3 {
		t.Fatalf("len = %d, want 3", b.len())
	}
	if got, want := maps.Collect(b.all()), map[string]int{"": 4, "p1": 2, "p2": 3}; !maps.Equal(got, want) {
		t.Fatalf("all = %v, want %v", got, want)
	}
	b.delete("")
	if _, ok := b.get(""); ok || b.len() != 2 {
		t.Fatalf("after delete(\"\"): ok=%v len=%d; want false, 2", ok, b.len())
	}
	b.delete("p1")
	if _, ok := b.get("p1"); ok || b.len() != 1 {
		t.Fatalf("after delete(p1): ok=%v len=%d; want false, 1", ok, b.len())
	}
	b.set("", 5)
	b.clear()
	if b.len() != 0 || len(maps.Collect(b.all())) != 0 {
		t.Fatalf("after clear: len=%d all=%v; want empty", b.len(), maps.Collect(b.all()))
	}
}

func TestByNameClearDropsTheUnnamedValue(t *testing.T) {
	var b byName[*int]
	v := 1
	b.set("", &v)
	b.clear()
	if b.unnamed != nil {
		t.Fatal("clear kept a reference to the unnamed value")
	}
}
