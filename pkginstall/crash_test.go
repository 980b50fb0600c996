package pkginstall_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkginstall"
)

// crashEnv names the environment variable that turns the test binary into
// the crash helper; its value is a JSON crashJob.
const crashEnv = "PKGINSTALL_CRASH_HELPER"

// crashJob is one run of the crash helper: Open root, Apply Entry, and kill
// the process with SIGKILL right after the KillAt-th write (counting from
// 1; 0 never kills). Every write is appended to the file Points, one name
// a line, before the kill.
type crashJob struct {
	Root   string         `json:"root"`
	Bucket string         `json:"bucket"`
	Entry  manifest.Entry `json:"entry"`
	KillAt int            `json:"kill_at"`
	Points string         `json:"points"`
}

// crashConfig is the engine configuration of the crash test, in the helper
// and in the test: one try per script, so that a failing step fails at once.
func crashConfig(c *pkginstall.Config) {
	c.Tries = 1
	c.Backoff = time.Millisecond
}

// crashHelper runs a crashJob.
func crashHelper(jobJSON string) int {
	var job crashJob
	if err := json.Unmarshal([]byte(jobJSON), &job); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	var cfg pkginstall.Config
	crashConfig(&cfg)
	eng, err := helperEngine(ctx, job.Bucket, job.Root, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	points, err := os.OpenFile(job.Points, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	n := 0
	pkginstall.SetCrashHook(func(point string) {
		n++
		fmt.Fprintln(points, describeWrite(job.Root, point)) // unbuffered: on disk before the kill
		if n == job.KillAt {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute) // never returns: the kill lands first
		}
	})
	eng.Apply(ctx, job.Entry)
	return 0
}

// describeWrite names a write of the crash helper for a subtest: the build
// ids in point become the versions in their version.txt, and a write of
// state.json says the step and the serving build it records.
func describeWrite(root, point string) string {
	builds := filepath.Join(root, "envs", "hello", "builds")
	version := func(id string) string {
		data, err := os.ReadFile(filepath.Join(builds, id, "version.txt"))
		if err != nil {
			return id
		}
		return strings.TrimSpace(string(data))
	}
	if point != "state.json" {
		i := strings.LastIndexAny(point, " /") + 1
		return point[:i] + version(point[i:])
	}
	var st struct {
		Envs map[string]recordedEnv `json:"envs"`
	}
	data, _ := os.ReadFile(filepath.Join(root, "state.json"))
	json.Unmarshal(data, &st)
	r := st.Envs["hello"]
	serving := "none"
	if p, err := manifest.ParsePackageName(r.Serving); err == nil {
		serving = version(p.ID())
	}
	step := r.Step
	if step == "" {
		step = "start"
	}
	return fmt.Sprintf("state.json at %s serving %s", step, serving)
}

// recordedEnv is what the crash test reads of an env in state.json.
type recordedEnv struct {
	Serving        string            `json:"serving"`
	Healthy        bool              `json:"healthy"`
	Config         map[string]string `json:"config"`
	Previous       string            `json:"previous"`
	PreviousConfig map[string]string `json:"previous_config"`
	Target         string            `json:"target"`
	State          manifest.State    `json:"state"`
	Step           string            `json:"step"`
}

func readRecorded(t *testing.T, root, env string) recordedEnv {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Envs map[string]recordedEnv `json:"envs"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("state.json does not parse: %v\n%s", err, data)
	}
	return st.Envs[env]
}

// checkRecorded reads env hello of the state.json under root and checks it
// with names, and that it claims the serving build healthy only with the
// config its templates are rendered with (app's app.conf). when says which
// state.json it is, for errors.
func checkRecorded(t *testing.T, root, when string, names func(recordedEnv) error) recordedEnv {
	t.Helper()
	r := readRecorded(t, root, "hello")
	if err := names(r); err != nil {
		t.Errorf("state.json %s: %v", when, err)
	}
	if !r.Healthy {
		return r
	}
	p, err := manifest.ParsePackageName(r.Serving)
	if err != nil {
		t.Fatalf("state.json %s: healthy, serving %q: %v", when, r.Serving, err)
	}
	dir := filepath.Join(root, "envs", "hello", "builds", p.ID())
	version, _ := os.ReadFile(filepath.Join(dir, "version.txt"))
	level := r.Config["LOG_LEVEL"]
	if level == "" {
		level = "info"
	}
	want := fmt.Sprintf("version=%s level=%s tag=none\n", strings.TrimSpace(string(version)), level)
	if got, _ := os.ReadFile(filepath.Join(dir, "teletraan", "app.conf")); string(got) != want {
		t.Errorf("state.json %s: healthy with config %v, but app.conf is %q", when, r.Config, got)
	}
	return r
}

// TestCrashDuringPolicyRollback kills the engine, running in a helper
// process, with SIGKILL right after each write of an Apply that fails after
// the switch and is undone by the rollback policy: a deploy (rolled back to
// the previous build) and a restart with a new config (rolled back to the
// previous config). The writes are found by a first run that is not
// killed, so every one of them is a kill point. After each kill it checks
// that state.json, as written and as the next Open reconciles it, still
// names the build and config that served before and the build being tried,
// and that the next Apply of the same entry converges: the previous build
// serves with its config, rendered, after its restart scripts ran with
// OPCODE=ROLLBACK, and Plan knows what serves and what is still to do.
func TestCrashDuringPolicyRollback(t *testing.T) {
	bucketDir := t.TempDir()
	bucket := "file://" + bucketDir
	store, err := blobstore.Open(t.Context(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	v1 := deploytest.Build(t, store, "hello", 1, app("v1"))
	v2 := deploytest.Build(t, store, "hello", 2, app("v2", "teletraan/FAIL_RESTARTING", ""))
	const served = "version=v1 level=warn tag=none\n" // v1's app.conf with the config that served

	cases := []struct {
		name string
		// try is the entry that fails, for the fixture f.
		try func(f *fixture) manifest.Entry
		// again is what Plan says of try once the rollback is done.
		again manifest.Action
		// names checks that the recorded env r names what served (v1 with
		// LOG_LEVEL=warn) and what is being tried.
		names func(r recordedEnv) error
	}{
		{
			name:  "deploy",
			try:   func(f *fixture) manifest.Entry { return f.entry(v2, "LOG_LEVEL", "debug") },
			again: manifest.ActionDeploy,
			names: func(r recordedEnv) error {
				var cfg map[string]string
				switch v1.String() {
				case r.Serving:
					cfg = r.Config
				case r.Previous:
					cfg = r.PreviousConfig
				default:
					return fmt.Errorf("v1 is neither serving nor previous")
				}
				if cfg["LOG_LEVEL"] != "warn" {
					return fmt.Errorf("v1 is recorded with config %v", cfg)
				}
				if !slices.Contains([]string{r.Serving, r.Previous, r.Target}, v2.String()) {
					return fmt.Errorf("v2 is not named")
				}
				return nil
			},
		},
		{
			name:  "restart with a new config",
			try:   func(f *fixture) manifest.Entry { return f.entry(v1, "LOG_LEVEL", "debug", "FAIL_STEP", "RESTARTING") },
			again: manifest.ActionRestart,
			names: func(r recordedEnv) error {
				if r.Serving != v1.String() || r.Config["LOG_LEVEL"] != "warn" || r.Config["FAIL_STEP"] != "" {
					return fmt.Errorf("serving %s with %v, want v1 with LOG_LEVEL=warn", r.Serving, r.Config)
				}
				return nil
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// setup serves v1 on a fresh root, then runs the helper on
			// the failing entry, killed after write killAt. It returns the
			// fixture, closed, and the writes the helper reported.
			setup := func(t *testing.T, killAt int) (*fixture, []string) {
				f := newFixtureOn(t, store, crashConfig)
				f.mustApply(f.entry(v1, "LOG_LEVEL", "warn"))
				f.eng.Close()
				f.eng = nil
				points := filepath.Join(t.TempDir(), "points")
				job, _ := json.Marshal(crashJob{Root: f.root, Bucket: bucket, Entry: tc.try(f), KillAt: killAt, Points: points})
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), crashEnv+"="+string(job))
				var stderr strings.Builder
				cmd.Stderr = &stderr
				err := cmd.Run()
				if s := strings.TrimSpace(stderr.String()); s != "" {
					t.Fatalf("helper: %s", s)
				}
				ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
				if killed := ws.Signaled() && ws.Signal() == syscall.SIGKILL; killed != (killAt > 0) {
					t.Fatalf("helper killed at write %d: %v, err %v", killAt, killed, err)
				}
				data, _ := os.ReadFile(points)
				return f, strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
			}

			// check converges f after the helper ended, and checks the
			// outcome.
			check := func(t *testing.T, f *fixture) {
				checkRecorded(t, f.root, "as the helper left it", tc.names)
				f.open()
				checkRecorded(t, f.root, "after Open", tc.names)
				f.steps()
				r := f.apply(tc.try(f))
				if !errors.Is(r.Err, pkginstall.ErrScript) || r.State != manifest.StateRolledBack || r.What != pkginstall.FailedRolledBack ||
					r.Step != manifest.StepRestarting || r.Serving != v1 {
					t.Fatalf("next Apply: %+v", r)
				}
				if got, want := f.steps(), expect("ROLLBACK", v1, v1, preR, rest, posR); len(got) < 3 || !slices.Equal(got[len(got)-3:], want) {
					t.Errorf("next Apply's steps %q do not end with %q", got, want)
				}
				if f.current("hello") != v1.ID() {
					t.Errorf("current = %s, want %s", f.current("hello"), v1.ID())
				}
				if got := f.file("hello", "teletraan/app.conf"); got != served {
					t.Errorf("app.conf = %q, want %q", got, served)
				}
				rec := checkRecorded(t, f.root, "after the next Apply", tc.names)
				if rec.State != manifest.StateRolledBack || !rec.Healthy {
					t.Errorf("state.json after the next Apply: %+v", rec)
				}
				if a, err := f.eng.Plan(f.entry(v1, "LOG_LEVEL", "warn")); err != nil || a != manifest.ActionNone {
					t.Errorf("Plan of what serves = %v, %v; want none", a, err)
				}
				if a, err := f.eng.Plan(tc.try(f)); err != nil || a != tc.again {
					t.Errorf("Plan of the failed entry = %v, %v; want %v", a, err, tc.again)
				}
			}

			// The writes of the Apply, from a run that is not killed.
			var points []string
			t.Run("not killed", func(t *testing.T) {
				var f *fixture
				f, points = setup(t, 0)
				check(t, f)
			})
			if len(points) < 4 {
				t.Fatalf("writes of an Apply: %q", points)
			}
			for i, p := range points {
				t.Run(fmt.Sprintf("killed after write %d %s", i+1, p), func(t *testing.T) {
					f, got := setup(t, i+1)
					if !slices.Equal(got, points[:i+1]) {
						t.Fatalf("writes %q, want %q", got, points[:i+1])
					}
					check(t, f)
				})
			}
		})
	}
}
