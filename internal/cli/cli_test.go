package cli_test

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/internal/cli"
)

func TestExit(t *testing.T) {
	errManifest := errors.New("unusable manifest")
	for _, tc := range []struct {
		name string
		err  error
		code int
		out  string
	}{
		{"nil", nil, 0, ""},
		{"usage", fmt.Errorf("prog: %w: -x is required", cli.ErrUsage), 2, "prog: invalid configuration: -x is required\nrun prog -h for the flags\n"},
		{"also", fmt.Errorf("prog: %w: servers/a.json", errManifest), 2, "prog: unusable manifest: servers/a.json\n"},
		{"failure", errors.New("prog: bucket unreachable"), 1, "prog: bucket unreachable\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			if code := cli.Exit(&out, "prog", tc.err, errManifest); code != tc.code || out.String() != tc.out {
				t.Errorf("Exit = %d, %q; want %d, %q", code, out.String(), tc.code, tc.out)
			}
		})
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		err     error
		say     string // in the error
		printed string // on the flag set's output
	}{
		{"ok", []string{"-n", "3"}, nil, "", ""},
		{"bad value", []string{"-n", "x"}, cli.ErrUsage, `prog: invalid configuration: invalid value "x" for flag -n`, ""},
		{"unknown flag", []string{"-nope"}, cli.ErrUsage, "flag provided but not defined: -nope", ""},
		{"arguments", []string{"extra"}, cli.ErrUsage, `unexpected arguments ["extra"]`, ""},
		{"help", []string{"-h"}, flag.ErrHelp, "", "usage of prog"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			fs := flag.NewFlagSet("prog", flag.ContinueOnError)
			fs.SetOutput(&out)
			fs.Usage = func() { fmt.Fprintln(fs.Output(), "usage of prog") }
			fs.Int("n", 0, "a number")
			err := cli.Parse(fs, tc.args)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.say) {
				t.Errorf("Parse = %v, want %v saying %q", err, tc.err, tc.say)
			}
			if !strings.Contains(out.String(), tc.printed) || tc.printed == "" && out.Len() > 0 {
				t.Errorf("printed %q, want %q", out.String(), tc.printed)
			}
		})
	}
}
