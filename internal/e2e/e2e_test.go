package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

// server is the server the loop walks through; group is its group, whose
// manifest the test writes (server has none of its own), and joiner the
// second member, which joins at the end.
const (
	server = "demo-1"
	group  = "demo"
	joiner = "demo-2"
)

// bin holds the programs TestMain built: release, pushui and pulld, and one
// build directory of the sample app per version (the hello binary and its
// teletraan/ scripts), ready for `release -dir`.
var bin struct {
	release, pushui, pulld, pushctl string
	hello                           map[string]string // version → build directory
}

// helloVersions are the sample app's builds: the ldflags of each. v3's
// server exits as soon as it starts, so its POST_RESTART fails.
var helloVersions = map[string]string{
	"v1": "-X main.version=v1",
	"v2": "-X main.version=v2",
	"v3": "-X main.version=v3 -X main.crash=yes",
}

// commits gives each release its own commit, so that releases within one
// second still get distinct package names.
var commits = map[string]string{
	"v1": "1111111111111111111111111111111111111111",
	"v2": "2222222222222222222222222222222222222222",
	"v3": "3333333333333333333333333333333333333333",
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pushpull-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 1
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the programs:", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// build builds the three programs and the sample app's versions into dir
// with the go command (which `go test` puts first on PATH).
func build(dir string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	gobuild := func(args ...string) error {
		cmd := exec.Command("go", append([]string{"build"}, args...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := gobuild("-o", dir+string(filepath.Separator), "./cmd/release", "./cmd/pushui", "./cmd/pulld", "./cmd/pushctl"); err != nil {
		return err
	}
	bin.release, bin.pushui, bin.pulld = filepath.Join(dir, "release"), filepath.Join(dir, "pushui"), filepath.Join(dir, "pulld")
	bin.pushctl = filepath.Join(dir, "pushctl")
	bin.hello = map[string]string{}
	for v, ldflags := range helloVersions {
		d := filepath.Join(dir, "hello-"+v)
		if err := gobuild("-ldflags", ldflags, "-o", filepath.Join(d, "hello"), "./examples/hello"); err != nil {
			return err
		}
		if err := os.CopyFS(filepath.Join(d, "teletraan"), os.DirFS(filepath.Join(root, "examples", "hello", "teletraan"))); err != nil {
			return err
		}
		bin.hello[v] = d
	}
	return nil
}

// moduleRoot walks up from the working directory to the directory holding
// go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// TestWholeLoop runs the loop of the package comment on each bucket
// backend, with pulld run two ways: `pulld -once` after each change (its
// exit status checked), and pulld as a daemon that pushui nudges over HTTP
// (its poll period is an hour, so only the nudge explains a prompt
// install). The cases run one after the other: the S3 one sets its
// credentials in the environment, which the child processes inherit.
func TestWholeLoop(t *testing.T) {
	tests := []struct {
		name   string
		daemon bool
		bucket func(t *testing.T) string // the bucket URL, with the environment set to reach it
	}{
		{"file/once", false, func(t *testing.T) string { return "file://" + t.TempDir() }},
		{"s3/daemon", true, func(t *testing.T) string {
			s3 := testserver.StartS3(t)
			s3.Setenv(t)
			return s3.Bucket(t, "fleet")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wholeLoop(t, tc.bucket(t), tc.daemon)
		})
	}
}

// wholeLoop is the loop of the package comment on the bucket at url.
func wholeLoop(t *testing.T, url string, daemon bool) {
	start := time.Now()
	w := newWorld(t, url, daemon)

	pkgs := map[string]string{}
	for _, v := range []string{"v1", "v2", "v3"} {
		pkgs[v] = w.release(v)
	}
	if daemon {
		w.startPulld()
	}
	w.startPushui()

	// v1 through pushui's API: pulld installs it, hello answers with v1
	// and with the message from the manifest's config.
	rev := w.setPackage(pkgs["v1"])
	w.converge(rev, serving(pkgs["v1"]), 0)
	w.wantHello("v1")

	// v2.
	rev = w.setPackage(pkgs["v2"])
	w.converge(rev, serving(pkgs["v2"]), 0)
	w.wantHello("v2")

	// A second host joins the group: it converges on the group's entry by
	// itself, and no manifest is written for it.
	w.join(pkgs["v2"], "v2")

	// Back to v1 by rollback: v1's build is still on the host, so pulld
	// needs nothing from the bucket. Its package is deleted to prove it,
	// after pushui accepted the change (it refuses a missing package) and
	// before pulld sees it: a daemon is stopped meanwhile, which leaves
	// hello serving.
	if daemon {
		w.stopPulld()
	}
	rev = w.setPackage(pkgs["v1"])
	w.deletePackage(pkgs["v1"])
	w.wantHello("v2")
	if plan := w.pulld("-dry-run"); !strings.Contains(strings.ToLower(plan.stdout), "rollback") {
		t.Errorf("pulld -dry-run before going back to v1: want a rollback in the plan, got:\n%s%s", plan.stdout, plan.stderr)
	}
	if daemon {
		w.startPulld()
		w.nudgePulld()
	}
	w.converge(rev, serving(pkgs["v1"]), 0)
	w.wantHello("v1")

	// v3 crashes on start: its POST_RESTART fails, pulld rolls back to v1
	// on its own (pulld -once exits 1), and pushui shows the env failed
	// with the script's output.
	rev = w.setPackage(pkgs["v3"])
	w.converge(rev, rolledBack(pkgs["v3"], pkgs["v1"]), 1)
	w.wantHello("v1")
	w.wantFailed(pkgs["v3"], "crashing on purpose")

	// Remove the app from the group: STOPPING runs and the sample server
	// is gone.
	pid := w.helloPID()
	rev = w.putManifest(`{"packages": []}`)
	w.converge(rev, stopped, 0)
	w.wantHelloGone(pid)

	t.Logf("whole loop on %s took %s", url, time.Since(start).Round(time.Millisecond))
}

// envCheck tells whether the status of env hello (ok: reported at all) is
// what a step waits for.
type envCheck struct {
	what string
	ok   func(e manifest.EnvStatus, reported bool) bool
}

// serving waits for hello to serve pkg.
func serving(pkg string) envCheck {
	return envCheck{"serving " + pkg, func(e manifest.EnvStatus, ok bool) bool {
		return ok && e.State == manifest.StateServing && e.Serving == pkg
	}}
}

// rolledBack waits for hello to report pkg failed and rolled back by the
// default policy, with old serving again.
func rolledBack(pkg, old string) envCheck {
	return envCheck{pkg + " rolled back to " + old, func(e manifest.EnvStatus, ok bool) bool {
		return ok && e.State == manifest.StateRolledBack && e.Desired == pkg && e.Serving == old
	}}
}

// stopped waits for hello to be stopped or no longer reported.
var stopped = envCheck{"stopped", func(e manifest.EnvStatus, ok bool) bool {
	return !ok || e.State == manifest.StateStopped
}}

// world is one run of the loop: a bucket, a pushui, a pulld root, and the
// port the sample server is configured to listen on.
type world struct {
	t         *testing.T
	bucket    string
	dir       string // for the push config and logs
	root      string // pulld's root
	helloPort int
	ui        string // pushui's base URL
	client    *http.Client

	// daemon: pulld runs as a daemon listening on pulldAddr, and pushui
	// nudges it there; otherwise each step runs `pulld -once`.
	daemon    bool
	pulldAddr string
	daemonCmd *exec.Cmd
	daemonLog *os.File
	daemonEnd chan error
}

func newWorld(t *testing.T, bucket string, daemon bool) *world {
	w := &world{
		t:         t,
		bucket:    bucket,
		dir:       t.TempDir(),
		root:      t.TempDir(),
		helloPort: freePort(t),
		client:    &http.Client{Timeout: 10 * time.Second},
		daemon:    daemon,
	}
	if daemon {
		w.pulldAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	}
	// Whatever happens, no sample server outlives the test: pulld
	// -terminate runs STOPPING (after the daemon, if any, has stopped:
	// cleanups run last first), and a server still running after that is
	// killed through its pid file.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin.pulld, "-bucket", w.bucket, "-server", server, "-root", w.root, "-terminate", "-listen", "", "-host-info", "")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("cleanup: pulld -terminate: %v\n%s", err, out)
		}
		if pid, err := readPID(w.pidFile()); err == nil && alive(pid) {
			t.Errorf("cleanup: hello (pid %d) still ran after pulld -terminate; killing it", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return w
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// result is how a program run ended.
type result struct {
	code           int
	stdout, stderr string
}

// run runs a program to completion, within a minute.
func (w *world) run(name string, args ...string) result {
	w.t.Helper()
	return w.runEnv(nil, name, args...)
}

// runEnv is run with the environment env (nil: the test's).
func (w *world) runEnv(env []string, name string, args ...string) result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.t.Context(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		r.code = exit.ExitCode()
	default:
		w.t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, r.stderr)
	}
	return r
}

// release uploads the sample app's build of version v and returns the
// package name it printed last.
func (w *world) release(v string) string {
	w.t.Helper()
	r := w.run(bin.release, "-bucket", w.bucket, "-app", "hello", "-dir", bin.hello[v],
		"-note", "hello "+v, "-commit", commits[v], "-branch", "main", "-repo", "https://example.com/pushpull.git")
	if r.code != 0 {
		w.t.Fatalf("release %s: exit %d\n%s%s", v, r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	name := strings.TrimSpace(lines[0])
	if _, err := manifest.ParsePackageName(name); err != nil {
		w.t.Fatalf("release %s: the first line of output is not a package name: %v\n%s", v, err, r.stdout)
	}
	w.t.Logf("released %s as %s", v, name)
	return name
}

// startPushui starts pushui on a free port with a push config allowing
// hello on the server, and waits until it answers. It is stopped (SIGTERM)
// when the test ends.
func (w *world) startPushui() {
	w.t.Helper()
	conf := filepath.Join(w.dir, "push.json")
	if err := os.WriteFile(conf, []byte(`{"servers": {"`+server+`": ["hello"]}, "groups": {"`+group+`": ["hello"]}}`), 0o644); err != nil {
		w.t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(w.t)))
	logFile, err := os.Create(filepath.Join(w.dir, "pushui.log"))
	if err != nil {
		w.t.Fatal(err)
	}
	args := []string{"-bucket", w.bucket, "-config", conf, "-addr", addr, "-refresh", "0"}
	if w.daemon {
		// A relay URL (no {server}): group nudges reach it, with the
		// group's address as the body.
		args = append(args, "-nudge-url", "http://"+w.pulldAddr+"/nudge")
	}
	cmd := exec.Command(bin.pushui, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	w.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
		if w.t.Failed() {
			out, _ := os.ReadFile(logFile.Name())
			w.t.Logf("pushui's log:\n%s", out)
		}
	})
	w.ui = "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := w.client.Get(w.ui + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-done:
			out, _ := os.ReadFile(logFile.Name())
			w.t.Fatalf("pushui exited: %v\n%s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("pushui did not answer on %s within 15 s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// api makes a request to pushui's API and returns the status code, the
// body and the ETag.
func (w *world) api(method, path string, body string, header map[string]string) (int, []byte, string) {
	w.t.Helper()
	code, data, h := w.apiHeader(method, path, body, header)
	return code, data, h.Get("ETag")
}

// apiHeader is api, returning every header of the answer.
func (w *world) apiHeader(method, path string, body string, header map[string]string) (int, []byte, http.Header) {
	w.t.Helper()
	req, err := http.NewRequestWithContext(w.t.Context(), method, w.ui+path, strings.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := w.client.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, data, resp.Header
}

// putManifest replaces the group's manifest through pushui's API, as a
// client should: GET it for its ETag, PUT with If-Match (If-None-Match: *
// when there is none yet). It returns the revision written.
func (w *world) putManifest(doc string) int64 {
	w.t.Helper()
	ctx := w.t.Context()
	c := w.apiClient()
	_, etag, err := c.GroupManifest(ctx, group)
	if err != nil {
		w.t.Fatalf("GET the group's manifest: %v", err)
	}
	m, err := manifest.Parse([]byte(doc))
	if err != nil {
		w.t.Fatal(err)
	}
	written, err := c.PutGroupManifest(ctx, group, m, etag)
	if err != nil {
		w.t.Fatalf("PUT the group's manifest: %v", err)
	}
	if written.NudgeError != "" && w.daemonCmd != nil {
		w.t.Errorf("PUT the group's manifest: pushui could not nudge pulld: %s", written.NudgeError)
	}
	// A PUT without a precondition is refused: the API never lets a
	// client overwrite a manifest it has not read. (The client always
	// sends one, so this is said in raw HTTP.)
	path := "/api/groups/" + group
	if code, body, _ := w.api("PUT", path, doc, nil); code != http.StatusPreconditionRequired {
		w.t.Errorf("PUT %s without If-Match: got %d %s, want 428", path, code, body)
	}
	return written.Manifest.Revision
}

// apiClient is the API client of the world's pushui.
func (w *world) apiClient() *client.Client {
	w.t.Helper()
	c, err := client.New(w.ui, client.Options{HTTPClient: w.client})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// setPackage points the group's manifest at pkg, with the sample app's
// config shared by every member: its message and a short health check.
// Each host's port comes from its pulld's environment. It returns the
// revision written.
func (w *world) setPackage(pkg string) int64 {
	w.t.Helper()
	doc, err := json.Marshal(map[string]any{"packages": []any{map[string]any{
		"package": pkg,
		"config": map[string]string{
			"MESSAGE":       "configured by the e2e test",
			"CHECK_TIMEOUT": "2",
		},
	}}})
	if err != nil {
		w.t.Fatal(err)
	}
	return w.putManifest(string(doc))
}

// groupRevision is the revision of the group's manifest st says pulld
// last acted on; -1 when st is nil or does not name the group.
func groupRevision(st *manifest.Status) int64 {
	if st != nil {
		for _, g := range st.Groups {
			if g.Name == group {
				return g.Revision
			}
		}
	}
	return -1
}

// converge has pulld act on group manifest revision rev and checks the
// outcome. With -once, pulld runs once and must exit with wantExit. A
// daemon has been nudged by pushui already: converge waits until the
// server's status reports revision rev (or later) with hello as check
// wants.
func (w *world) converge(rev int64, check envCheck, wantExit int) {
	w.t.Helper()
	if !w.daemon {
		w.pulldOnce(wantExit)
		if st := w.status(); groupRevision(st) < rev {
			w.t.Fatalf("after pulld -once, status %+v: want group manifest revision %d", st, rev)
		} else if e, ok := st.Lookup("hello"); !check.ok(e, ok) {
			w.t.Fatalf("after pulld -once, hello is %+v: want %s", e, check.what)
		}
		return
	}
	start := time.Now()
	deadline := start.Add(45 * time.Second)
	for {
		st := w.status()
		if groupRevision(st) >= rev {
			if e, ok := st.Lookup("hello"); check.ok(e, ok) {
				w.t.Logf("pulld: revision %d, %s after %s", rev, check.what, time.Since(start).Round(time.Millisecond))
				return
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("pulld did not reach revision %d with hello %s within 45 s; status: %+v", rev, check.what, st)
		}
		select {
		case err := <-w.daemonEnd:
			w.t.Fatalf("pulld exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// status returns the server's status from the bucket, or nil before its
// first report.
func (w *world) status() *manifest.Status {
	w.t.Helper()
	return w.statusOf(server)
}

// statusOf returns name's status from the bucket, or nil before its first
// report.
func (w *world) statusOf(name string) *manifest.Status {
	w.t.Helper()
	store, err := blobstore.Open(w.t.Context(), w.bucket)
	if err != nil {
		w.t.Fatal(err)
	}
	defer store.Close()
	st, err := store.ReadStatus(w.t.Context(), name)
	if errors.Is(err, blobstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		w.t.Fatalf("read status: %v", err)
	}
	return st
}

// startPulld starts pulld as a daemon polling once an hour, and waits
// until it answers on its listen address. It is stopped when the test
// ends, if stopPulld has not stopped it before.
func (w *world) startPulld() {
	w.t.Helper()
	logFile, err := os.OpenFile(filepath.Join(w.dir, "pulld.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	cmd := exec.Command(bin.pulld, "-bucket", w.bucket, "-server", server, "-groups", group, "-root", w.root,
		"-listen", w.pulldAddr, "-host-info", "", "-step-timeout", "30s", "-poll", "1h")
	cmd.Env = hostEnv(w.helloPort)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	w.daemonCmd, w.daemonLog, w.daemonEnd = cmd, logFile, done
	w.t.Cleanup(func() {
		w.stopPulld()
		if w.t.Failed() {
			out, _ := os.ReadFile(logFile.Name())
			w.t.Logf("pulld's log:\n%s", out)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := w.client.Get("http://" + w.pulldAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-done:
			out, _ := os.ReadFile(logFile.Name())
			w.t.Fatalf("pulld exited: %v\n%s", err, out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("pulld did not answer on %s within 15 s", w.pulldAddr)
		}
	}
}

// stopPulld stops the daemon as systemd would (SIGTERM) and checks that
// it exited cleanly. Stopping twice is harmless.
func (w *world) stopPulld() {
	w.t.Helper()
	if w.daemonCmd == nil {
		return
	}
	cmd, done := w.daemonCmd, w.daemonEnd
	w.daemonCmd = nil
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			w.t.Errorf("pulld after SIGTERM: %v, want a clean exit", err)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		w.t.Errorf("pulld did not stop within 30 s of SIGTERM")
	}
	w.daemonLog.Close()
}

// nudgePulld asks the daemon to reconcile now, as pushui does.
func (w *world) nudgePulld() {
	w.t.Helper()
	resp, err := w.client.Post("http://"+w.pulldAddr+"/nudge", "text/plain", strings.NewReader(server))
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		w.t.Fatalf("POST /nudge: %s", resp.Status)
	}
}

// pulld runs pulld for the server with extra arguments.
func (w *world) pulld(args ...string) result {
	w.t.Helper()
	return w.pulldAs(server, w.root, w.helloPort, args...)
}

// pulldAs runs pulld for the member name, with its root and the port its
// hello listens on in its environment, with extra arguments.
func (w *world) pulldAs(name, root string, port int, args ...string) result {
	w.t.Helper()
	args = append([]string{"-bucket", w.bucket, "-server", name, "-groups", group, "-root", root,
		"-listen", "", "-host-info", "", "-step-timeout", "30s"}, args...)
	return w.runEnv(hostEnv(port), bin.pulld, args...)
}

// hostEnv is a member's environment: the test's, with the port its hello
// listens on, as one host's differs from another's.
func hostEnv(port int) []string {
	return append(os.Environ(), "PORT="+strconv.Itoa(port))
}

// join runs pulld -once for a second member of the group, which has no
// manifest of its own, and checks that it serves the group's entry (pkg)
// on its own port, reports the group, and that no server manifest was
// written for it. Its hello is stopped when the test ends.
func (w *world) join(pkg, v string) {
	w.t.Helper()
	store, err := blobstore.Open(w.t.Context(), w.bucket)
	if err != nil {
		w.t.Fatal(err)
	}
	defer store.Close()
	before, err := store.ListServers(w.t.Context())
	if err != nil {
		w.t.Fatal(err)
	}
	root, port := w.t.TempDir(), freePort(w.t)
	w.t.Cleanup(func() {
		// t.Context has ended by now: STOPPING gets a context of its own.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin.pulld, "-bucket", w.bucket, "-server", joiner, "-root", root, "-terminate", "-listen", "", "-host-info", "")
		if out, err := cmd.CombinedOutput(); err != nil {
			w.t.Logf("cleanup: pulld -terminate for %s: %v\n%s", joiner, err, out)
		}
	})
	if r := w.pulldAs(joiner, root, port, "-once"); r.code != 0 {
		w.t.Fatalf("%s: pulld -once: exit %d\n%s", joiner, r.code, r.stderr)
	}
	st := w.statusOf(joiner)
	e, ok := st.Lookup("hello")
	if groupRevision(st) < 0 || !ok || e.Serving != pkg || e.Source != "group:"+group {
		w.t.Fatalf("%s: status %+v, hello %+v; want group %s and hello serving %s from it", joiner, st, e, group, pkg)
	}
	w.wantHelloOn(port, joiner, v)
	after, err := store.ListServers(w.t.Context())
	if err != nil {
		w.t.Fatal(err)
	}
	if len(after) != len(before) {
		w.t.Errorf("server manifests %v → %v: a member joining wrote one", before, after)
	}
}

// pulldOnce runs `pulld -once` and checks its exit status.
func (w *world) pulldOnce(want int) {
	w.t.Helper()
	start := time.Now()
	r := w.pulld("-once")
	w.t.Logf("pulld -once: exit %d in %s\n%s%s", r.code, time.Since(start).Round(time.Millisecond), r.stdout, r.stderr)
	if r.code != want {
		w.t.Fatalf("pulld -once: exit %d, want %d", r.code, want)
	}
}

// wantHello checks that the sample server answers GET / with version v and
// the message from the manifest's config.
func (w *world) wantHello(v string) {
	w.t.Helper()
	w.wantHelloOn(w.helloPort, server, v)
}

// wantHelloOn checks that the sample server of member name, on port,
// answers GET / with version v and the message from the group's config.
func (w *world) wantHelloOn(port int, name, v string) {
	w.t.Helper()
	resp, err := w.client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		w.t.Fatalf("hello on %s should answer with %s: %v", name, v, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := fmt.Sprintf("hello %s on %s: configured by the e2e test\n", v, name)
	if resp.StatusCode != http.StatusOK || string(body) != want {
		w.t.Fatalf("GET / on hello: %s %q, want 200 %q", resp.Status, body, want)
	}
}

// wantFailed checks that pushui's API shows hello failed at pkg, and that
// the status it serves carries the failing script's output with the words
// want.
func (w *world) wantFailed(pkg, want string) {
	w.t.Helper()
	st, err := w.apiClient().Status(w.t.Context(), server)
	if err != nil {
		w.t.Fatalf("the status of %s: %v", server, err)
	}
	e, ok := st.Lookup("hello")
	switch {
	case !ok:
		w.t.Errorf("status has no env hello: %s", st.Marshal())
	case e.State != manifest.StateRolledBack:
		w.t.Errorf("status of hello: state %s, want ROLLED_BACK", e.State)
	case e.Error == "" || !strings.Contains(e.Output, want):
		w.t.Errorf("status of hello: error %q, output %q: want an error and output with %q", e.Error, e.Output, want)
	}

	// The main listing (after a refresh, as the UI's button does) shows
	// the env failed, with v3 desired.
	if code, body, _ := w.api("POST", "/refresh", "", nil); code != http.StatusOK {
		w.t.Fatalf("POST /refresh: %d %s", code, body)
	}
	list, err := w.apiClient().Servers(w.t.Context(), "")
	if err != nil {
		w.t.Fatalf("the servers: %v", err)
	}
	for _, s := range list.Servers {
		for _, e := range s.Envs {
			if s.Name == server && e.Env == "hello" {
				if !e.Failed || e.Drift || e.Desired != pkg || e.Error == "" { // a failure needs attention; it is not drift
					w.t.Errorf("the servers: hello on %s is %+v, want failed (not drift), desired %s, with an error", server, e, pkg)
				}
				return
			}
		}
	}
	w.t.Errorf("the servers: no env hello on %s: %+v", server, list.Servers)
}

// deletePackage deletes pkg's object from the bucket.
func (w *world) deletePackage(pkg string) {
	w.t.Helper()
	name, err := manifest.ParsePackageName(pkg)
	if err != nil {
		w.t.Fatal(err)
	}
	store, err := blobstore.Open(w.t.Context(), w.bucket)
	if err != nil {
		w.t.Fatal(err)
	}
	defer store.Close()
	if err := store.Bucket().Delete(w.t.Context(), blobstore.PackageKey(name)); err != nil {
		w.t.Fatalf("delete %s: %v", pkg, err)
	}
	if _, err := store.StatPackage(w.t.Context(), name); !errors.Is(err, blobstore.ErrNotFound) {
		w.t.Fatalf("package %s after deleting it: %v, want not found", pkg, err)
	}
}

// pidFile is where the sample app's scripts keep the server's pid: beside
// the env's builds directory under pulld's root.
func (w *world) pidFile() string {
	return filepath.Join(w.root, "envs", "hello", "run", "hello.pid")
}

// helloPID returns the running sample server's pid.
func (w *world) helloPID() int {
	w.t.Helper()
	pid, err := readPID(w.pidFile())
	if err != nil {
		w.t.Fatal(err)
	}
	if !alive(pid) {
		w.t.Fatalf("hello's pid file names %d, which does not run", pid)
	}
	return pid
}

// wantHelloGone checks that the server with pid has stopped, its pid file
// is gone and nothing answers on its port.
func (w *world) wantHelloGone(pid int) {
	w.t.Helper()
	if alive(pid) {
		w.t.Errorf("hello (pid %d) still runs after it left the manifest", pid)
	}
	if _, err := os.Stat(w.pidFile()); !errors.Is(err, fs.ErrNotExist) {
		w.t.Errorf("hello's pid file after STOPPING: %v, want it gone", err)
	}
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", w.helloPort), time.Second)
	if err == nil {
		conn.Close()
		w.t.Errorf("something still listens on hello's port %d", w.helloPort)
	}
}

func readPID(file string) (int, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// alive reports whether a process with pid runs. A zombie does not: the
// stopped sample server may wait a moment for whatever adopted it to reap
// it.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: trust kill
	}
	// The state follows the command name in parentheses: "pid (comm) S …".
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}
