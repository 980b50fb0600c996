package pkginstall_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkginstall"
)

// TestTimeoutNotRetried: a script killed at the step timeout is not tried
// again (Teletraan's SCRIPT_TIMEOUT), while a script that exits non-zero
// still is (TestRetries).
func TestTimeoutNotRetried(t *testing.T) {
	f := newFixture(t, func(c *pkginstall.Config) {
		c.StepTimeout = 500 * time.Millisecond
		c.Tries = 3
		c.Backoff = 10 * time.Millisecond
	})
	v1 := f.release("hello", 1, app("v1", "teletraan/RESTARTING", "#!/bin/sh\necho hanging\nexec sleep 1000\n"))
	start := time.Now()
	r := f.apply(f.entry(v1))
	if !errors.Is(r.Err, pkginstall.ErrTimeout) || r.Step != manifest.StepRestarting {
		t.Fatalf("result %+v", r)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("Apply took %v: the timed-out step was tried again", took)
	}
	logs, _ := filepath.Glob(filepath.Join(f.root, "envs", "hello", "logs", r.DeployID+".RESTARTING.*.log"))
	if len(logs) != 1 {
		t.Errorf("attempt logs %q, want one attempt", logs)
	}
	if strings.Contains(f.logs.String(), "script failed; trying again") {
		t.Error("the log says the timed-out script is tried again")
	}
}

// TestRollbackAttemptLogs: the runs of a rollback get log files of their
// own (the failed deploy's POST_RESTART and the rollback's are two files,
// each with its own build's output), and every log line of a script names
// the package whose script it is.
func TestRollbackAttemptLogs(t *testing.T) {
	f := newFixture(t, func(c *pkginstall.Config) { c.Tries = 1 })
	say := "#!/bin/sh\necho \"POST_RESTART of $(cat ../version.txt)\"\n"
	v1 := f.release("hello", 1, app("v1", "teletraan/POST_RESTART", say))
	v2 := f.release("hello", 2, app("v2", "teletraan/POST_RESTART", say+"exit 3\n"))
	f.mustApply(f.entry(v1))
	r := f.apply(f.entry(v2))
	if r.State != manifest.StateRolledBack {
		t.Fatalf("result %+v", r)
	}
	dir := filepath.Join(f.root, "envs", "hello", "logs")
	for name, want := range map[string]string{
		r.DeployID + ".POST_RESTART.1.log":          "POST_RESTART of v2\n",
		r.DeployID + ".rollback.POST_RESTART.1.log": "POST_RESTART of v1\n",
	} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, line := range strings.Split(f.logs.String(), "\n") {
		for v, pkg := range map[string]manifest.PackageName{"v1": v1, "v2": v2} {
			if strings.Contains(line, "POST_RESTART of "+v) && !strings.Contains(line, `"package":"`+pkg.String()+`"`) {
				t.Errorf("output of %s's script labelled with another package: %s", v, line)
			}
		}
	}
}
