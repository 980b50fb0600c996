package pkginstall_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkginstall"
)

// TestTimeoutKillsGroup checks that a script that never ends, and a child it
// forked that holds its stdout, are both killed within 2 s of the timeout.
func TestTimeoutKillsGroup(t *testing.T) {
	f := newFixture(t, func(c *pkginstall.Config) {
		c.StepTimeout = time.Second
		c.Tries = 1
	})
	pids := filepath.Join(t.TempDir(), "pids")
	v1 := f.release("hello", 1, app("v1", "teletraan/RESTARTING", `#!/bin/sh
echo started
sleep 1000 &
echo $! > "$PIDS"
echo $$ >> "$PIDS"
sh -c 'while :; do sleep 1; done' &
echo $! >> "$PIDS"
wait
`))
	start := time.Now()
	r := f.apply(f.entry(v1, "PIDS", pids))
	took := time.Since(start)
	if !errors.Is(r.Err, pkginstall.ErrTimeout) || r.Step != "RESTARTING" || r.State != manifest.StateFailed {
		t.Fatalf("result %+v", r)
	}
	if took > 3*time.Second {
		t.Errorf("Apply took %v with a 1 s timeout", took)
	}
	if !strings.Contains(r.Output, "started") {
		t.Errorf("output = %q", r.Output)
	}
	data, err := os.ReadFile(pids)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for _, s := range strings.Fields(string(data)) {
		pid, _ := strconv.Atoi(s)
		for {
			err := syscall.Kill(pid, 0)
			if errors.Is(err, syscall.ESRCH) || isZombie(pid) {
				break
			}
			if time.Now().After(deadline) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Errorf("process %d still alive after the timeout", pid)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// isZombie reports whether pid has exited but not been reaped.
func isZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// TestBackgroundChild checks that a script whose background child keeps
// running with the script's output (a service started by RESTARTING)
// succeeds as soon as the script exits.
func TestBackgroundChild(t *testing.T) {
	f := newFixture(t)
	pids := filepath.Join(t.TempDir(), "pids")
	v1 := f.release("hello", 1, app("v1", "teletraan/RESTARTING", `#!/bin/sh
sleep 1000 &
echo $! > "$PIDS"
echo service started
`))
	start := time.Now()
	r := f.mustApply(f.entry(v1, "PIDS", pids))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Apply took %v", took)
	}
	data, _ := os.ReadFile(pids)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if pid == 0 || syscall.Kill(pid, 0) != nil {
		t.Errorf("the service (pid %d) did not survive its script", pid)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	_ = r
}

// TestOutput checks that script output reaches the logger line by line,
// with env and step, the attempt's log file, and, its last 10 KB, the
// Result.
func TestOutput(t *testing.T) {
	f := newFixture(t, func(c *pkginstall.Config) { c.Tries = 1 })
	v1 := f.release("hello", 1, app("v1", "teletraan/POST_RESTART", `#!/bin/sh
i=0
while [ $i -lt 500 ]; do
	echo "line $i of the post-restart output, padded to be long enough......"
	i=$((i+1))
done
echo "last words" >&2
exit 1
`))
	r := f.apply(f.entry(v1, "on_failure", "continue"))
	if r.Err == nil || r.Step != "POST_RESTART" {
		t.Fatalf("result %+v", r)
	}
	if len(r.Output) != pkginstall.OutputTail || !strings.HasSuffix(r.Output, "last words\n") {
		t.Errorf("output: %d bytes ending %q", len(r.Output), r.Output[max(0, len(r.Output)-40):])
	}
	logFile := filepath.Join(f.root, "envs", "hello", "logs", r.DeployID+".POST_RESTART.1.log")
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 501 {
		t.Errorf("log file has %d lines", n)
	}
	var lines int
	for _, l := range strings.Split(f.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) != nil || rec["msg"] != "script output" {
			continue
		}
		if rec["env"] != "hello" || rec["step"] != "POST_RESTART" || rec["deploy_id"] != r.DeployID {
			t.Fatalf("log record %s", l)
		}
		if lines == 0 && rec["line"] != "line 0 of the post-restart output, padded to be long enough......" {
			t.Errorf("first line %q", rec["line"])
		}
		lines++
	}
	if lines != 501 {
		t.Errorf("%d lines logged, want 501", lines)
	}
}

// TestContextCancel checks that cancelling Apply's context kills the
// running script at once and tries it no more.
func TestContextCancel(t *testing.T) {
	f := newFixture(t)
	v1 := f.release("hello", 1, app("v1", "teletraan/RESTARTING", "#!/bin/sh\nsleep 1000\n"))
	ctx, cancel := contextWithTimeout(t, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := f.eng.Apply(ctx, f.entry(v1))
	if r.Err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("result %+v after %v", r, time.Since(start))
	}
	logs, _ := filepath.Glob(filepath.Join(f.root, "envs", "hello", "logs", r.DeployID+".RESTARTING.*.log"))
	if len(logs) != 1 {
		t.Errorf("attempts after cancel: %q", logs)
	}
}

// TestCancelNoPolicy checks that a deploy cancelled after the switch (pulld
// shutting down) applies no failure policy: with on_failure stop, STOPPING
// does not run and current stays; the next Apply finishes the deploy.
func TestCancelNoPolicy(t *testing.T) {
	f := newFixture(t)
	v1 := f.release("hello", 1, app("v1"))
	v2 := f.release("hello", 2, app("v2", "teletraan/RESTARTING", "#!/bin/sh\n[ -n \"$DONE\" ] || sleep 1000\n"))
	f.mustApply(f.entry(v1))
	f.steps()
	ctx, cancel := contextWithTimeout(t, 300*time.Millisecond)
	defer cancel()
	r := f.eng.Apply(ctx, f.entry(v2, "on_failure", "stop"))
	if r.Err == nil || r.State != manifest.StateFailed || r.What != pkginstall.Failed || f.current("hello") != v2.ID() {
		t.Fatalf("result %+v", r)
	}
	if got, want := f.steps(), cat(expect("DEPLOY", v2, v1, pre, post), expect("DEPLOY", v2, v2, preR)); !slices.Equal(got, want) {
		t.Errorf("steps\n got %q\nwant %q", got, want)
	}
	r = f.mustApply(f.entry(v2, "on_failure", "stop", "DONE", "1"))
	if r.Downloaded != 0 {
		t.Errorf("downloaded again: %d", r.Downloaded)
	}
	if got, want := f.steps(), expect("DEPLOY", v2, v2, preR, posR); !slices.Equal(got, want) {
		t.Errorf("finishing steps\n got %q\nwant %q", got, want)
	}
}
