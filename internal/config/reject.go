package config

// Reject records a problem found by a check across variables (one duration
// that must be shorter than another, say): value is the offending variable's
// value and expected says what would do.
func (l *Loader) Reject(name, value, expected string) {
	for _, e := range l.errs {
		if e.Var == name {
			return
		}
	}
	l.errs = append(l.errs, &Error{Var: name, Value: value, Expected: expected})
}
