package e2e_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/internal/testing/testserver"
	"github.com/pushpull/pushpull/manifest"
)

// proc is a program the test started and stops (SIGTERM, then SIGKILL)
// when it ends, showing its log if the test failed.
type proc struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	done    chan error
	log     string
	stopped bool
}

func startProc(t *testing.T, name string, env []string, path string, args ...string) *proc {
	t.Helper()
	logFile, err := os.CreateTemp(t.TempDir(), name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, cmd: cmd, done: make(chan error, 1), log: logFile.Name()}
	go func() { p.done <- cmd.Wait(); logFile.Close() }()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		if t.Failed() {
			out, _ := os.ReadFile(p.log)
			t.Logf("%s's log:\n%s", name, out)
		}
	})
	return p
}

// stop sends sig and waits for the program to end (killing it after 20 s).
// Stopping twice is harmless.
func (p *proc) stop(sig syscall.Signal) {
	if p.stopped {
		return
	}
	p.stopped = true
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// rolloutWorld is group web of three real pullds serving the sample app,
// and the pushui replicas the test starts on its bucket.
type rolloutWorld struct {
	t      *testing.T
	bucket string
	store  *blobstore.Store
	pkgs   map[string]manifest.PackageName
	roots  map[string]string // member → pulld root
	client *http.Client
}

var rolloutMembers = []string{"web-1", "web-2", "web-3"}

func newRolloutWorld(t *testing.T, bucket string) *rolloutWorld {
	w := &rolloutWorld{t: t, bucket: bucket, pkgs: map[string]manifest.PackageName{}, roots: map[string]string{}, client: &http.Client{Timeout: 10 * time.Second}}
	old := &world{t: t, bucket: bucket}
	for _, v := range []string{"v1", "v2", "v3"} {
		p, err := manifest.ParsePackageName(old.release(v))
		if err != nil {
			t.Fatal(err)
		}
		w.pkgs[v] = p
	}
	store, err := blobstore.Open(t.Context(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	w.store = store
	// The operator's config and the group's first build, written as a
	// config management tool would: straight into the bucket.
	conf := &manifest.PushConfig{Servers: map[string][]string{}, Groups: map[string][]string{"web": {"hello"}}}
	if _, err := store.WritePushConfig(t.Context(), conf, ""); err != nil {
		t.Fatal(err)
	}
	entry := manifest.Entry{Package: w.pkgs["v1"], Config: map[string]string{"CHECK_TIMEOUT": "3"}}
	if _, err := store.UpdateManifestAt(t.Context(), manifest.Group("web"), "", false, blobstore.Replace(&manifest.Manifest{Packages: []manifest.Entry{entry}})); err != nil {
		t.Fatal(err)
	}
	for _, name := range rolloutMembers {
		root, port := t.TempDir(), freePort(t)
		w.roots[name] = root
		t.Cleanup(func() { // after the daemon stopped: STOPPING ends its hello
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = exec.CommandContext(ctx, bin.pulld, "-bucket", bucket, "-server", name, "-root", root, "-terminate", "-listen", "", "-host-info", "").Run()
		})
		startProc(t, name, hostEnv(port), bin.pulld, "-bucket", bucket, "-server", name, "-groups", "web", "-root", root,
			"-listen", "", "-host-info", "", "-poll", "1s", "-rollout-heartbeat", "1s", "-step-timeout", "30s")
	}
	w.waitServing(w.pkgs["v1"], rolloutMembers...)
	return w
}

// startUI starts a pushui replica driving rollouts every 200 ms (a lease
// of 1.2 s) and returns it with its base URL.
func (w *rolloutWorld) startUI(name string) (*proc, string) {
	w.t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(w.t)))
	return w.startUIAt(name, addr), "http://" + addr
}

// startUIAt starts a pushui replica as startUI does, on addr, with more
// flags, once it answers.
func (w *rolloutWorld) startUIAt(name, addr string, flags ...string) *proc {
	w.t.Helper()
	p := startProc(w.t, name, nil, bin.pushui, append([]string{"-bucket", w.bucket, "-addr", addr, "-refresh", "0", "-rollout-tick", "200ms"}, flags...)...)
	base := "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		if resp, err := w.client.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s did not answer within 15 s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// start starts a rollout through the API client (strategy is the JSON a
// POST /api/rollouts takes) and returns the rollout's ID.
func (w *rolloutWorld) start(base, strategy string) string {
	w.t.Helper()
	var fields map[string]any
	if err := json.Unmarshal([]byte(strategy), &fields); err != nil {
		w.t.Fatal(err)
	}
	group, _ := fields["group"].(string)
	name, _ := fields["package"].(string)
	delete(fields, "group")
	delete(fields, "package")
	p, err := manifest.ParsePackageName(name)
	if err != nil {
		w.t.Fatal(err)
	}
	rec, err := w.api(base).StartRollout(w.t.Context(), client.RolloutStart{Group: group, Package: p, Set: fields})
	if err != nil {
		w.t.Fatalf("start a rollout: %v", err)
	}
	return rec.ID
}

// api returns the API client of the pushui at base.
func (w *rolloutWorld) api(base string) *client.Client {
	w.t.Helper()
	c, err := client.New(base, client.Options{HTTPClient: w.client})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// record reads the rollout's record from the bucket.
func (w *rolloutWorld) record(id string) *manifest.RolloutRecord {
	w.t.Helper()
	r, _, err := w.store.ReadRollout(w.t.Context(), blobstore.RolloutRef{Group: "web", Env: "hello", ID: id})
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// waitRecord waits up to 90 s for the rollout's record to satisfy ok.
func (w *rolloutWorld) waitRecord(id, what string, ok func(*manifest.RolloutRecord) bool) *manifest.RolloutRecord {
	w.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		r := w.record(id)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("rollout %s: not %s within 90 s: %s (%s), step %d", id, what, r.State, r.Reason, r.Step)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitServing waits up to 60 s until every named member serves pkg.
func (w *rolloutWorld) waitServing(pkg manifest.PackageName, members ...string) {
	w.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, name := range members {
		for {
			st, err := w.store.ReadStatus(w.t.Context(), name)
			if err == nil {
				if e, ok := st.Lookup("hello"); ok && e.Serving == pkg.String() && e.State == manifest.StateServing {
					break
				}
			}
			if time.Now().After(deadline) {
				w.t.Fatalf("%s does not serve %s within 60 s: %+v, %v", name, pkg, st, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// holders returns the pushui replicas that wrote the rollout's steps into
// the group manifest (not the user who started it), oldest first, from the
// group's audit records.
func (w *rolloutWorld) holders(id string) []string {
	w.t.Helper()
	recs, err := w.store.ListAudit(w.t.Context(), manifest.Group("web"), 1000)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, r := range slices.Backward(recs) {
		if strings.HasPrefix(r.Action, "rollout "+id+":") && strings.HasPrefix(r.User, "pushui@") {
			out = append(out, r.User)
		}
	}
	return out
}

// ranBuild reports whether member ever unpacked pkg.
func (w *rolloutWorld) ranBuild(member string, pkg manifest.PackageName) bool {
	matches, _ := filepath.Glob(filepath.Join(w.roots[member], "envs", "hello", "builds", "*"+pkg.Commit+"*"))
	return len(matches) > 0
}

// oneAtATime checks that the holders of a rollout's steps, oldest first,
// form one run each: a replica never drives a rollout again after another
// took it over.
func oneAtATime(t *testing.T, holders []string) {
	t.Helper()
	seen := map[string]bool{}
	for i, who := range holders {
		if i > 0 && who != holders[i-1] && seen[who] {
			t.Errorf("holders of a rollout's steps %v: %s drove it again after another replica did", holders, who)
		}
		seen[who] = true
	}
}

// TestRolloutReplicas runs rollouts of the sample app with three real
// pullds and real pushui processes on file:// and a real S3 server:
//   - a pushui killed (SIGKILL) mid-rollout and started again resumes the
//     rollout from its record and completes it;
//   - with two replicas running, each rollout is driven by one at a time:
//     the holders of its steps form one run each, never interleaved;
//   - a broken build (v3 crashes) fails its canary, the rollout is reverted
//     fleet-wide, and exactly one host ever ran it.
//
// rolloutBuckets are the stores the rollout tests run on: a file://
// directory and a real S3 server (versitygw).
var rolloutBuckets = []struct {
	name   string
	bucket func(t *testing.T) string
}{
	{"file", func(t *testing.T) string { return "file://" + t.TempDir() }},
	{"s3", func(t *testing.T) string {
		s3 := testserver.StartS3(t)
		s3.Setenv(t)
		return s3.Bucket(t, "fleet")
	}},
}

func TestRolloutReplicas(t *testing.T) {
	for _, tc := range rolloutBuckets {
		t.Run(tc.name, func(t *testing.T) {
			w := newRolloutWorld(t, tc.bucket(t))
			a, aURL := w.startUI("pushui-a")

			// Killed mid-rollout, started again: it completes.
			id := w.start(aURL, `{"group": "web", "package": "`+w.pkgs["v2"].String()+`", "canary": 1, "steps": [50, 100], "min_healthy_time": "0s"}`)
			w.waitRecord(id, "past its canaries", func(r *manifest.RolloutRecord) bool { return r.Step >= 1 })
			a.stop(syscall.SIGKILL)
			if r := w.record(id); r.State != manifest.RolloutRunning {
				t.Fatalf("after the kill the rollout is %s (%s), want running", r.State, r.Reason)
			}
			_, aURL = w.startUI("pushui-a-again")
			r := w.waitRecord(id, "succeeded", func(r *manifest.RolloutRecord) bool { return !r.State.Active() })
			if r.State != manifest.RolloutSucceeded {
				t.Fatalf("rollout of v2: %s (%s), want succeeded", r.State, r.Reason)
			}
			w.waitServing(w.pkgs["v2"], rolloutMembers...)
			if h := w.holders(id); len(h) < 2 || h[0] == h[len(h)-1] {
				t.Errorf("holders of the v2 rollout's steps %v: want the first replica, then the restarted one", h)
			}

			// Two replicas: one drives each rollout at a time. Back to v1
			// (kept on every host: switches, no downloads) in three steps.
			_, bURL := w.startUI("pushui-b")
			id = w.start(bURL, `{"group": "web", "package": "`+w.pkgs["v1"].String()+`", "canary": 1, "steps": [50, 100], "min_healthy_time": "0s"}`)
			if r := w.waitRecord(id, "ended", func(r *manifest.RolloutRecord) bool { return !r.State.Active() }); r.State != manifest.RolloutSucceeded {
				t.Fatalf("rollout of v1: %s (%s), want succeeded", r.State, r.Reason)
			}
			w.waitServing(w.pkgs["v1"], rolloutMembers...)
			h := w.holders(id)
			if len(h) < 2 {
				t.Fatalf("holders of the v1 rollout's steps %v: want a write per step", h)
			}
			oneAtATime(t, h)

			// A broken build: the canary fails, everyone is back on v1,
			// and only the canary ever ran v3.
			id = w.start(aURL, `{"group": "web", "package": "`+w.pkgs["v3"].String()+`", "canary": 1, "steps": [50, 100], "min_healthy_time": "0s", "max_failures": 0, "auto_revert": true}`)
			r = w.waitRecord(id, "ended", func(r *manifest.RolloutRecord) bool { return !r.State.Active() })
			if r.State != manifest.RolloutReverted {
				t.Fatalf("rollout of the broken v3: %s (%s), want reverted", r.State, r.Reason)
			}
			w.waitServing(w.pkgs["v1"], rolloutMembers...)
			var ran []string
			for _, m := range rolloutMembers {
				if w.ranBuild(m, w.pkgs["v3"]) {
					ran = append(ran, m)
				}
			}
			if want := r.History[0].Canaries; !slices.Equal(ran, want) {
				t.Errorf("hosts that ran v3: %v, want only its canary %v", ran, want)
			}
			oneAtATime(t, w.holders(id))
			t.Logf("v3 rollout: %s", r.Reason)
		})
	}
}
