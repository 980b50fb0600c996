// Package cli holds what pushpull's three programs share at their front
// door: the error that means "bad flags or configuration", the exit status
// of every kind of error, and how an error is printed: as one line.
package cli

import (
	"errors"
	"flag"
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

// Parse parses args with fs, as flag.FlagSet.Parse does, but quietly: a bad
// flag or value is returned as one line wrapping ErrUsage (for Exit to print
// with its hint), not printed with the whole usage; -h and -help print the
// usage (fs.Usage, or the defaults) and return flag.ErrHelp. Arguments left after the
// flags are an error too.
func Parse(fs *flag.FlagSet, args []string) error {
	usage := fs.Usage
	if usage == nil {
		usage = fs.PrintDefaults
	}
	out := fs.Output()
	fs.Usage = func() {} // a bad flag is one line, not the whole usage
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage()
		return flag.ErrHelp
	case err != nil:
		return fmt.Errorf("%s: %w: %v", fs.Name(), ErrUsage, err)
	case fs.NArg() > 0:
		return fmt.Errorf("%s: %w: unexpected arguments %q", fs.Name(), ErrUsage, fs.Args())
	}
	return nil
}
