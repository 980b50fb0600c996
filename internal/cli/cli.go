// Package cli holds what pushpull's three programs share at their front
// door: the error that means "bad flags or configuration", the exit status
// of every kind of error, and how an error is printed: as one line.
package cli

import (
	"errors"
	"fmt"
	"io"
)

// ErrUsage is wrapped by every error about how a program was invoked or
// configured, as opposed to a failure while it ran. Exit maps it to 2.
var ErrUsage = errors.New("invalid configuration")

// Exit returns the exit status for err, a program's Run error, and prints
// err on stderr as one line: 0 for nil; 2 when err wraps ErrUsage or one of
// also (such as pulld's unusable manifest), with a hint to run prog -h for
// ErrUsage; 1 otherwise. err's text is printed as it is: Run errors start
// with the program's name.
func Exit(stderr io.Writer, prog string, err error, also ...error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, err)
	if errors.Is(err, ErrUsage) {
		fmt.Fprintf(stderr, "run %s -h for the flags\n", prog)
		return 2
	}
	for _, target := range also {
		if errors.Is(err, target) {
			return 2
		}
	}
	return 1
}
