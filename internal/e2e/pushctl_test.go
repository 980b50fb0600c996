package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/internal/testing/syncbuf"
	"github.com/pushpull/pushpull/manifest"
)

// pushctlRun is one pushctl invocation's outcome.
type pushctlRun struct {
	code           int
	stdout, stderr string
}

// pushctl runs pushctl with args and env added to the test's environment,
// as a CI job would: its output is not a terminal.
func pushctl(t *testing.T, env []string, args ...string) pushctlRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.pushctl, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := pushctlRun{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("pushctl %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("pushctl %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// startedID returns the rollout id of pushctl rollout start's first line.
func startedID(t *testing.T, out string) string {
	t.Helper()
	f := strings.Fields(out)
	if len(f) < 2 || f[0] != "rollout" {
		t.Fatalf("pushctl's first line does not name the rollout: %q", out)
	}
	return f[1]
}

// TestPushctl drives rollouts with pushctl against a real pushui and real
// pulld hosts, as a pipeline would: the exit status of -wait for a good
// build (0), a broken one (1, the failing host and its output printed,
// the group reverted), a rollout paused and resumed by another pushctl
// while pushui is killed and started again on the same address (0),
// -o json, and a refused password (4, one line).
func TestPushctl(t *testing.T) {
	for _, tc := range rolloutBuckets {
		t.Run(tc.name, func(t *testing.T) {
			w := newRolloutWorld(t, tc.bucket(t))
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
			ui := w.startUIAt("pushui", addr)
			url := []string{"PUSHCTL_URL=http://" + addr}

			good := pushctl(t, url, "rollout", "start", "-group", "web", "-canary", "1", "-steps", "50,100", "-min-healthy-time", "0s", "-wait", "-timeout", "2m", w.pkgs["v2"].String())
			if good.code != 0 || !strings.Contains(good.stdout, "succeeded") {
				t.Fatalf("rollout of v2: exit %d, want 0 and \"succeeded\"", good.code)
			}
			if strings.ContainsAny(good.stdout, "\r\x1b") {
				t.Errorf("output to a pipe holds carriage returns or escape codes: %q", good.stdout)
			}
			w.waitServing(w.pkgs["v2"], rolloutMembers...)

			bad := pushctl(t, url, "rollout", "start", "-group", "web", "-canary", "1", "-min-healthy-time", "0s", "-auto-revert", "-wait", "-timeout", "2m", w.pkgs["v3"].String())
			if bad.code != 1 {
				t.Fatalf("rollout of the broken v3: exit %d, want 1", bad.code)
			}
			id := startedID(t, bad.stdout)
			rec := w.record(id)
			canary := rec.History[0].Canaries
			if len(canary) != 1 || !strings.Contains(bad.stderr, canary[0]+" failed") || !strings.Contains(bad.stderr, "POST_RESTART") || !strings.Contains(bad.stderr, "hello did not come up") {
				t.Errorf("the failure report does not name the canary %v, its step and its script's output:\n%s", canary, bad.stderr)
			}
			if rec.State != manifest.RolloutReverted {
				t.Errorf("the broken rollout is %s, want reverted", rec.State)
			}
			m, _, _ := w.store.ReadManifest(t.Context(), manifest.Group("web"))
			if e, _ := m.Lookup("hello"); e.Package != w.pkgs["v2"] {
				t.Errorf("group entry after the revert: %s, want v2", e.Package)
			}

			// Watched by one pushctl, paused and resumed by another, with
			// pushui killed and started again between.
			watch := exec.CommandContext(t.Context(), bin.pushctl, "rollout", "start", "-group", "web", "-canary", "1", "-steps", "100", "-min-healthy-time", "2s", "-wait", "-timeout", "2m", w.pkgs["v1"].String())
			watch.Env = append(os.Environ(), url...)
			var wout, werr syncbuf.Buffer
			watch.Stdout, watch.Stderr = &wout, &werr
			if err := watch.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(wout.String(), "started") && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			id = startedID(t, wout.String())
			if r := pushctl(t, url, "rollout", "pause", id); r.code != 0 {
				t.Fatalf("pause: exit %d", r.code)
			}
			// The watcher's long poll sees the pause, then loses pushui.
			for !strings.Contains(wout.String(), "paused") && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			ui.stop(syscall.SIGKILL)
			ui = w.startUIAt("pushui-again", addr)
			if r := pushctl(t, url, "rollout", "resume", id); r.code != 0 {
				t.Fatalf("resume: exit %d", r.code)
			}
			err := watch.Wait()
			t.Logf("the watching pushctl:\n%s%s", wout.String(), werr.String())
			if err != nil {
				t.Fatalf("the watching pushctl: %v, want exit 0", err)
			}
			if !strings.Contains(wout.String(), "paused") || !strings.Contains(wout.String(), "succeeded") || !strings.Contains(werr.String(), "waiting for it") {
				t.Errorf("the watcher did not report the pause, the lost pushui and the end")
			}

			js := pushctl(t, url, "rollout", "get", "-o", "json", id)
			var got manifest.RolloutRecord
			if err := json.Unmarshal([]byte(js.stdout), &got); js.code != 0 || err != nil || got.ID != id || got.State != manifest.RolloutSucceeded {
				t.Errorf("rollout get -o json: exit %d, %v, %+v", js.code, err, got)
			}

			// The fleet at a glance, its history and packages, a deploy by
			// commit, and a host's script output.
			st := pushctl(t, url, "status")
			if st.code != 0 || !strings.Contains(st.stdout, "web") || !strings.Contains(st.stdout, w.pkgs["v1"].Commit[:7]) {
				t.Errorf("status: exit %d, want the group web on v1", st.code)
			}
			var groups client.Groups
			if r := pushctl(t, url, "status", "-o", "json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &groups) != nil || len(groups.Groups) != 1 || groups.Groups[0].Members != 3 {
				t.Errorf("status -o json: exit %d, %+v", r.code, groups)
			}
			if r := pushctl(t, url, "status", "web-1"); r.code != 0 || !strings.Contains(r.stdout, "SERVING_BUILD") {
				t.Errorf("status web-1: exit %d", r.code)
			}
			if r := pushctl(t, url, "packages", "hello"); r.code != 0 || strings.Count(r.stdout, "hello/hello-") != 3 {
				t.Errorf("packages hello: exit %d, want the three builds", r.code)
			}
			if r := pushctl(t, url, "history", "web"); r.code != 0 || !strings.Contains(r.stdout, "rollout "+id) {
				t.Errorf("history web: exit %d, want the rollout's writes", r.code)
			}
			if r := pushctl(t, url, "deploy", "-group", "web", "-wait", "-timeout", "2m", "hello@"+w.pkgs["v2"].Commit[:8]); r.code != 0 || !strings.Contains(r.stdout, "set to "+w.pkgs["v2"].String()) || !strings.Contains(r.stdout, "3 of 3 hosts serve it") {
				t.Errorf("deploy -wait hello@COMMIT: exit %d, want 0 once the three hosts serve v2", r.code)
			}
			w.waitServing(w.pkgs["v2"], rolloutMembers...)
			// The broken build to the whole group: every host rolls back,
			// and -wait says so with exit 1.
			if r := pushctl(t, url, "deploy", "-group", "web", "-wait", "-timeout", "2m", "hello@"+w.pkgs["v3"].Commit[:8]); r.code != 1 || !strings.Contains(r.stderr, "failed") || !strings.Contains(r.stderr, "hello did not come up") {
				t.Errorf("deploy -wait of the broken v3: exit %d, want 1 with the failing hosts' output", r.code)
			}
			if r := pushctl(t, url, "deploy", "-group", "web", "-wait", "-timeout", "2m", w.pkgs["v2"].String()); r.code != 0 {
				t.Errorf("deploy -wait back to v2: exit %d", r.code)
			}
			if r := pushctl(t, url, "logs", canary[0], "hello"); r.code != 0 || !strings.Contains(r.stdout, "hello did not come up") {
				t.Errorf("logs %s hello: exit %d, want the output of its failed v3", canary[0], r.code)
			}
			if r := pushctl(t, url, "deploy", "-group", "web", "hello@ffffff"); r.code != 2 {
				t.Errorf("deploy of a commit that matches nothing: exit %d, want 2", r.code)
			}
			ui.stop(syscall.SIGTERM)

			// A pushui that wants a password: a wrong one exits 4.
			line, err := auth.HtpasswdLine("alice", []byte("wonderland"))
			if err != nil {
				t.Fatal(err)
			}
			ht := filepath.Join(t.TempDir(), "htpasswd")
			if err := os.WriteFile(ht, []byte(line+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			w.startUIAt("pushui-htpasswd", addr, "-htpasswd", ht, "-admins", "alice")
			wrong := pushctl(t, append(url, "PUSHCTL_USER=alice", "PUSHCTL_PASSWORD=guess"), "rollout", "list")
			if wrong.code != 4 || strings.Count(strings.TrimSpace(wrong.stderr), "\n") != 0 || !strings.Contains(wrong.stderr, "401") {
				t.Errorf("a wrong password: exit %d, stderr %q; want 4 and one line", wrong.code, wrong.stderr)
			}
			if r := pushctl(t, append(url, "PUSHCTL_USER=alice", "PUSHCTL_PASSWORD=wonderland"), "rollout", "list", "-group", "web"); r.code != 0 || !strings.Contains(r.stdout, id) {
				t.Errorf("the right password: exit %d", r.code)
			}
		})
	}
}
