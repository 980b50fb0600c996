package manifest

import (
	"errors"
	"fmt"
	"regexp"
)

// ErrInvalidName is wrapped by every error about a malformed app, env or
// server name, so callers can check it with errors.Is.
var ErrInvalidName = errors.New("invalid name")

// MaxNameLen is the longest app, env or server name accepted.
const MaxNameLen = 63

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// CheckName reports whether name is a valid app, env or server name: it
// matches ^[a-z0-9][a-z0-9._-]{0,62}$ and is not "." or "..". Such a name can
// safely become part of an object key or a file path. kind ("app", "env",
// "server", …) is only used in the error message.
func CheckName(kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty %s name", ErrInvalidName, kind)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %s name %.20q… is %d characters, longer than %d", ErrInvalidName, kind, name, len(name), MaxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %s name %q", ErrInvalidName, kind, name)
	case !nameRE.MatchString(name):
		return fmt.Errorf("%w: %s name %q: must match %s", ErrInvalidName, kind, name, nameRE)
	}
	return nil
}
