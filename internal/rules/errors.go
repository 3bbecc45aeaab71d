package rules

import "errors"

// ErrUnsatisfiable is wrapped by the *Error Compile returns for a rule that
// can never evaluate to True, so an admin learns of the mistake when saving
// the rule instead of from a group that stays empty.
var ErrUnsatisfiable = errors.New("the rule can never match")

// ErrInvalid is wrapped by every other *Error Compile returns.
var ErrInvalid = errors.New("invalid rule")

// Error is a problem with a rule, located by the JSON path of the value at
// fault: "all[2].value", "any[0].not.op"; empty for the rule as a whole.
// Messages say what to change and never repeat the rule's values, which may
// identify a device or person.
type Error struct {
	Path    string
	Message string
	kind    error // ErrInvalid or ErrUnsatisfiable
}

func (e *Error) Error() string {
	path := e.Path
	if path == "" {
		path = "rule"
	}
	if e.kind == ErrUnsatisfiable {
		return path + ": " + ErrUnsatisfiable.Error() + ": " + e.Message
	}
	return path + ": " + e.Message
}

// Unwrap returns ErrInvalid or ErrUnsatisfiable.
func (e *Error) Unwrap() error { return e.kind }

func errorAt(path, msg string) *Error { return &Error{Path: path, Message: msg, kind: ErrInvalid} }

func unsatisfiableAt(path, msg string) *Error {
	return &Error{Path: path, Message: msg, kind: ErrUnsatisfiable}
}
