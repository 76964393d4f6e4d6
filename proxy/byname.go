package proxy

import "iter"

// byName maps names to values, keeping the unnamed entry ("") in a field
// of its own. The unnamed portal is what most clients bind and run, once
// per statement: a map assignment, lookup and delete for it each time cost
// more than the rest of its bookkeeping. The zero value is empty and ready
// to use.
type byName[V any] struct {
	unnamed    V
	hasUnnamed bool
	named      map[string]V
}

// get returns the value for name, and whether there is one.
func (b *byName[V]) get(name string) (V, bool) {
	if name == "" {
		return b.unnamed, b.hasUnnamed
	}
	v, ok := b.named[name]
	return v, ok
}

// set sets the value for name.
func (b *byName[V]) set(name string, v V) {
	if name == "" {
		b.unnamed, b.hasUnnamed = v, true
		return
	}
	if b.named == nil {
		b.named = map[string]V{}
	}
	b.named[name] = v
}

// delete removes name's value, if any.
func (b *byName[V]) delete(name string) {
	if name == "" {
		var zero V
		b.unnamed, b.hasUnnamed = zero, false
		return
	}
	delete(b.named, name)
}

// len is the number of names with a value.
func (b *byName[V]) len() int {
	n := len(b.named)
	if b.hasUnnamed {
		n++
	}
	return n
}

// clear removes every value.
func (b *byName[V]) clear() {
	var zero V
	b.unnamed, b.hasUnnamed = zero, false
	clear(b.named)
}

// all yields every name with its value, the unnamed one first.
func (b *byName[V]) all() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		if b.hasUnnamed && !yield("", b.unnamed) {
			return
		}
		for name, v := range b.named {
			if !yield(name, v) {
				return
			}
		}
	}
}
