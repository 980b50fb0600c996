package pkginstall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pushpull/pushpull/internal/backoff"
	"github.com/pushpull/pushpull/manifest"

	"github.com/pushpull/pushpull/pkgformat"
)

// waitDelay bounds how long a script's Wait may still block once the script
// has exited or been killed.
const waitDelay = 500 * time.Millisecond

// script runs step's script from build id, with up to Tries attempts. A
// missing script is skipped. A script killed at the step timeout is not
// tried again (Teletraan's SCRIPT_TIMEOUT): one hung step must not cost
// Tries timeouts before the failure policy acts. The error wraps ErrScript
// (and ErrTimeout when the attempt timed out), or the context's error.
func (a *attempt) script(ctx context.Context, step manifest.Step, id string) error {
	e := a.e
	a.step(step)
	dir := pkgformat.ScriptsDir(e.buildDir(a.env, id), a.env)
	argv := []string{filepath.Join(dir, string(step))}
	if a.es.Builds[id].Deb != "" { // a .deb build: its Package was read when it was downloaded
		deb := filepath.Join(e.buildDir(a.env, id), pkgformat.DebFile)
		dir, argv = e.buildDir(a.env, id), a.dpkg(step, id, deb)
		if argv == nil {
			return nil // a .deb has nothing to run at this step
		}
	} else if _, err := os.Lstat(argv[0]); errors.Is(err, os.ErrNotExist) {
		a.scripts.Debug("script missing; skipped", "step", step, "build", id)
		return nil
	}
	var err error
	for try := 1; try <= e.cfg.Tries; try++ {
		if err = ctx.Err(); err != nil {
			break
		}
		err = a.runOnce(ctx, step, argv, dir, try)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || try == e.cfg.Tries || errors.Is(err, ErrTimeout) {
			break
		}
		wait := backoff.Delay(try, e.cfg.Backoff, 0)
		a.scripts.Warn("script failed; trying again", "step", step, "try", try, "wait", wait, "err", err)
		_ = backoff.Sleep(ctx, wait) // a cancelled ctx ends the loop above
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w (%w)", err, cerr)
	}
	return fmt.Errorf("pkginstall: %s of %s: %w: %w", step, id, ErrScript, err)
}

// dpkgScript is what a .deb's RESTARTING step runs: dpkg -i, keeping
// conffiles an admin changed, and with AptFix, when dpkg -i fails,
// apt-get -f install to bring the unmet dependencies in, which succeeds
// only when it leaves the package installed. Its arguments are the .deb,
// the Debian package name and "1" for AptFix.
//
// dpkg exits 2 when it cannot run at all, as when another dpkg or apt
// (unattended-upgrades) holds its lock: that is waited out, for up to
// five minutes (and the step timeout), rather than counted as a failure
// of the package. apt-get -f install is told never to remove a package
// (--no-remove), so that fixing one package's dependencies cannot take
// another away; it then fails instead.
const dpkgScript = dpkgWait + `dpkg_wait dpkg --force-confdef --force-confold -i "$1" && exit 0
status=$?
[ "$3" = 1 ] || exit $status
echo "dpkg -i failed: apt-get -f install brings in what $2 depends on"
apt-get -y --no-remove -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -f install || exit $?
dpkg -s "$2" | grep -qx 'Status: install ok installed' && exit 0
echo "apt-get -f install left $2 not installed" >&2
exit 1
`

// dpkgRemove is what a .deb's STOPPING step runs: dpkg -r of its Package
// ($1), waiting out a held lock as dpkgScript does.
const dpkgRemove = dpkgWait + `dpkg_wait dpkg -r "$1"
`

// dpkgWait defines the shell function dpkg_wait, which runs its arguments
// and, while they exit 2 (dpkg could not run: its lock is held), runs them
// again every 5 s, 60 times at most.
const dpkgWait = `dpkg_wait() {
	n=0
	while :; do
		"$@"
		st=$?
		[ "$st" = 2 ] && [ "$n" -lt 60 ] || return "$st"
		n=$((n + 1))
		echo "dpkg could not run (exit status 2: is another dpkg or apt holding its lock?); trying again in 5 s"
		sleep 5
	done
}
`

// dpkg returns the command a .deb's step runs: at RESTARTING dpkg -i of
// deb (dpkgScript), at STOPPING dpkg -r of its Debian package; nil at the
// other steps. The maintainer scripts see the step's environment, config
// values and Teletraan's variables included: dpkg passes it on.
func (a *attempt) dpkg(step manifest.Step, id, deb string) []string {
	pkg := a.es.Builds[id].Deb
	switch step {
	case manifest.StepRestarting:
		apt := "0"
		if a.e.cfg.AptFix {
			apt = "1"
		}
		return []string{"/bin/sh", "-c", dpkgScript, "dpkg", deb, pkg, apt}
	case manifest.StepStopping:
		return []string{"/bin/sh", "-c", dpkgRemove, "dpkg", pkg}
	}
	return nil
}

// runOnce runs one attempt of a step's command, argv.
func (a *attempt) runOnce(ctx context.Context, step manifest.Step, argv []string, dir string, try int) error {
	e := a.e
	if err := os.MkdirAll(e.logsDir(a.env), privateDir); err != nil {
		return err
	}
	logPath := filepath.Join(e.logsDir(a.env), a.logName(step, try))
	out, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_CLOEXEC, privateFile)
	if err != nil {
		return err
	}
	defer out.Close()

	sctx, cancel := context.WithTimeout(ctx, e.cfg.StepTimeout)
	defer cancel()
	cmd := exec.CommandContext(sctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = a.environ(step, dir)
	cmd.Stdin = nil
	// The script's output goes straight to the file: its children (a
	// service started in the background) inherit it and can never block
	// the deploy the way a held pipe would.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The whole group: children that kept running die too.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = waitDelay

	log := a.scripts.With("step", step, "try", try)
	log.Info("script started", "log", logPath)
	f := newFollower(logPath, log)
	stopFollow := f.start()
	start := time.Now()
	err = e.cfg.Run(sctx, cmd)
	stopFollow()
	a.res.Output = f.tail()
	took := time.Since(start).Round(time.Millisecond)
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		err = nil
	}
	if err != nil && errors.Is(sctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("%w after %v (process group killed): %w", ErrTimeout, e.cfg.StepTimeout, err)
	}
	if err != nil {
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			a.res.ExitCode = ee.ExitCode()
		}
		log.Warn("script failed", "err", err, "took", took)
		return err
	}
	log.Info("script done", "took", took)
	return nil
}

// logName is the file name of one script attempt's log:
// {deploy id}.{step}.{try}.log, with ".rollback" after the deploy id for
// the runs of a rollback, so that every attempt has a file of its own.
func (a *attempt) logName(step manifest.Step, try int) string {
	id := a.deployID
	if a.phase != "" {
		id += "." + a.phase
	}
	return fmt.Sprintf("%s.%s.%d.log", id, step, try)
}

// environ returns a script's environment: pulld's own, the env's config
// values, then Teletraan's variables (which win over config keys of the
// same name).
func (a *attempt) environ(step manifest.Step, dir string) []string {
	e := a.e
	vars := map[string]string{
		"ENV_NAME":     a.env,
		"STAGE_NAME":   e.cfg.Server,
		"DEPLOY_ID":    a.deployID,
		"DEPLOY_STEP":  string(step),
		"OPCODE":       a.opcode,
		"DEPLOY_TYPE":  a.dtype,
		"BUILD_COMMIT": a.build.Commit,
		"BUILD_NAME":   "",
		"BUILD_REPO":   a.build.Repo,
		"BUILD_BRANCH": a.build.Branch,
		"BUILD_ID":     "",
		"BUILD_URL":    a.build.URL,
		"TARGET":       e.currentLink(a.env),
		"BUILDS_DIR":   e.buildsDir(a.env),
		"PWD":          dir,

		"COMPUTE_ENV_TYPE": e.cfg.ComputeEnvType,
	}
	if a.first {
		vars["FIRST_DEPLOY"] = "True" // Teletraan's str(True); unset otherwise, as IS_DOCKER is
	}
	if app, file, ok := strings.Cut(a.build.Package, "/"); ok {
		vars["BUILD_NAME"], vars["BUILD_ID"] = app, file
	}
	// Teletraan's variables win over pulld's environment and config keys
	// of the same name, including those it leaves unset when false.
	reserved := func(k string) bool {
		_, ours := vars[k]
		return ours || k == "FIRST_DEPLOY" || k == "IS_DOCKER"
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, cfg := a.config[k]; cfg || reserved(k) {
			continue
		}
		env = append(env, kv)
	}
	keys := make([]string, 0, len(a.config))
	for k := range a.config {
		if !reserved(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+a.config[k])
	}
	ours := make([]string, 0, len(vars))
	for k := range vars {
		ours = append(ours, k)
	}
	slices.Sort(ours)
	for _, k := range ours {
		env = append(env, k+"="+vars[k])
	}
	return env
}

// follower reads a growing log file and logs it line by line.
type follower struct {
	path string
	log  *slog.Logger
	f    *os.File
	part []byte // incomplete last line
	ring []byte // the last OutputTail bytes
}

func newFollower(path string, log *slog.Logger) *follower {
	return &follower{path: path, log: log}
}

// start follows the file until the returned function is called, which reads
// what is left and returns when done.
func (f *follower) start() (stop func()) {
	f.f, _ = os.Open(f.path)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				f.read()
				if len(f.part) > 0 {
					f.line(f.part)
					f.part = nil
				}
				return
			case <-t.C:
				f.read()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		if f.f != nil {
			f.f.Close()
		}
	}
}

func (f *follower) read() {
	if f.f == nil {
		return
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := f.f.Read(buf)
		if n > 0 {
			f.add(buf[:n])
		}
		if err != nil || n == 0 {
			if err != nil && err != io.EOF {
				f.log.Warn("read script output failed", "err", err)
			}
			return
		}
	}
}

func (f *follower) add(p []byte) {
	f.ring = append(f.ring, p...)
	if len(f.ring) > 2*OutputTail {
		f.ring = append(f.ring[:0:0], f.ring[len(f.ring)-OutputTail:]...)
	}
	f.part = append(f.part, p...)
	for {
		i := bytes.IndexByte(f.part, '\n')
		if i < 0 {
			break
		}
		f.line(f.part[:i])
		f.part = f.part[i+1:]
	}
	if len(f.part) > 64<<10 { // a very long line is logged in pieces
		f.line(f.part)
		f.part = nil
	}
	f.part = append([]byte(nil), f.part...)
}

func (f *follower) line(b []byte) {
	f.log.Info("script output", "line", string(bytes.TrimRight(b, "\r")))
}

// tail returns the last OutputTail bytes read.
func (f *follower) tail() string {
	if len(f.ring) > OutputTail {
		return string(f.ring[len(f.ring)-OutputTail:])
	}
	return string(f.ring)
}
