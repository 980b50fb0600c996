// Command demo runs a small pushpull fleet on this machine. `make demo`
// builds the programs and this command into ./bin, as pushpull-demo, and
// runs it from the module's root directory (it builds examples/hello):
//
//	make demo [DEMOFLAGS='-dir DIR -ui ADDR']
//	bin/pushpull-demo [-bin DIR] [-dir DIR] [-ui ADDR]
//
// It creates a file:// bucket in a fresh directory (printed; -dir to pick
// one), builds three versions of the sample app examples/hello (v1, v2 and
// a v3 that crashes on start) and releases them with bin/release, the first
// with -deploy-group demo (one write of groups/demo.json), after writing
// the push config (group "demo" may carry hello, and so may each server;
// the group's default rollout strategy) into the bucket at
// config/push.json, as an operator would with cp: every writer obeys the
// bucket's config. It starts pushui on 127.0.0.1:8000 (moving rollouts
// every 2 s),
// sets the group's hello config (its message and health check timeout)
// through pushui's JSON API (GET the group's manifest, PUT it back with
// If-Match), and starts one pulld per server with -groups demo and no
// manifest of its own, each with its own root and, in its environment,
// the port its hello listens on (as real hosts would all use one port,
// three hosts on one machine cannot), whose logs it shows with the
// server's name in front. Once every server answers with v1 it prints what
// to try next.
//
// pulld notices manifest changes within a second without any nudge
// configuration, because it watches the manifest file of a file:// bucket.
// (pushui's HTTP nudge template maps a server name to a URL,
// http://{server}:PORT/nudge, which two servers on one machine cannot
// share; on a real fleet that is the form to use.)
//
// Ctrl-C stops everything: the pullds (which leave services running, as on
// a real host), then `pulld -terminate` for each root, which runs the
// sample app's STOPPING script, then pushui. The demo directory is kept
// for inspection.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

// demoServer is one simulated host: its server name, the pulld listen
// address and the sample app's port there.
type demoServer struct {
	name      string
	pulldAddr string
	helloPort int
}

var servers = []demoServer{
	{"demo-1", "127.0.0.1:10115", 8081},
	{"demo-2", "127.0.0.1:10116", 8082},
	{"demo-3", "127.0.0.1:10117", 8083},
}

// version is one build of the sample app.
type version struct {
	name    string // v1, v2, v3
	ldflags string
	note    string
}

var versions = []version{
	{"v1", "-X main.version=v1", "v1: the first release"},
	{"v2", "-X main.version=v2", "v2: the second release"},
	{"v3", "-X main.version=v3 -X main.crash=yes", "v3: BROKEN on purpose (crashes on start): pulld rolls it back"},
}

// group is the group every server is in.
const group = "demo"

// pushConfig is the push config: which apps may go where, and the group's
// default rollout strategy (the group page's form and release -rollout
// start from it). The servers are listed too, so that one of them can be
// pinned (its own manifest).
const pushConfig = `{
  "servers": {"demo-1": ["hello"], "demo-2": ["hello"], "demo-3": ["hello"]},
  "groups": {"demo": ["hello"]},
  "rollouts": {"demo": {"canary": 1, "steps": [50, 100], "min_healthy_time": "5s", "auto_revert": true}}
}
`

func main() {
	binDir := flag.String("bin", "bin", "`directory` holding release, pushui and pulld")
	dir := flag.String("dir", "", "demo `directory` (default: a new one under the system's temporary directory)")
	uiAddr := flag.String("ui", "127.0.0.1:8000", "pushui's listen `address`")
	flag.Parse()
	d := &demo{bin: *binDir, dir: *dir, ui: *uiAddr, commits: commits()}
	if err := d.run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// demo is one run of the demo and the processes it started.
type demo struct {
	bin, dir, ui string
	commits      map[string]string // version → commit
	bucket       string
	out          sync.Mutex // serialises lines written to stdout
	procs        []*proc    // started processes, stopped in reverse order
}

// proc is a program the demo started and stops on exit.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan error
}

func (d *demo) say(format string, args ...any) {
	d.out.Lock()
	defer d.out.Unlock()
	fmt.Printf(format+"\n", args...)
}

func (d *demo) run() (err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := d.setup(); err != nil {
		return err
	}
	defer d.stopAll()
	if err := d.start(ctx); err != nil {
		if ctx.Err() != nil {
			d.say("\ninterrupted while starting")
			return nil
		}
		return err
	}
	d.printNext()
	<-ctx.Done()
	stop() // a second Ctrl-C kills the demo right away
	d.say("\nstopping the demo…")
	return nil
}

// setup checks the programs and ports, and creates the demo directory.
func (d *demo) setup() error {
	if _, err := os.Stat(filepath.Join("examples", "hello", "teletraan")); err != nil {
		return fmt.Errorf("run the demo from pushpull's root directory (make demo): %v", err)
	}
	for _, p := range []string{"release", "pushui", "pulld"} {
		if _, err := os.Stat(filepath.Join(d.bin, p)); err != nil {
			return fmt.Errorf("%v (run `make build` first, or give -bin)", err)
		}
	}
	abs, err := filepath.Abs(d.bin)
	if err != nil {
		return err
	}
	d.bin = abs
	addrs := []string{d.ui}
	for _, s := range servers {
		addrs = append(addrs, s.pulldAddr, net.JoinHostPort("127.0.0.1", strconv.Itoa(s.helloPort)))
	}
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("the demo needs %s, which is in use: %v", a, err)
		}
		ln.Close()
	}
	if d.dir == "" {
		if d.dir, err = os.MkdirTemp("", "pushpull-demo-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	if d.dir, err = filepath.Abs(d.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(d.dir, "logs"), 0o755); err != nil {
		return err
	}
	d.bucket = "file://" + filepath.Join(d.dir, "bucket")
	d.say("demo directory: %s\nbucket:         %s", d.dir, d.bucket)
	return nil
}

// start builds and releases the sample app, then starts pushui and the
// pullds and waits until every server serves v1.
func (d *demo) start(ctx context.Context) error {
	conf := filepath.Join(d.dir, "bucket", "config", "push.json")
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(conf, []byte(pushConfig), 0o644); err != nil {
		return err
	}
	for i, v := range versions {
		build, err := d.buildHello(ctx, v)
		if err != nil {
			return err
		}
		var extra []string
		if i == 0 {
			extra = []string{"-deploy-group", group}
		}
		if err := d.release(ctx, v, build, extra...); err != nil {
			return err
		}
	}
	d.say("\nstarting pushui on http://%s/ (log: %s)", d.ui, filepath.Join(d.dir, "logs", "pushui.log"))
	if err := d.startPushui(ctx); err != nil {
		return err
	}
	if err := d.configure(ctx); err != nil {
		return err
	}
	for _, s := range servers {
		if err := d.startPulld(s); err != nil {
			return err
		}
	}
	for _, s := range servers {
		if err := d.waitHello(ctx, s, "v1", time.Minute); err != nil {
			return err
		}
	}
	return nil
}

// exited returns an error naming a started process that has exited, if
// any.
func (d *demo) exited() error {
	for _, p := range d.procs {
		select {
		case err, ok := <-p.done:
			if ok {
				return fmt.Errorf("%s exited: %v", p.name, err)
			}
			return fmt.Errorf("%s exited", p.name)
		default:
		}
	}
	return nil
}

// buildHello builds version v of the sample app into a directory of its
// own under the demo directory, with its teletraan/ scripts, as a build
// pipeline would, and returns the directory.
func (d *demo) buildHello(ctx context.Context, v version) (string, error) {
	dir := filepath.Join(d.dir, "builds", "hello-"+v.name)
	d.say("building hello %s into %s", v.name, dir)
	cmd := exec.CommandContext(ctx, "go", "build", "-ldflags", v.ldflags, "-o", filepath.Join(dir, "hello"), "./examples/hello")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build hello %s: %v\n%s", v.name, err, out)
	}
	return dir, os.CopyFS(filepath.Join(dir, "teletraan"), os.DirFS(filepath.Join("examples", "hello", "teletraan")))
}

// repo is where pushpull's commits are published: the demo's releases
// name it (-repo), so pushui links their commits and the changes between
// them.
const repo = "https://github.com/pushpull/pushpull"

// commits returns the commit each version is released as: the three
// newest commits of this checkout (v1 the oldest), so that pushui's commit
// and compare links lead somewhere real, or, outside a git checkout,
// made-up ones (1111…, 2222…, 3333…).
func commits() map[string]string {
	out := map[string]string{}
	log, err := exec.Command("git", "log", "-3", "--format=%H").Output()
	if lines := strings.Fields(string(log)); err == nil && len(lines) == 3 {
		for i, v := range versions {
			out[v.name] = lines[2-i]
		}
		return out
	}
	for _, v := range versions {
		out[v.name] = strings.Repeat(strings.TrimPrefix(v.name, "v"), 40)
	}
	return out
}

// release runs bin/release on a build and shows what it printed: the
// package name first, then any rollout it started. The builds are outside any git repository, so the
// commit and repository are given.
func (d *demo) release(ctx context.Context, v version, dir string, extra ...string) error {
	args := append([]string{"-bucket", d.bucket, "-app", "hello", "-dir", dir, "-note", v.note,
		"-commit", d.commits[v.name], "-branch", "demo", "-repo", repo}, extra...)
	d.say("$ bin/release %s", strings.Join(quoteAll(args), " "))
	cmd := exec.CommandContext(ctx, filepath.Join(d.bin, "release"), args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("release %s: %v", v.name, err)
	}
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		d.say("  → %s", strings.TrimSpace(line))
	}
	return nil
}

func quoteAll(args []string) []string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " :()&?") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return q
}

// startPushui starts pushui and waits until it answers.
func (d *demo) startPushui(ctx context.Context) error {
	logFile, err := os.Create(filepath.Join(d.dir, "logs", "pushui.log"))
	if err != nil {
		return err
	}
	p, err := d.spawn("pushui", logFile, "-bucket", d.bucket, "-addr", d.ui, "-refresh", "2s", "-rollout-tick", "2s")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + d.ui + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-p.done:
			return fmt.Errorf("pushui exited: %v (see %s)", err, logFile.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pushui did not answer on %s (see %s)", d.ui, logFile.Name())
		}
	}
}

// configure gives the group's hello its message and health check timeout
// through pushui's API: GET the group's manifest that release
// -deploy-group wrote, set the config of its hello entry, and PUT it back
// with If-Match, so that a concurrent change would be refused (412) rather
// than overwritten.
func (d *demo) configure(ctx context.Context) error {
	url := "http://" + d.ui + "/api/groups/" + group
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	body, etag, err := do(req)
	if err != nil {
		return err
	}
	m, err := manifest.Parse(body)
	if err != nil {
		return fmt.Errorf("manifest of group %s: %v", group, err)
	}
	for i := range m.Packages {
		m.Packages[i].Config = map[string]string{
			"MESSAGE":       "Hello from the demo group",
			"CHECK_TIMEOUT": "5",
		}
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader(string(m.Marshal())))
	req.Header.Set("If-Match", etag)
	req.Header.Set("Content-Type", "application/json")
	if _, _, err := do(req); err != nil {
		return err
	}
	d.say("set hello's config in group %s through pushui's API: MESSAGE=%q, CHECK_TIMEOUT=5 s (how long POST_RESTART waits for it to answer)", group, "Hello from the demo group")
	return nil
}

// do makes a request and returns the body and ETag of a 200 answer.
func do(req *http.Request) ([]byte, string, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, resp.Header.Get("ETag"), nil
}

// startPulld starts the server's pulld in group demo, with its hello's
// port in its environment, its log shown with the server's name in front.
func (d *demo) startPulld(s demoServer) error {
	r, w := io.Pipe()
	go d.prefixLines(s.name, r)
	_, err := d.spawnEnv(s.name, w, []string{"PORT=" + strconv.Itoa(s.helloPort)}, "-bucket", d.bucket, "-server", s.name, "-groups", group,
		"-root", d.root(s), "-listen", s.pulldAddr, "-host-info", "", "-poll", "30s", "-step-timeout", "2m")
	return err
}

func (d *demo) root(s demoServer) string { return filepath.Join(d.dir, s.name) }

// noise matches the log fields the demo leaves out to keep lines short:
// they are in the per-attempt log files under each root.
var noise = regexp.MustCompile(` (deploy_id|path|log|build|version)=("[^"]*"|\S+)`)

// prefixLines copies r to stdout line by line, each line led by name, with
// slog's time=… field shortened to the time of day and the noise left out.
func (d *demo) prefixLines(name string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "time="); ok {
			ts, after, _ := strings.Cut(rest, " ")
			if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
				line = t.Local().Format("15:04:05") + " " + after
			}
		}
		line = noise.ReplaceAllString(line, "")
		d.say("%-6s │ %s", name, line)
	}
}

// spawn starts bin/name with its output to out. The process gets its own
// process group, so that Ctrl-C reaches only the demo, which stops the
// processes in order.
func (d *demo) spawn(name string, out io.Writer, args ...string) (*proc, error) {
	return d.spawnEnv(name, out, nil, args...)
}

// spawnEnv is spawn with env added to the demo's environment.
func (d *demo) spawnEnv(name string, out io.Writer, env []string, args ...string) (*proc, error) {
	prog := name
	if strings.HasPrefix(name, "demo-") {
		prog = "pulld"
	}
	cmd := exec.Command(filepath.Join(d.bin, prog), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, done: make(chan error, 1)}
	go func() {
		err := cmd.Wait()
		if c, ok := out.(io.Closer); ok {
			c.Close()
		}
		p.done <- err
		close(p.done)
	}()
	d.procs = append(d.procs, p)
	return p, nil
}

// waitHello waits until the server's hello answers with version v. It
// gives up when a process the demo started exits.
func (d *demo) waitHello(ctx context.Context, s demoServer, v string, timeout time.Duration) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/", s.helloPort)
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.HasPrefix(string(body), "hello "+v+" ") {
				return nil
			}
			last = strings.TrimSpace(string(body))
		} else {
			last = err.Error()
		}
		if err := d.exited(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("hello on %s did not answer with %s within %s (last: %s)", s.name, v, timeout, last)
}

// stopAll stops the pullds (SIGTERM: services keep running, as on a real
// host), runs `pulld -terminate` for each root (STOPPING stops the sample
// servers), and stops pushui.
func (d *demo) stopAll() {
	for i := len(d.procs) - 1; i >= 0; i-- {
		p := d.procs[i]
		if p.name == "pushui" {
			continue
		}
		stopProc(p)
	}
	for _, s := range servers {
		if _, err := os.Stat(d.root(s)); err != nil {
			continue
		}
		args := []string{"-bucket", d.bucket, "-server", s.name, "-root", d.root(s), "-terminate", "-listen", "", "-host-info", ""}
		shown := slices.Clone(args)
		for i, a := range shown {
			if a == "" {
				shown[i] = "''"
			}
		}
		d.say("$ bin/pulld %s", strings.Join(shown, " "))
		cmd := exec.Command(filepath.Join(d.bin, "pulld"), args...)
		r, w := io.Pipe()
		go d.prefixLines(s.name, r)
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Run(); err != nil {
			d.say("pulld -terminate for %s: %v", s.name, err)
		}
		w.Close()
	}
	for _, p := range d.procs {
		if p.name == "pushui" {
			stopProc(p)
		}
	}
	d.procs = nil
	d.say("demo stopped. Its files are in %s (rm -rf it when done).", d.dir)
}

// stopProc sends SIGTERM and waits up to 30 s before killing.
func stopProc(p *proc) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// printNext tells the newcomer what to try.
func (d *demo) printNext() {
	var b strings.Builder
	fmt.Fprintf(&b, `
────────────────────────────────────────────────────────────────────────
pushpull demo: three servers (demo-1, demo-2, demo-3) in group demo serve
hello v1. None has a manifest of its own: all follow groups/demo.json.

  pushui   http://%s/    group: http://%[1]s/groups/demo
`, d.ui)
	for _, s := range servers {
		fmt.Fprintf(&b, "  %s   hello: curl http://127.0.0.1:%d/    pulld: curl http://%s/status\n", s.name, s.helloPort, s.pulldAddr)
	}
	fmt.Fprintf(&b, `
Try this (v1 is commit %[4]s, v2 %[5]s, v3 %[6]s; pushui links them
and the changes between them on %[7]s):
  1. Roll out v2: open http://%[1]s/groups/demo, pick v2 under
     Rollouts and press "Roll out". The rollout page follows it live: one
     canary first, then 50%%, then 100%%, each step one write of
     groups/demo.json, each waiting until its hosts serve v2 for 5 s.
     From a shell, the same, followed to its end (exit 0 when it succeeded):
       bin/pushctl -url http://%[1]s rollout start -group demo -wait hello@%[5]s
  2. Roll out v3, broken on purpose: its canary's POST_RESTART fails and
     that pulld rolls back by itself; the rollout fails on the canary and
     reverts the group to v2 (auto_revert in the push config's rollouts).
     Only the canary ever ran v3: the page shows it with the script's
     output, and so does pushctl, which exits 1:
       bin/pushctl -url http://%[1]s rollout start -group demo -wait hello@%[6]s
  3. Deploy v1 to the whole group at once (Deploy, not Roll out): one write
     that every member follows; v1 is still on each host, so nothing is
     downloaded ("rollback, no download").
  4. Pin one host, Teletraan's hotfix: open hello on demo-1
     (http://%[1]s/servers/demo-1/apps/hello) and deploy v2 there. demo-1's
     own manifest wins over the group; the others stay on the group's
     build, and the group's page shows demo-1 as pinned. Remove hello from
     demo-1's own manifest to let it follow the group again.
  5. Release a build of your own and roll it out to the group with the
     group's default strategy:
       go build -ldflags "-X main.version=mine" -o /tmp/hello-mine/hello ./examples/hello
       cp -r examples/hello/teletraan /tmp/hello-mine/
       bin/release -bucket %[2]s -app hello -dir /tmp/hello-mine \
         -commit 4444444444444444444444444444444444444444 -note "my build" -rollout demo

The bucket is plain files: ls -R %[3]s
Ctrl-C stops everything, including the hello servers.
────────────────────────────────────────────────────────────────────────
`, d.ui, d.bucket, filepath.Join(d.dir, "bucket"), d.commits["v1"][:12], d.commits["v2"][:12], d.commits["v3"][:12], repo)
	d.say("%s", b.String())
}
