package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Condition is a test on a query: on its session's identity, on the time,
// or on its statements. Conditions restrict rules (see When and Rule).
// Holds must be safe for concurrent use and must not modify q.
type Condition interface {
	// Holds reports whether the condition holds for q.
	Holds(q *Query) bool
}

// ConditionFunc adapts a function to a Condition.
type ConditionFunc func(q *Query) bool

// Holds calls f(q).
func (f ConditionFunc) Holds(q *Query) bool { return f(q) }

// Always holds for every query.
func Always() Condition { return ConditionFunc(func(*Query) bool { return true }) }

// All holds when every condition holds (and for none).
func All(cs ...Condition) Condition {
	return ConditionFunc(func(q *Query) bool {
		for _, c := range cs {
			if !c.Holds(q) {
				return false
			}
		}
		return true
	})
}

// Any holds when at least one condition holds.
func Any(cs ...Condition) Condition {
	return ConditionFunc(func(q *Query) bool {
		for _, c := range cs {
			if c.Holds(q) {
				return true
			}
		}
		return false
	})
}

// Not holds when c does not.
func Not(c Condition) Condition { return ConditionFunc(func(q *Query) bool { return !c.Holds(q) }) }

// InGroup holds when the session's identity is in one of groups.
func InGroup(groups ...string) Condition {
	return ConditionFunc(func(q *Query) bool {
		return q.Session != nil && slices.ContainsFunc(groups, q.Session.Identity.InGroup)
	})
}

// Subject holds when the session's identity's subject is one of subjects.
func Subject(subjects ...string) Condition {
	return ConditionFunc(func(q *Query) bool {
		return q.Session != nil && slices.Contains(subjects, q.Session.Identity.Subject)
	})
}

// Involves holds when one of subjects is the session's subject or any actor
// of its delegation chain (an agent acting for it, or for whom it acts).
func Involves(subjects ...string) Condition {
	return ConditionFunc(func(q *Query) bool {
		if q.Session == nil {
			return false
		}
		for _, s := range subjects {
			if q.Session.Identity.Involves("", s) {
				return true
			}
		}
		return false
	})
}

// Issuer holds when the session's identity was issued by one of issuers.
func Issuer(issuers ...string) Condition {
	return ConditionFunc(func(q *Query) bool {
		return q.Session != nil && slices.Contains(issuers, q.Session.Identity.Issuer)
	})
}

// ChainDepth holds when the number of agents in the session's delegation
// chain is between min and max inclusive (a negative max means no upper
// bound). A direct session has depth 0.
func ChainDepth(min, max int) Condition {
	return ConditionFunc(func(q *Query) bool {
		if q.Session == nil {
			return false
		}
		d := len(q.Session.Identity.Chain)
		return d >= min && (max < 0 || d <= max)
	})
}

// Window is a daily period of time, such as 01:00 to 02:00 UTC on
// weekdays. From is inclusive and To exclusive; a window whose To is not
// after From runs over midnight. The zero Window is empty.
type Window struct {
	From, To time.Duration // offsets from midnight
	// Location is the time zone of From and To; nil means UTC.
	Location *time.Location
	// Days restricts the window to these days of the week (the day the
	// window starts); empty means every day.
	Days []time.Weekday
}

// ParseWindow reads "HH:MM-HH:MM [ZONE]", for example "01:00-02:00 UTC"
// or "22:00-06:00 Europe/Paris".
func ParseWindow(s string) (Window, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 || len(fields) > 2 {
		return Window{}, fmt.Errorf("policy: time window %q: want HH:MM-HH:MM [ZONE]", s)
	}
	from, to, ok := strings.Cut(fields[0], "-")
	if !ok {
		return Window{}, fmt.Errorf("policy: time window %q: want HH:MM-HH:MM [ZONE]", s)
	}
	var w Window
	var err error
	if w.From, err = clock(from); err != nil {
		return Window{}, fmt.Errorf("policy: time window %q: %v", s, err)
	}
	if w.To, err = clock(to); err != nil {
		return Window{}, fmt.Errorf("policy: time window %q: %v", s, err)
	}
	if w.From == w.To {
		return Window{}, fmt.Errorf("policy: time window %q is empty (from and to are equal)", s)
	}
	w.Location = time.UTC
	if len(fields) == 2 {
		if w.Location, err = time.LoadLocation(fields[1]); err != nil {
			return Window{}, fmt.Errorf("policy: time window %q: %v", s, err)
		}
	}
	return w, nil
}

func clock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		if s == "24:00" {
			return 24 * time.Hour, nil
		}
		return 0, fmt.Errorf("%q is not a time of day (HH:MM)", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// Contains reports whether t falls in the window.
func (w Window) Contains(t time.Time) bool {
	loc := w.Location
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	// The wall clock, not the time elapsed since midnight, which differs
	// on the days the clocks change.
	h, m, sec := t.Clock()
	offset := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second + time.Duration(t.Nanosecond())
	day := t.Weekday()
	if w.To > w.From {
		return offset >= w.From && offset < w.To && w.onDay(day)
	}
	if w.To == w.From {
		return false
	}
	// Over midnight: the evening part belongs to today's window, the
	// morning part to yesterday's.
	if offset >= w.From {
		return w.onDay(day)
	}
	return offset < w.To && w.onDay((day+6)%7)
}

func (w Window) onDay(d time.Weekday) bool { return len(w.Days) == 0 || slices.Contains(w.Days, d) }

// String returns the window as ParseWindow reads it (Days, which
// ParseWindow does not read, are left out).
func (w Window) String() string {
	loc := "UTC"
	if w.Location != nil {
		loc = w.Location.String()
	}
	hm := func(d time.Duration) string { return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60) }
	return hm(w.From) + "-" + hm(w.To) + " " + loc
}

// During holds when the query arrives (Query.Time) inside one of windows.
func During(windows ...Window) Condition {
	return ConditionFunc(func(q *Query) bool {
		for _, w := range windows {
			if w.Contains(q.Time) {
				return true
			}
		}
		return false
	})
}

// IsKind holds when a statement of the query, or one nested in it, is of
// one of kinds.
func IsKind(kinds ...Kind) Condition {
	return ConditionFunc(func(q *Query) bool {
		for _, st := range q.Statements {
			if st.Is(kinds...) {
				return true
			}
		}
		return false
	})
}

// Writes holds when a statement of the query writes (Statement.Writes,
// which counts the nested statements that run).
func Writes() Condition {
	return ConditionFunc(func(q *Query) bool {
		for _, st := range q.Statements {
			if st.Writes {
				return true
			}
		}
		return false
	})
}

// AllRows holds when the query has an UPDATE or DELETE without WHERE
// (Statement.AllRows, which counts the nested statements that run).
func AllRows() Condition {
	return ConditionFunc(func(q *Query) bool {
		for _, st := range q.Statements {
			if st.AllRows {
				return true
			}
		}
		return false
	})
}

// Touches holds when the query reads or writes a relation matching one of
// patterns (see MatchRelation).
func Touches(patterns ...string) Condition {
	return ConditionFunc(func(q *Query) bool {
		_, ok := firstRelation(q, patterns, true)
		return ok
	})
}

// Calls holds when the query calls a function matching one of names (see
// MatchFunction).
func Calls(names ...string) Condition {
	return ConditionFunc(func(q *Query) bool {
		_, ok := firstFunction(q, names)
		return ok
	})
}

// ChangesSetting holds when the query changes one of the named settings
// (see Setting.Name), or settings named only at run time ("*"), or resets
// them all ("all").
func ChangesSetting(names ...string) Condition {
	return ConditionFunc(func(q *Query) bool {
		for _, st := range q.Statements {
			for s := st; s != nil; s = s.Inner {
				for _, set := range s.Settings {
					if set.Name == "*" || set.Name == "all" || slices.Contains(names, set.Name) {
						return true
					}
				}
			}
		}
		return false
	})
}
