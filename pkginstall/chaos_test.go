package pkginstall_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkginstall"
)

// chaosEnv names the environment variable that turns the test binary into
// the chaos helper; its value is a JSON chaosJob.
const chaosEnv = "PKGINSTALL_CHAOS_HELPER"

type chaosJob struct {
	Root     string   `json:"root"`
	Bucket   string   `json:"bucket"`
	Packages []string `json:"packages"`
	Rec      string   `json:"rec"`
	Seed     uint64   `json:"seed"`
}

func TestMain(m *testing.M) {
	if job := os.Getenv(chaosEnv); job != "" {
		os.Exit(chaosHelper(job))
	}
	if job := os.Getenv(crashEnv); job != "" {
		os.Exit(crashHelper(job))
	}
	if job := os.Getenv(benchInstallEnv); job != "" {
		os.Exit(benchInstall(job))
	}
	os.Exit(m.Run())
}

// chaosHelper deploys, rolls back, restarts and stops until it is killed.
func chaosHelper(jobJSON string) int {
	var job chaosJob
	if err := json.Unmarshal([]byte(jobJSON), &job); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	eng, err := helperEngine(ctx, job.Bucket, job.Root, pkginstall.Config{Backoff: time.Millisecond, Keep: 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rng := rand.New(rand.NewPCG(job.Seed, 1))
	policies := []manifest.Policy{"", manifest.PolicyContinue, manifest.PolicyStop}
	for {
		p, _ := manifest.ParsePackageName(job.Packages[rng.IntN(len(job.Packages))])
		e := manifest.Entry{
			Package:   p,
			OnFailure: policies[rng.IntN(len(policies))],
			Config:    map[string]string{"REC": job.Rec, "LOG_LEVEL": []string{"info", "debug"}[rng.IntN(2)]},
		}
		if rng.IntN(8) == 0 {
			eng.Stop(ctx, "hello")
			continue
		}
		eng.Apply(ctx, e)
	}
}

// TestChaos kills the engine, running in a helper process, with SIGKILL at
// random moments of deploys, rollbacks, restarts and stops, and checks
// after each kill that current names a complete build, state.json parses,
// and that a fresh engine cleans up and converges to a new entry.
func TestChaos(t *testing.T) {
	if testing.Short() && os.Getenv("CI") == "" { // CI never skips it
		t.Skip("chaos test in -short mode")
	}
	bucketDir := t.TempDir()
	store, err := blobstore.Open(t.Context(), "file://"+bucketDir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	root := t.TempDir()
	rec := filepath.Join(t.TempDir(), "rec")

	// Three packages big enough for a kill to land in the middle of an
	// unpack: 300 small files and a 4 MiB one each. v3's POST_RESTART fails.
	contents := map[string]map[string]string{} // build id → files
	var names []string
	for seq := 1; seq <= 3; seq++ {
		files := app(fmt.Sprintf("v%d", seq))
		for i := range 300 {
			files[fmt.Sprintf("lib/%02d/file%03d.txt", i%10, i)] = strings.Repeat(fmt.Sprintf("v%d %d\n", seq, i), 20)
		}
		files["lib/big.bin"] = strings.Repeat(fmt.Sprintf("%d", seq), 4<<20)
		if seq == 3 {
			files["teletraan/FAIL_POST_RESTART"] = ""
		}
		name := deploytest.Build(t, store, "hello", seq, files)
		contents[name.ID()] = files
		names = append(names, name.String())
	}
	good := names[:2]

	deadline := time.Now().Add(20 * time.Second)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	const iterations = 30
	killedAt := map[string]int{}
	defer func() { t.Logf("killed at: %v", killedAt) }()
	for i := range iterations {
		if time.Now().After(deadline) {
			t.Logf("stopping after %d iterations to stay within the time budget", i)
			break
		}
		job, _ := json.Marshal(chaosJob{Root: root, Bucket: "file://" + bucketDir, Packages: names, Rec: rec, Seed: uint64(i)})
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), chaosEnv+"="+string(job))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(20+rng.IntN(250)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if strings.TrimSpace(stderr.String()) != "" {
			t.Fatalf("iteration %d: helper: %s", i, stderr.String())
		}

		// Right after the kill, before anything cleans up.
		checkInvariants(t, root, contents, true)
		killedAt[killPoint(root)]++

		eng, err := openAfterKill(root, pkginstall.Config{Store: store, Server: "web-1", Backoff: time.Millisecond, Keep: 2})
		if err != nil {
			t.Fatalf("iteration %d: open after kill: %v", i, err)
		}
		checkInvariants(t, root, contents, false)
		target, _ := manifest.ParsePackageName(good[rng.IntN(len(good))])
		r := eng.Apply(t.Context(), manifest.Entry{Package: target, Config: map[string]string{"REC": rec}})
		if r.Err != nil || r.State != manifest.StateServing || r.Serving != target {
			t.Fatalf("iteration %d: converge to %s: %+v", i, target, r)
		}
		if a, err := eng.Plan(manifest.Entry{Package: target, Config: map[string]string{"REC": rec}}); err != nil || a != manifest.ActionNone {
			t.Fatalf("iteration %d: Plan after converging = %v, %v", i, a, err)
		}
		eng.Close()
		if cur, _ := os.Readlink(filepath.Join(root, "envs", "hello", "current")); filepath.Base(cur) != target.ID() {
			t.Fatalf("iteration %d: current = %q, want %s", i, cur, target.ID())
		}
		checkInvariants(t, root, contents, false)
	}
}

// checkInvariants checks that state.json parses, that current (if any)
// names a build, and that every build under builds/ is complete. Unless
// temps is set, no temporary directory may be left.
func checkInvariants(t *testing.T, root string, contents map[string]map[string]string, temps bool) {
	t.Helper()
	if data, err := os.ReadFile(filepath.Join(root, "state.json")); err == nil {
		var v map[string]any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("state.json does not parse: %v\n%s", err, data)
		}
	} else if !os.IsNotExist(err) {
		t.Fatal(err)
	}
	envDir := filepath.Join(root, "envs", "hello")
	if !temps {
		for _, pat := range []string{filepath.Join(root, ".state.json*"), filepath.Join(envDir, ".current*")} {
			if m, _ := filepath.Glob(pat); len(m) > 0 {
				t.Fatalf("temporary files left: %q", m)
			}
		}
	}
	if target, err := os.Readlink(filepath.Join(envDir, "current")); err == nil {
		if _, ok := contents[filepath.Base(target)]; !ok || filepath.Dir(target) != "builds" {
			t.Fatalf("current -> %q", target)
		}
		if fi, err := os.Stat(filepath.Join(envDir, target)); err != nil || !fi.IsDir() {
			t.Fatalf("current -> %q, which is not a directory: %v", target, err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(envDir, "builds"))
	for _, de := range ents {
		if strings.HasPrefix(de.Name(), ".") {
			if !temps {
				t.Fatalf("temporary directory left: %s", de.Name())
			}
			continue
		}
		files, ok := contents[de.Name()]
		if !ok {
			t.Fatalf("unknown build %s", de.Name())
		}
		for p, want := range files {
			got, err := os.ReadFile(filepath.Join(envDir, "builds", de.Name(), p))
			if err != nil || string(got) != want {
				t.Fatalf("build %s is incomplete: %s: %v", de.Name(), p, err)
			}
		}
	}
}

// killPoint describes where the helper was killed: the step state.json
// records, and whether a download was under way.
func killPoint(root string) string {
	var st struct {
		Envs map[string]struct {
			State string `json:"state"`
			Step  string `json:"step"`
		} `json:"envs"`
	}
	data, _ := os.ReadFile(filepath.Join(root, "state.json"))
	json.Unmarshal(data, &st)
	p := st.Envs["hello"].State + "/" + st.Envs["hello"].Step
	ents, _ := os.ReadDir(filepath.Join(root, "envs", "hello", "builds"))
	for _, de := range ents {
		if strings.HasPrefix(de.Name(), ".tmp-") {
			return p + "+tmp"
		}
	}
	return p
}

// openAfterKill opens root after its engine's process was killed. The
// kill can land while that process is forking a script: the forked child
// holds a copy of the lock's descriptor until it execs (the descriptor is
// close-on-exec), so the lock may outlive the killed process by a moment.
// ErrLocked is retried for up to 5 s; any other error is returned at once.
func openAfterKill(root string, cfg pkginstall.Config) (*pkginstall.Engine, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		eng, err := pkginstall.Open(root, cfg)
		if !errors.Is(err, pkginstall.ErrLocked) || time.Now().After(deadline) {
			return eng, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// helperEngine opens the bucket and an engine on root for a helper process
// of the kill tests, with cfg's Store and Server filled in.
func helperEngine(ctx context.Context, bucket, root string, cfg pkginstall.Config) (*pkginstall.Engine, error) {
	store, err := blobstore.Open(ctx, bucket)
	if err != nil {
		return nil, err
	}
	cfg.Store, cfg.Server = store, "web-1"
	return pkginstall.Open(root, cfg)
}
