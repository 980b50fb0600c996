package cli_test

import (
	"errors"
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
