package pkginstall_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkginstall"
)

// TestCycle checks every path of the cycle: the exact steps, in order, the
// OPCODE and BUILD_ID each script saw, and which build each came from.
func TestCycle(t *testing.T) {
	type want struct {
		action  manifest.Action
		what    pkginstall.What
		steps   func(v1, v2 manifest.PackageName) []string
		current func(v1, v2 manifest.PackageName) string
	}
	cases := []struct {
		name string
		// prep runs before the action; its steps are not checked.
		prep func(f *fixture, v1, v2 manifest.PackageName)
		do   func(f *fixture, v1, v2 manifest.PackageName) pkginstall.Result
		want want
		// check runs last, for what is particular to the case.
		check func(t *testing.T, f *fixture, r pkginstall.Result, v1, v2 manifest.PackageName)
	}{
		{
			name: "first deploy",
			do:   func(f *fixture, v1, _ manifest.PackageName) pkginstall.Result { return f.apply(f.entry(v1)) },
			want: want{manifest.ActionDeploy, pkginstall.Deployed,
				func(v1, _ manifest.PackageName) []string { return expect("DEPLOY", v1, v1, preR, rest, posR) },
				func(v1, _ manifest.PackageName) string { return v1.ID() }},
			check: func(t *testing.T, f *fixture, r pkginstall.Result, v1, _ manifest.PackageName) {
				if r.Downloaded == 0 || r.DeployID == "" {
					t.Errorf("downloaded %d, deploy id %q", r.Downloaded, r.DeployID)
				}
				if got := f.file("hello", "version.txt"); got != "v1\n" {
					t.Errorf("version.txt = %q", got)
				}
				if got := f.file("hello", "teletraan/app.conf"); got != "version=v1 level=info tag=none\n" {
					t.Errorf("rendered template = %q", got)
				}
			},
		},
		{
			name: "regular deploy",
			prep: func(f *fixture, v1, _ manifest.PackageName) { f.mustApply(f.entry(v1)) },
			do:   func(f *fixture, _, v2 manifest.PackageName) pkginstall.Result { return f.apply(f.entry(v2)) },
			want: want{manifest.ActionDeploy, pkginstall.Deployed,
				func(v1, v2 manifest.PackageName) []string {
					return cat(expect("DEPLOY", v2, v1, pre, post), expect("DEPLOY", v2, v2, preR, rest, posR))
				},
				func(_, v2 manifest.PackageName) string { return v2.ID() }},
			check: func(t *testing.T, f *fixture, r pkginstall.Result, v1, v2 manifest.PackageName) {
				if got := f.builds("hello"); !slices.Equal(got, []string{v1.ID(), v2.ID()}) {
					t.Errorf("builds = %q", got)
				}
			},
		},
		{
			name: "rollback to a kept build reads nothing from the bucket",
			prep: func(f *fixture, v1, v2 manifest.PackageName) {
				f.mustApply(f.entry(v1))
				f.mustApply(f.entry(v2))
				if err := f.store.Bucket().Delete(f.t.Context(), blobstore.PackageKey(v1)); err != nil {
					f.t.Fatal(err)
				}
			},
			do: func(f *fixture, v1, _ manifest.PackageName) pkginstall.Result {
				if a, err := f.eng.Plan(f.entry(v1)); err != nil || a != manifest.ActionRollback {
					f.t.Errorf("Plan = %v, %v; want rollback", a, err)
				}
				return f.apply(f.entry(v1, "LOG_LEVEL", "warn"))
			},
			want: want{manifest.ActionRollback, pkginstall.RolledBack,
				func(v1, v2 manifest.PackageName) []string {
					return cat(expect("ROLLBACK", v1, v2, pre, post), expect("ROLLBACK", v1, v1, preR, rest, posR))
				},
				func(v1, _ manifest.PackageName) string { return v1.ID() }},
			check: func(t *testing.T, f *fixture, r pkginstall.Result, v1, _ manifest.PackageName) {
				if r.Downloaded != 0 {
					t.Errorf("rollback downloaded %d bytes", r.Downloaded)
				}
				if got := f.file("hello", "teletraan/app.conf"); got != "version=v1 level=warn tag=none\n" {
					t.Errorf("template not re-rendered with the entry's config: %q", got)
				}
			},
		},
		{
			name: "forward to a kept build is a deploy without download",
			prep: func(f *fixture, v1, v2 manifest.PackageName) {
				f.mustApply(f.entry(v1))
				f.mustApply(f.entry(v2))
				f.mustApply(f.entry(v1))
			},
			do: func(f *fixture, _, v2 manifest.PackageName) pkginstall.Result { return f.apply(f.entry(v2)) },
			want: want{manifest.ActionDeploy, pkginstall.Deployed,
				func(v1, v2 manifest.PackageName) []string {
					return cat(expect("DEPLOY", v2, v1, pre, post), expect("DEPLOY", v2, v2, preR, rest, posR))
				},
				func(_, v2 manifest.PackageName) string { return v2.ID() }},
			check: func(t *testing.T, f *fixture, r pkginstall.Result, _, _ manifest.PackageName) {
				if r.Downloaded != 0 {
					t.Errorf("downloaded %d bytes of a kept build", r.Downloaded)
				}
			},
		},
		{
			name: "config change restarts and re-renders",
			prep: func(f *fixture, v1, _ manifest.PackageName) { f.mustApply(f.entry(v1)) },
			do: func(f *fixture, v1, _ manifest.PackageName) pkginstall.Result {
				return f.apply(f.entry(v1, "LOG_LEVEL", "debug", "TAG", "x y"))
			},
			want: want{manifest.ActionRestart, pkginstall.Restarted,
				func(v1, _ manifest.PackageName) []string { return expect("RESTART", v1, v1, preR, rest, posR) },
				func(v1, _ manifest.PackageName) string { return v1.ID() }},
			check: func(t *testing.T, f *fixture, r pkginstall.Result, v1, _ manifest.PackageName) {
				if got := f.file("hello", "teletraan/app.conf"); got != "version=v1 level=debug tag=x y\n" {
					t.Errorf("rendered template = %q", got)
				}
				if r.Downloaded != 0 {
					t.Errorf("restart downloaded %d bytes", r.Downloaded)
				}
			},
		},
		{
			name: "restart token change restarts",
			prep: func(f *fixture, v1, _ manifest.PackageName) { f.mustApply(f.entry(v1, "restart", "a")) },
			do: func(f *fixture, v1, _ manifest.PackageName) pkginstall.Result {
				return f.apply(f.entry(v1, "restart", "b"))
			},
			want: want{manifest.ActionRestart, pkginstall.Restarted,
				func(v1, _ manifest.PackageName) []string { return expect("RESTART", v1, v1, preR, rest, posR) },
				func(v1, _ manifest.PackageName) string { return v1.ID() }},
		},
		{
			name: "unchanged entry does nothing",
			prep: func(f *fixture, v1, _ manifest.PackageName) { f.mustApply(f.entry(v1, "restart", "a")) },
			do: func(f *fixture, v1, _ manifest.PackageName) pkginstall.Result {
				return f.apply(f.entry(v1, "restart", "a"))
			},
			want: want{manifest.ActionNone, pkginstall.Unchanged,
				func(_, _ manifest.PackageName) []string { return nil },
				func(v1, _ manifest.PackageName) string { return v1.ID() }},
		},
		{
			name: "stop",
			prep: func(f *fixture, v1, v2 manifest.PackageName) {
				f.mustApply(f.entry(v1))
				f.mustApply(f.entry(v2))
			},
			do: func(f *fixture, _, _ manifest.PackageName) pkginstall.Result {
				return f.eng.Stop(f.t.Context(), "hello")
			},
			want: want{manifest.ActionStop, pkginstall.Stopped,
				func(_, v2 manifest.PackageName) []string { return expect("STOP", v2, v2, stop) },
				func(_, _ manifest.PackageName) string { return "" }},
			check: func(t *testing.T, f *fixture, r pkginstall.Result, v1, v2 manifest.PackageName) {
				if r.State != manifest.StateStopped || !r.Serving.IsZero() {
					t.Errorf("result %+v", r)
				}
				if got := f.builds("hello"); !slices.Equal(got, []string{v1.ID(), v2.ID()}) {
					t.Errorf("builds after stop = %q; they are kept", got)
				}
				if inst, err := f.eng.Installed(); err != nil || len(inst) != 0 {
					t.Errorf("Installed after stop = %v, %v", inst, err)
				}
				// A deploy after a stop is a first deploy again.
				f.mustApply(f.entry(v2))
				if got, want := f.steps(), expect("DEPLOY", v2, v2, preR, rest, posR); !slices.Equal(got, want) {
					t.Errorf("deploy after stop: steps\n got %q\nwant %q", got, want)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			v1 := f.release("hello", 1, app("v1"))
			v2 := f.release("hello", 2, app("v2"))
			if tc.prep != nil {
				tc.prep(f, v1, v2)
			}
			f.steps()
			r := tc.do(f, v1, v2)
			if r.Err != nil {
				t.Fatalf("result: %+v", r)
			}
			if r.Action != tc.want.action || r.What != tc.want.what {
				t.Errorf("action %q what %q, want %q %q", r.Action, r.What, tc.want.action, tc.want.what)
			}
			if r.Action != manifest.ActionStop && (r.State != manifest.StateServing || r.Step != manifest.StepServing) {
				t.Errorf("state %s step %s", r.State, r.Step)
			}
			if got, want := f.steps(), tc.want.steps(v1, v2); !slices.Equal(got, want) {
				t.Errorf("steps\n got %q\nwant %q", got, want)
			}
			if got, want := f.current("hello"), tc.want.current(v1, v2); got != want {
				t.Errorf("current = %q, want %q", got, want)
			}
			if want := tc.want.current(v1, v2); want != "" && r.Serving.String() != strings.Replace(want, "hello-", "hello/hello-", 1)+".tar.zst" {
				t.Errorf("Serving = %q", r.Serving)
			}
			if tc.check != nil {
				tc.check(t, f, r, v1, v2)
			}
			// Whatever happened survives a restart of the engine.
			before := f.current("hello")
			f.reopen()
			if f.current("hello") != before {
				t.Errorf("current changed by reopen: %q → %q", before, f.current("hello"))
			}
		})
	}
}

// TestEnvSpecificScripts checks that teletraan/{ENV_NAME}/ wins, as a
// whole, over teletraan/, and that a missing script is skipped.
func TestEnvSpecificScripts(t *testing.T) {
	f := newFixture(t)
	files := app("v1")
	files["teletraan/api/RESTARTING"] = recScript
	files["teletraan/api/POST_RESTART"] = recScript
	delete(files, "teletraan/POST_RESTART")
	v1 := f.release("svc", 1, files)

	f.mustApply(f.entry(v1, "env", "api"))
	want := []string{
		"RESTARTING DEPLOY " + v1.File() + " @" + v1.ID() + "/api",
		"POST_RESTART DEPLOY " + v1.File() + " @" + v1.ID() + "/api",
	}
	if got := f.steps(); !slices.Equal(got, want) {
		t.Errorf("env api: steps\n got %q\nwant %q", got, want)
	}
	f.mustApply(f.entry(v1, "env", "web"))
	if got, want := f.steps(), expect("DEPLOY", v1, v1, preR, rest); !slices.Equal(got, want) {
		t.Errorf("env web: steps\n got %q\nwant %q", got, want)
	}
	if f.current("api") != v1.ID() || f.current("web") != v1.ID() {
		t.Errorf("current: api %q web %q", f.current("api"), f.current("web"))
	}
}

// TestScriptEnvironment checks every variable a script sees, its working
// directory, and that DEPLOY_ID is shared by the steps of one attempt and
// differs between attempts.
func TestScriptEnvironment(t *testing.T) {
	f := newFixture(t)
	dump := t.TempDir()
	script := `#!/bin/sh
env > "` + dump + `/$DEPLOY_STEP.$OPCODE"
echo "PWD_ACTUAL=$(pwd)" >> "` + dump + `/$DEPLOY_STEP.$OPCODE"
`
	files := app("v1")
	for _, s := range allSteps {
		files["teletraan/"+s] = script
	}
	v1 := f.release("hello", 1, files)
	files = app("v2")
	for _, s := range allSteps {
		files["teletraan/"+s] = script
	}
	v2 := f.release("hello", 2, files)

	read := func(name string) map[string]string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dump, name))
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				m[k] = v
			}
		}
		return m
	}
	r1 := f.mustApply(f.entry(v1, "LOG_LEVEL", "debug"))
	r2 := f.mustApply(f.entry(v2, "LOG_LEVEL", "info", "ENV_NAME", "not-this"))
	envDir := filepath.Join(f.root, "envs", "hello")
	for _, c := range []struct {
		file string
		want map[string]string
	}{
		{"RESTARTING.DEPLOY", map[string]string{
			"ENV_NAME": "hello", "STAGE_NAME": "web-1", "DEPLOY_ID": r1.DeployID, "DEPLOY_STEP": "RESTARTING",
			"OPCODE": "DEPLOY", "DEPLOY_TYPE": "REGULAR", "COMPUTE_ENV_TYPE": "PRODUCTION",
			"BUILD_COMMIT": v2.Commit + "0000", "BUILD_NAME": "hello", "BUILD_REPO": "https://example.com/hello",
			"BUILD_BRANCH": "main", "BUILD_ID": v2.File(), "BUILD_URL": "mem://packages/" + v2.String(),
			"TARGET": filepath.Join(envDir, "current"), "BUILDS_DIR": filepath.Join(envDir, "builds"),
			"LOG_LEVEL": "info", "REC": f.rec,
			"PWD_ACTUAL": filepath.Join(envDir, "builds", v2.ID(), "teletraan"),
		}},
		{"PRE_DOWNLOAD.DEPLOY", map[string]string{
			"DEPLOY_ID": r2.DeployID, "DEPLOY_STEP": "PRE_DOWNLOAD", "BUILD_ID": v2.File(),
			// Teletraan sets BUILD_* at every step, before the download too.
			"BUILD_COMMIT": v2.Commit + "0000", "BUILD_REPO": "https://example.com/hello", "BUILD_BRANCH": "main",
			"BUILD_URL":  "mem://packages/" + v2.String(),
			"PWD_ACTUAL": filepath.Join(envDir, "builds", v1.ID(), "teletraan"), "ENV_NAME": "hello",
		}},
	} {
		got := read(c.file)
		// Teletraan's FIRST_DEPLOY is True on a first deploy and unset
		// otherwise; IS_DOCKER, true only in a container, stays unset.
		for _, k := range []string{"FIRST_DEPLOY", "IS_DOCKER"} {
			if v, set := got[k]; set {
				t.Errorf("%s: %s=%q set, want it unset", c.file, k, v)
			}
		}
		for k, v := range c.want {
			if k == "DEPLOY_ID" && c.file == "RESTARTING.DEPLOY" {
				v = r2.DeployID
			}
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", c.file, k, got[k], v)
			}
		}
	}
	if r1.DeployID == r2.DeployID || r1.DeployID == "" {
		t.Errorf("deploy ids %q %q", r1.DeployID, r2.DeployID)
	}
	// The first deploy saw FIRST_DEPLOY=true: v1's dump was overwritten by
	// v2's, so deploy a third env and look again.
	f.mustApply(f.entry(v1, "env", "other"))
	if got := read("POST_RESTART.DEPLOY"); got["FIRST_DEPLOY"] != "True" || got["ENV_NAME"] != "other" || got["BUILD_ID"] != v1.File() {
		t.Errorf("first deploy: FIRST_DEPLOY=%q ENV_NAME=%q BUILD_ID=%q", got["FIRST_DEPLOY"], got["ENV_NAME"], got["BUILD_ID"])
	}
	f.mustApply(f.entry(v1, "LOG_LEVEL", "info"))
	if got := read("RESTARTING.ROLLBACK"); got["DEPLOY_TYPE"] != "ROLLBACK" || got["BUILD_ID"] != v1.File() {
		t.Errorf("rollback: DEPLOY_TYPE=%q BUILD_ID=%q", got["DEPLOY_TYPE"], got["BUILD_ID"])
	}
	f.mustApply(f.entry(v1, "LOG_LEVEL", "warn"))
	if got := read("RESTARTING.RESTART"); got["DEPLOY_TYPE"] != "RESTART" || got["LOG_LEVEL"] != "warn" {
		t.Errorf("restart: DEPLOY_TYPE=%q LOG_LEVEL=%q", got["DEPLOY_TYPE"], got["LOG_LEVEL"])
	}
	if r := f.eng.Stop(t.Context(), "hello"); r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := read("STOPPING.STOP"); got["DEPLOY_TYPE"] != "STOP" || got["BUILD_ID"] != v1.File() {
		t.Errorf("stop: DEPLOY_TYPE=%q BUILD_ID=%q", got["DEPLOY_TYPE"], got["BUILD_ID"])
	}
}

// TestFailurePolicies checks what each policy does when the new build's
// RESTARTING fails on every try.
func TestFailurePolicies(t *testing.T) {
	cases := []struct {
		policy    string
		first     bool // no build serving before
		state     manifest.State
		what      pkginstall.What
		after     func(v1, v2 manifest.PackageName) []string
		current   func(v1, v2 manifest.PackageName) string
		wantSteps string
	}{
		{policy: "rollback", state: manifest.StateRolledBack, what: pkginstall.FailedRolledBack,
			after:   func(v1, v2 manifest.PackageName) []string { return expect("ROLLBACK", v1, v1, preR, rest, posR) },
			current: func(v1, _ manifest.PackageName) string { return v1.ID() }},
		{policy: "", state: manifest.StateRolledBack, what: pkginstall.FailedRolledBack,
			after:   func(v1, v2 manifest.PackageName) []string { return expect("ROLLBACK", v1, v1, preR, rest, posR) },
			current: func(v1, _ manifest.PackageName) string { return v1.ID() }},
		{policy: "rollback", first: true, state: manifest.StateFailed, what: pkginstall.Failed,
			after:   func(v1, v2 manifest.PackageName) []string { return nil },
			current: func(_, v2 manifest.PackageName) string { return v2.ID() }},
		{policy: "continue", state: manifest.StateFailed, what: pkginstall.Failed,
			after:   func(v1, v2 manifest.PackageName) []string { return nil },
			current: func(_, v2 manifest.PackageName) string { return v2.ID() }},
		{policy: "stop", state: manifest.StateStopped, what: pkginstall.FailedStopped,
			after:   func(v1, v2 manifest.PackageName) []string { return expect("STOP", v2, v2, stop) },
			current: func(_, _ manifest.PackageName) string { return "" }},
	}
	for _, tc := range cases {
		name := tc.policy
		if name == "" {
			name = "default"
		}
		if tc.first {
			name += " first deploy"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			v1 := f.release("hello", 1, app("v1"))
			v2 := f.release("hello", 2, app("v2", "teletraan/FAIL_RESTARTING", ""))
			if !tc.first {
				f.mustApply(f.entry(v1))
				f.steps()
			}
			r := f.apply(f.entry(v2, "on_failure", tc.policy))
			if r.Err == nil || !errors.Is(r.Err, pkginstall.ErrScript) {
				t.Fatalf("err = %v", r.Err)
			}
			if r.State != tc.state || r.What != tc.what || r.Step != "RESTARTING" {
				t.Errorf("state %s what %q step %s", r.State, r.What, r.Step)
			}
			if tc.what == pkginstall.FailedRolledBack && !strings.HasSuffix(r.Err.Error(), "; rolled back to "+v1.String()) {
				t.Errorf("err = %q, want it to say it rolled back to %s", r.Err, v1)
			}
			if !strings.Contains(r.Output, "RESTARTING fails on purpose") || !strings.Contains(r.Output, "output of the failing RESTARTING") {
				t.Errorf("output = %q", r.Output)
			}
			var want []string
			if !tc.first {
				want = expect("DEPLOY", v2, v1, pre, post)
			}
			want = cat(want, expect("DEPLOY", v2, v2, preR, rest, rest, rest), tc.after(v1, v2))
			if got := f.steps(); !slices.Equal(got, want) {
				t.Errorf("steps\n got %q\nwant %q", got, want)
			}
			if got, want := f.current("hello"), tc.current(v1, v2); got != want {
				t.Errorf("current = %q, want %q", got, want)
			}
			if want := tc.current(v1, v2); (want == "") != (r.Serving.IsZero()) || want != "" && !strings.Contains(r.Serving.String(), want) {
				t.Errorf("Serving = %q", r.Serving)
			}
			// Three attempt logs of RESTARTING.
			logs, _ := filepath.Glob(filepath.Join(f.root, "envs", "hello", "logs", r.DeployID+".RESTARTING.*.log"))
			if len(logs) != 3 {
				t.Errorf("attempt logs %q", logs)
			}
			// The failed entry is tried again on the next Apply, from disk.
			if a, err := f.eng.Plan(f.entry(v2, "on_failure", tc.policy)); err != nil || a != manifest.ActionDeploy {
				t.Errorf("Plan after failure = %v, %v", a, err)
			}
		})
	}
}

// TestFailureBeforeSwitch checks that a failing download script leaves the
// serving build alone and runs nothing else, whatever the policy.
func TestFailureBeforeSwitch(t *testing.T) {
	f := newFixture(t)
	v1 := f.release("hello", 1, app("v1", "teletraan/FAIL_POST_DOWNLOAD", ""))
	v2 := f.release("hello", 2, app("v2"))
	f.mustApply(f.entry(v1))
	f.steps()
	r := f.apply(f.entry(v2, "on_failure", "stop"))
	if r.Err == nil || r.State != manifest.StateFailed || r.What != pkginstall.Failed || r.Step != "POST_DOWNLOAD" || r.Serving != v1 {
		t.Fatalf("result %+v", r)
	}
	if got, want := f.steps(), expect("DEPLOY", v2, v1, pre, post, post, post); !slices.Equal(got, want) {
		t.Errorf("steps\n got %q\nwant %q", got, want)
	}
	if f.current("hello") != v1.ID() {
		t.Errorf("current = %q", f.current("hello"))
	}
	if got := f.builds("hello"); !slices.Equal(got, []string{v1.ID()}) {
		t.Errorf("builds = %q", got)
	}
}

// TestRetries checks that a script failing twice then succeeding counts as
// success, with a log file per attempt.
func TestRetries(t *testing.T) {
	f := newFixture(t)
	count := filepath.Join(t.TempDir(), "count")
	v1 := f.release("hello", 1, app("v1", "teletraan/RESTARTING", `#!/bin/sh
n=$(cat "$COUNT" 2>/dev/null || echo 0)
n=$((n+1))
echo $n > "$COUNT"
echo "try $n"
[ $n -ge 3 ]
`))
	r := f.mustApply(f.entry(v1, "COUNT", count))
	logs, _ := filepath.Glob(filepath.Join(f.root, "envs", "hello", "logs", r.DeployID+".RESTARTING.*.log"))
	if len(logs) != 3 {
		t.Fatalf("attempt logs %q", logs)
	}
	data, _ := os.ReadFile(logs[2])
	if string(data) != "try 3\n" {
		t.Errorf("third log = %q", data)
	}
	if r.Output != "" {
		t.Errorf("Output after success = %q", r.Output)
	}
}

// TestOpenLocked checks that a second Open of a root in use fails with
// ErrLocked, and succeeds after Close.
func TestOpenLocked(t *testing.T) {
	f := newFixture(t)
	_, err := pkginstall.Open(f.root, f.cfg)
	if !errors.Is(err, pkginstall.ErrLocked) || !strings.Contains(err.Error(), f.root) {
		t.Fatalf("second Open: %v", err)
	}
	ro, err := pkginstall.OpenReadOnly(f.root, f.cfg)
	if err != nil {
		t.Fatalf("OpenReadOnly beside a running engine: %v", err)
	}
	v1 := f.release("hello", 1, app("v1"))
	if r := ro.Apply(t.Context(), f.entry(v1)); !errors.Is(r.Err, pkginstall.ErrReadOnly) {
		t.Errorf("read-only Apply: %+v", r)
	}
	if a, err := ro.Plan(f.entry(v1)); err != nil || a != manifest.ActionDeploy {
		t.Errorf("read-only Plan = %v, %v", a, err)
	}
	ro.Close()
	f.reopen()
}

// TestRetention checks that the Keep most recently serving builds are
// kept, and the serving and the previous build even beyond Keep.
func TestRetention(t *testing.T) {
	f := newFixture(t, func(c *pkginstall.Config) { c.Keep = 2 })
	var vs []manifest.PackageName
	for i := 1; i <= 5; i++ {
		vs = append(vs, f.release("hello", i, app("v")))
	}
	for _, v := range vs {
		f.mustApply(f.entry(v))
	}
	if got := f.builds("hello"); !slices.Equal(got, []string{vs[3].ID(), vs[4].ID()}) {
		t.Fatalf("builds = %q", got)
	}
	// Roll back to v4, then deploy v1 again (downloaded): v1 serves, v4 is
	// previous, v5 goes.
	f.mustApply(f.entry(vs[3]))
	f.mustApply(f.entry(vs[0]))
	if got := f.builds("hello"); !slices.Equal(got, []string{vs[0].ID(), vs[3].ID()}) {
		t.Fatalf("builds = %q", got)
	}
	// Keep 1 still keeps the previous build, for the rollback policy.
	f.eng.Close()
	f.cfg.Keep = 1
	f.open()
	f.mustApply(f.entry(vs[1]))
	if got := f.builds("hello"); !slices.Equal(got, []string{vs[0].ID(), vs[1].ID()}) {
		t.Fatalf("builds = %q", got)
	}
}

// TestRunner checks that the command runner is the one configured.
func TestRunner(t *testing.T) {
	var ran []string
	f := newFixture(t)
	f.reopen() // with the runner below
	f.eng.Close()
	f.cfg.Run = func(_ context.Context, cmd *exec.Cmd) error {
		ran = append(ran, filepath.Base(cmd.Path))
		return nil
	}
	f.open()
	v1 := f.release("hello", 1, app("v1"))
	f.mustApply(f.entry(v1))
	if want := []string{preR, rest, posR}; !slices.Equal(ran, want) {
		t.Fatalf("runner saw %q, want %q", ran, want)
	}
	if got := f.steps(); len(got) != 0 {
		t.Fatalf("real scripts ran: %q", got)
	}
}

// TestRestartFailure checks what each policy does when a restart (the
// serving build, a new config or restart token) fails at RESTARTING on
// every try: the default policy renders the templates with the config that
// served and runs the restart scripts again with OPCODE=ROLLBACK, unless
// only the restart token changed; continue and stop keep their meaning.
// The state left is checked through a new Engine on the same root.
func TestRestartFailure(t *testing.T) {
	const (
		servedConf = "version=v1 level=warn tag=none\n"  // app.conf with the config that served
		newConf    = "version=v1 level=debug tag=none\n" // with the new one
	)
	cases := []struct {
		name string
		// kv is the new entry's, beside LOG_LEVEL=debug unless sameConfig.
		kv         []string
		sameConfig bool
		// failBuild makes v1's RESTARTING fail whatever the config, by
		// the file recScript looks for beside it.
		failBuild bool
		state     manifest.State
		what      pkginstall.What
		// after are the steps after the failing restart's.
		after   func(v1 manifest.PackageName) []string
		conf    string // app.conf afterwards, "" when current is removed
		planNew manifest.Action
		planOld manifest.Action
		errHas  string
	}{
		{name: "new config, default policy", kv: []string{"FAIL_STEP", "RESTARTING"},
			state: manifest.StateRolledBack, what: pkginstall.FailedRolledBack,
			after: func(v1 manifest.PackageName) []string { return expect("ROLLBACK", v1, v1, preR, rest, posR) },
			conf:  servedConf, planNew: manifest.ActionRestart, planOld: manifest.ActionNone,
			errHas: "; rolled back to the previous config"},
		{name: "new config, rollback", kv: []string{"FAIL_STEP", "RESTARTING", "on_failure", "rollback"},
			state: manifest.StateRolledBack, what: pkginstall.FailedRolledBack,
			after: func(v1 manifest.PackageName) []string { return expect("ROLLBACK", v1, v1, preR, rest, posR) },
			conf:  servedConf, planNew: manifest.ActionRestart, planOld: manifest.ActionNone,
			errHas: "; rolled back to the previous config"},
		{name: "new config and restart token, default policy", kv: []string{"FAIL_STEP", "RESTARTING", "restart", "b"},
			state: manifest.StateRolledBack, what: pkginstall.FailedRolledBack,
			after: func(v1 manifest.PackageName) []string { return expect("ROLLBACK", v1, v1, preR, rest, posR) },
			conf:  servedConf, planNew: manifest.ActionRestart, planOld: manifest.ActionNone,
			errHas: "; rolled back to the previous config"},
		{name: "new restart token only, default policy", kv: []string{"restart", "b"}, sameConfig: true, failBuild: true,
			state: manifest.StateFailed, what: pkginstall.Failed,
			after: func(manifest.PackageName) []string { return nil },
			conf:  servedConf, planNew: manifest.ActionRestart, planOld: manifest.ActionRestart},
		{name: "new config, rollback fails too", kv: []string{}, failBuild: true,
			state: manifest.StateFailed, what: pkginstall.Failed,
			after: func(v1 manifest.PackageName) []string { return expect("ROLLBACK", v1, v1, preR, rest, rest, rest) },
			conf:  servedConf, planNew: manifest.ActionRestart, planOld: manifest.ActionRestart,
			errHas: "then roll back to the previous config"},
		{name: "new config, continue", kv: []string{"FAIL_STEP", "RESTARTING", "on_failure", "continue"},
			state: manifest.StateFailed, what: pkginstall.Failed,
			after: func(manifest.PackageName) []string { return nil },
			conf:  newConf, planNew: manifest.ActionRestart, planOld: manifest.ActionRestart},
		{name: "new config, stop", kv: []string{"FAIL_STEP", "RESTARTING", "on_failure", "stop"},
			state: manifest.StateStopped, what: pkginstall.FailedStopped,
			after:   func(v1 manifest.PackageName) []string { return expect("STOP", v1, v1, stop) },
			planNew: manifest.ActionDeploy, planOld: manifest.ActionDeploy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The runner keeps every script's environment, to check the
			// variables that distinguish a rollback's scripts.
			var envs []map[string]string
			f := newFixture(t, func(c *pkginstall.Config) {
				c.Run = func(_ context.Context, cmd *exec.Cmd) error {
					vars := map[string]string{}
					for _, kv := range cmd.Env {
						k, v, _ := strings.Cut(kv, "=")
						vars[k] = v
					}
					envs = append(envs, vars)
					return cmd.Run()
				}
			})
			v1 := f.release("hello", 1, app("v1"))
			old := f.entry(v1, "LOG_LEVEL", "warn", "restart", "a")
			f.mustApply(old)
			if tc.failBuild {
				if err := os.WriteFile(filepath.Join(f.root, "envs", "hello", "builds", v1.ID(), "teletraan", "FAIL_RESTARTING"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			level := "debug"
			if tc.sameConfig {
				level = "warn"
			}
			kv := slices.Concat([]string{"LOG_LEVEL", level, "restart", "a"}, tc.kv)
			next := f.entry(v1, kv...)
			f.steps()
			envs = nil

			r := f.apply(next)
			if r.Action != manifest.ActionRestart || !errors.Is(r.Err, pkginstall.ErrScript) {
				t.Fatalf("result %+v", r)
			}
			if r.State != tc.state || r.What != tc.what || r.Step != manifest.StepRestarting {
				t.Errorf("state %s what %q step %s", r.State, r.What, r.Step)
			}
			if !strings.Contains(r.Err.Error(), tc.errHas) {
				t.Errorf("err = %v, want it to say %q", r.Err, tc.errHas)
			}
			failing := expect("RESTART", v1, v1, preR, rest, rest, rest)
			if got, want := f.steps(), cat(failing, tc.after(v1)); !slices.Equal(got, want) {
				t.Errorf("steps\n got %q\nwant %q", got, want)
			}
			for _, vars := range envs {
				if vars["OPCODE"] != "ROLLBACK" {
					continue
				}
				// The config that served, not the new one.
				if _, first := vars["FIRST_DEPLOY"]; vars["DEPLOY_TYPE"] != "ROLLBACK" || first || vars["LOG_LEVEL"] != "warn" || vars["FAIL_STEP"] != "" {
					t.Errorf("%s of the rollback: DEPLOY_TYPE=%q FIRST_DEPLOY=%q LOG_LEVEL=%q FAIL_STEP=%q", vars["DEPLOY_STEP"],
						vars["DEPLOY_TYPE"], vars["FIRST_DEPLOY"], vars["LOG_LEVEL"], vars["FAIL_STEP"])
				}
			}
			if tc.conf == "" {
				if f.current("hello") != "" || !r.Serving.IsZero() {
					t.Errorf("current %q, Serving %q", f.current("hello"), r.Serving)
				}
			} else {
				if r.Serving != v1 || f.current("hello") != v1.ID() {
					t.Errorf("current %q, Serving %q", f.current("hello"), r.Serving)
				}
				if got := f.file("hello", "teletraan/app.conf"); got != tc.conf {
					t.Errorf("app.conf = %q, want %q", got, tc.conf)
				}
			}
			f.reopen()
			if a, err := f.eng.Plan(next); err != nil || a != tc.planNew {
				t.Errorf("Plan of the failed entry = %v, %v; want %v", a, err, tc.planNew)
			}
			if a, err := f.eng.Plan(old); err != nil || a != tc.planOld {
				t.Errorf("Plan of the entry that served = %v, %v; want %v", a, err, tc.planOld)
			}
			// Once the cause is gone, the new entry is applied as a
			// restart (a deploy after stop) and serves.
			os.Remove(filepath.Join(f.root, "envs", "hello", "builds", v1.ID(), "teletraan", "FAIL_RESTARTING"))
			fixed := f.entry(v1, slices.Concat(kv, []string{"FAIL_STEP", "none"})...)
			if a, err := f.eng.Plan(fixed); err != nil || a != tc.planNew {
				t.Errorf("Plan of the fixed entry = %v, %v; want %v", a, err, tc.planNew)
			}
			f.mustApply(fixed)
			if got := f.file("hello", "teletraan/app.conf"); got != "version=v1 level="+level+" tag=none\n" {
				t.Errorf("app.conf after the fixed entry = %q", got)
			}
		})
	}
}

// TestRollbackRendersPreviousConfig checks that the rollback policy
// renders the previous build's templates with the config it is rolled back
// to, the one its scripts are given, even when a failed restart left them
// rendered with another.
func TestRollbackRendersPreviousConfig(t *testing.T) {
	f := newFixture(t)
	v1 := f.release("hello", 1, app("v1"))
	v2 := f.release("hello", 2, app("v2", "teletraan/FAIL_RESTARTING", ""))
	f.mustApply(f.entry(v1, "LOG_LEVEL", "warn"))
	r := f.apply(f.entry(v1, "LOG_LEVEL", "debug", "FAIL_STEP", "RESTARTING", "on_failure", "continue"))
	if r.What != pkginstall.Failed || f.file("hello", "teletraan/app.conf") != "version=v1 level=debug tag=none\n" {
		t.Fatalf("failed restart left %+v, app.conf %q", r, f.file("hello", "teletraan/app.conf"))
	}
	f.steps()
	r = f.apply(f.entry(v2))
	if r.What != pkginstall.FailedRolledBack || f.current("hello") != v1.ID() {
		t.Fatalf("result %+v", r)
	}
	if got, want := f.steps(), cat(expect("DEPLOY", v2, v1, pre, post), expect("DEPLOY", v2, v2, preR, rest, rest, rest),
		expect("ROLLBACK", v1, v1, preR, rest, posR)); !slices.Equal(got, want) {
		t.Errorf("steps\n got %q\nwant %q", got, want)
	}
	if got, want := f.file("hello", "teletraan/app.conf"), "version=v1 level=warn tag=none\n"; got != want {
		t.Errorf("app.conf after the rollback = %q, want %q", got, want)
	}
	if a, err := f.eng.Plan(f.entry(v1, "LOG_LEVEL", "warn")); err != nil || a != manifest.ActionNone {
		t.Errorf("Plan of v1 with the config rolled back to = %v, %v; want none", a, err)
	}
}

// TestCorruptState checks that an unreadable state.json is set aside and
// rebuilt from the disk: current still tells what serves, and the next
// Apply finishes with the restart scripts, without a download.
func TestCorruptState(t *testing.T) {
	f := newFixture(t)
	v1 := f.release("hello", 1, app("v1"))
	f.mustApply(f.entry(v1))
	f.eng.Close()
	if err := os.WriteFile(filepath.Join(f.root, "state.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.open()
	f.steps()
	inst, err := f.eng.Installed()
	if err != nil || len(inst) != 1 || inst[0].Env != "hello" || inst[0].Package != v1 {
		t.Fatalf("Installed = %+v, %v", inst, err)
	}
	r := f.mustApply(f.entry(v1))
	if r.Downloaded != 0 {
		t.Errorf("downloaded %d", r.Downloaded)
	}
	if got, want := f.steps(), expect("DEPLOY", v1, v1, preR, rest, posR); !slices.Equal(got, want) {
		t.Errorf("steps\n got %q\nwant %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(f.root, "state.json.bad")); err != nil {
		t.Errorf("corrupt state not kept aside: %v", err)
	}
}

// TestRecentOutcomes: each finished action's outcome is kept, newest
// first, at most manifest.RecentOutcomes, in the Result and in Installed,
// and across a restart of the engine; an unchanged entry adds none.
func TestRecentOutcomes(t *testing.T) {
	f := newFixture(t)
	v1 := f.release("hello", 1, app("v1"))
	v2 := f.release("hello", 2, app("v2", "teletraan/FAIL_RESTARTING", ""))
	f.mustApply(f.entry(v1))
	r := f.apply(f.entry(v2))
	if r.State != manifest.StateRolledBack {
		t.Fatalf("v2: %s", r.State)
	}
	type kept struct {
		pkg    manifest.PackageName
		action manifest.Action
		state  manifest.State
	}
	check := func(what string, got []manifest.Outcome, want ...kept) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d outcomes %+v, want %d", what, len(got), got, len(want))
		}
		for i, w := range want {
			if g := got[i]; g.Package != w.pkg.String() || g.Action != w.action || g.State != w.state || g.Time.IsZero() || g.DeployID == "" {
				t.Errorf("%s: outcome %d = %+v, want %s %s %s", what, i, g, w.action, w.pkg, w.state)
			}
		}
	}
	want := []kept{{v2, "deploy", manifest.StateRolledBack}, {v1, "deploy", manifest.StateServing}}
	check("Result", r.Recent, want...)
	// The failure keeps where and why, after v1 serves again.
	failed := func(what string, o manifest.Outcome) {
		t.Helper()
		if o.Step != manifest.StepRestarting || o.ExitCode == 0 || !strings.Contains(o.Error, "RESTARTING") || o.Output == "" || len(o.Output) > manifest.OutcomeOutput {
			t.Errorf("%s: the failed outcome %+v, want its step, exit code, error and the head of its output", what, o)
		}
		if ok := r.Recent[1]; ok.Step != "" || ok.Error != "" || ok.Output != "" {
			t.Errorf("%s: a successful outcome carries failure details: %+v", what, ok)
		}
	}
	failed("Result", r.Recent[0])
	if r.ExitCode == 0 {
		t.Errorf("Result.ExitCode of a failed RESTARTING = 0")
	}
	if r := f.apply(f.entry(v1)); r.Action != manifest.ActionNone || r.Recent != nil {
		t.Errorf("an unchanged entry: action %s, recent %+v", r.Action, r.Recent)
	}
	f.reopen()
	inst, err := f.eng.Installed()
	if err != nil || len(inst) != 1 {
		t.Fatalf("Installed = %+v, %v", inst, err)
	}
	check("Installed after reopen", inst[0].Recent, want...)
	failed("Installed after reopen", inst[0].Recent[0])

	r = f.apply(f.entry(v1, "restart", "again"))
	want = append([]kept{{v1, "restart", manifest.StateServing}}, want...)
	check("after a restart", r.Recent, want...)
	r = f.eng.Stop(t.Context(), "hello")
	want = append([]kept{{v1, "stop", manifest.StateStopped}}, want...)
	check("after a stop", r.Recent, want...)
	for i := range manifest.RecentOutcomes {
		r = f.apply(f.entry(v1, "restart", fmt.Sprint(i)))
	}
	if len(r.Recent) != manifest.RecentOutcomes || r.Recent[0].Action != "deploy" && r.Recent[0].Action != "restart" {
		t.Errorf("after many actions: %d outcomes, newest %+v", len(r.Recent), r.Recent[0])
	}
}
