package pushctl_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/internal/pushctl"
	"github.com/pushpull/pushpull/manifest"
)

// TestExitCode checks the exit status each outcome gives, as the docs
// promise a pipeline, and that the error is one line on stderr.
func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, pushctl.ExitOK},
		{fmt.Errorf("rollout x reverted: %w", pushctl.ErrFailed), pushctl.ExitFailed},
		{fmt.Errorf("%w: -group is required", cli.ErrUsage), pushctl.ExitUsage},
		{&client.Error{Status: 400, Message: "bad strategy"}, pushctl.ExitUsage},
		{&client.Error{Status: 409, Message: "active"}, pushctl.ExitUsage},
		{fmt.Errorf("still running: %w", pushctl.ErrTimeout), pushctl.ExitTimeout},
		{&client.Error{Status: 401, Message: "sign in"}, pushctl.ExitCredentials},
		{&client.Error{Status: 403, Message: "not an admin"}, pushctl.ExitCredentials},
		{fmt.Errorf("x: %w", client.ErrNoCredentials), pushctl.ExitCredentials},
		{&client.Error{Status: 502, Message: "bucket"}, pushctl.ExitFailed},
		{errors.New("anything else"), pushctl.ExitFailed},
	} {
		var stderr bytes.Buffer
		if got := pushctl.ExitCode(&stderr, tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
		if tc.err != nil && strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("ExitCode(%v) printed %q, want one line", tc.err, stderr.String())
		}
	}
}

// TestUsage checks that what pushctl refuses before asking pushui is a
// usage error (2) naming the problem, and that help answers.
func TestUsage(t *testing.T) {
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := pushctl.Run(t.Context(), pushctl.Config{Args: args, Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }})
		return out.String() + errOut.String(), err
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"rollout"}, "want start, get"},
		{[]string{"rollout", "start", "hello/hello-20261101T000000Z-0123456789ab.tar.zst"}, "-group is required"},
		{[]string{"rollout", "start", "-group", "web", "not-a-package"}, "rollout start"},
		{[]string{"rollout", "start", "-group", "web", "-canary", "many", "hello/hello-20261101T000000Z-0123456789ab.tar.zst"}, "canary"},
		{[]string{"rollout", "get"}, "want a rollout ID"},
		{[]string{"deploy", "-server", "a", "-group", "b", "p"}, "one of -server and -group"},
		{[]string{"logs", "web-1"}, "SERVER ENV"},
		{[]string{"rollout", "list", "-o", "yaml"}, "table or json"},
	} {
		out, err := run(tc.args...)
		if pushctl.ExitCode(&bytes.Buffer{}, err) != pushctl.ExitUsage || !strings.Contains(err.Error()+out, tc.want) {
			t.Errorf("pushctl %v: %v (%s), want a usage error naming %q", tc.args, err, out, tc.want)
		}
	}
	out, err := run("help", "rollout")
	if err != nil || !strings.Contains(out, "-min-healthy-time") || !strings.Contains(out, "exit status 0") {
		t.Errorf("help rollout: %v\n%s", err, out)
	}
	if out, err := run(); err != nil || !strings.Contains(out, "Exit status") {
		t.Errorf("no arguments: %v\n%s", err, out)
	}
}

// TestDisplay checks the terminal's progress block: the step's bar, the
// members line and the failing hosts.
func TestDisplay(t *testing.T) {
	rec := &manifest.RolloutRecord{ID: "r1", State: manifest.RolloutRunning, Step: 1,
		Strategy: manifest.RolloutStrategy{Group: "web", Canary: 1, Steps: []float64{50, 100}},
		History:  []manifest.RolloutStep{{Canaries: []string{"web-1"}, Hosts: 1, Done: 1}, {Percent: 50, Hosts: 4, Done: 2, Failed: []string{"web-3"}}}}
	got := strings.Join(pushctl.Display(rec, "5 members: 3 serving_build, 1 deploying, 1 failed"), "\n")
	for _, want := range []string{"rollout r1", "running", "step 2 of 3", "50%", "[###############...............] 2/4 hosts done", "5 members", "failing: web-3"} {
		if !strings.Contains(got, want) {
			t.Errorf("the block lacks %q:\n%s", want, got)
		}
	}
}
