package pkginstall_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
	"github.com/pushpull/pushpull/pkginstall"
)

// debApp is a .deb of version whose files install under inst, and whose
// postinst appends "{version} {DEPLOY_STEP} {$1} {GREETING}" to
// inst/postinst.log (GREETING is a config value: dpkg passes the step's
// environment on); with fail it exits 1 after that.
func debApp(inst, version string, fail bool) map[string]string {
	exit := "0"
	if fail {
		exit = "1"
	}
	return map[string]string{
		inst + "/opt/hello/version": version + "\n",
		"debian/control":            "Package: pushpull-test-hello\nDescription: a test of pulld's .deb support\n",
		"debian/postinst": "#!/bin/sh\necho \"" + version + " $DEPLOY_STEP $1 $GREETING\" >> " + inst + "/postinst.log\n" +
			"[ " + exit + " = 0 ] || echo 'postinst fails on purpose' >&2\nexit " + exit + "\n",
		"debian/prerm": "#!/bin/sh\necho \"" + version + " prerm $1\" >> " + inst + "/postinst.log\n",
	}
}

const debName = "pushpull-test-hello"

// debFixture is a fixture with a dpkg database of its own and a directory
// the test's packages install into.
func debFixture(t *testing.T) (*fixture, *deploytest.Dpkg, string) {
	t.Helper()
	d := deploytest.NewDpkg(t)
	return newFixture(t), d, t.TempDir()
}

// installed reads inst/opt/hello/version, "" when missing.
func installedVersion(inst string) string {
	b, _ := os.ReadFile(filepath.Join(inst, "opt/hello/version"))
	return strings.TrimSpace(string(b))
}

// TestDebCycle installs .deb builds with the real dpkg: a first install,
// an upgrade, a rollback to the kept previous .deb without a download, a
// config change that reinstalls, and a removal with dpkg -r. The builds
// kept are the .deb files themselves.
func TestDebCycle(t *testing.T) {
	f, dpkg, inst := debFixture(t)
	v1 := deploytest.BuildDeb(t, f.store, "hello", 1, debApp(inst, "v1", false))
	v2 := deploytest.BuildDeb(t, f.store, "hello", 2, debApp(inst, "v2", false))
	entry := func(p manifest.PackageName, greeting string) manifest.Entry {
		return manifest.Entry{Package: p, Config: map[string]string{"GREETING": greeting}}
	}
	wantInstalled := func(what string, p manifest.PackageName) {
		t.Helper()
		if st, v := dpkg.Status(debName); st != "install ok installed" || v != pkgformat.DebVersion(p) {
			t.Errorf("%s: dpkg says %q %q, want %s installed", what, st, v, pkgformat.DebVersion(p))
		}
	}

	r := f.mustApply(entry(v1, "hi"))
	if r.Action != manifest.ActionDeploy || r.Downloaded == 0 {
		t.Errorf("v1: action %s, downloaded %d", r.Action, r.Downloaded)
	}
	wantInstalled("v1", v1)
	if got := installedVersion(inst); got != "v1" {
		t.Errorf("v1 installs version %q", got)
	}
	if _, err := os.Stat(filepath.Join(f.root, "envs/hello/builds", v1.ID(), pkgformat.DebFile)); err != nil {
		t.Errorf("the .deb is not kept: %v", err)
	}

	f.mustApply(entry(v2, "hi"))
	wantInstalled("v2", v2)
	if got := installedVersion(inst); got != "v2" {
		t.Errorf("v2 installs version %q", got)
	}

	r = f.mustApply(entry(v1, "hi"))
	if r.Action != manifest.ActionRollback || r.Downloaded != 0 {
		t.Errorf("back to v1: action %s, downloaded %d bytes; want a rollback without download", r.Action, r.Downloaded)
	}
	wantInstalled("rolled back to v1", v1)

	r = f.mustApply(entry(v1, "hello again"))
	if r.Action != manifest.ActionRestart {
		t.Errorf("a config change: action %s, want restart", r.Action)
	}
	log, _ := os.ReadFile(filepath.Join(inst, "postinst.log"))
	want := []string{
		"v1 RESTARTING configure hi",
		"v1 prerm upgrade", "v2 RESTARTING configure hi",
		"v2 prerm upgrade", "v1 RESTARTING configure hi",
		"v1 prerm upgrade", "v1 RESTARTING configure hello again",
	}
	if got := strings.Split(strings.TrimSpace(string(log)), "\n"); !slices.Equal(got, want) {
		t.Errorf("maintainer scripts ran\n %q\nwant %q", got, want)
	}

	r = f.eng.Stop(t.Context(), "hello")
	if r.Err != nil || r.State != manifest.StateStopped {
		t.Fatalf("stop: %+v", r)
	}
	if st, _ := dpkg.Status(debName); strings.HasSuffix(st, " installed") {
		t.Errorf("after dpkg -r: status %q", st)
	}
	if got := installedVersion(inst); got != "" {
		t.Errorf("after removal the files remain: version %q", got)
	}
}

// TestDebFailurePolicies installs a .deb whose postinst fails over a
// serving one, under each failure policy: rollback reinstalls the kept
// previous .deb, continue leaves dpkg's half-configured package, stop
// removes it. dpkg -i is tried Tries times, each try with its own log.
func TestDebFailurePolicies(t *testing.T) {
	for _, tc := range []struct {
		policy  string
		state   manifest.State
		dpkg    string // status afterwards, "" for not installed
		version string // installed version file
	}{
		{"rollback", manifest.StateRolledBack, "install ok installed", "v1"},
		{"continue", manifest.StateFailed, "install ok half-configured", "v2"},
		{"stop", manifest.StateStopped, "", ""},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			f, dpkg, inst := debFixture(t)
			v1 := deploytest.BuildDeb(t, f.store, "hello", 1, debApp(inst, "v1", false))
			v2 := deploytest.BuildDeb(t, f.store, "hello", 2, debApp(inst, "v2", true))
			f.mustApply(manifest.Entry{Package: v1})
			r := f.apply(manifest.Entry{Package: v2, OnFailure: manifest.Policy(tc.policy)})
			if !errors.Is(r.Err, pkginstall.ErrScript) || r.State != tc.state || r.Step != manifest.StepRestarting {
				t.Fatalf("result: state %s step %s err %v", r.State, r.Step, r.Err)
			}
			if !strings.Contains(r.Output, "postinst fails on purpose") {
				t.Errorf("output %q lacks the postinst's", r.Output)
			}
			st, v := dpkg.Status(debName)
			if tc.dpkg == "" && strings.HasSuffix(st, " installed") || tc.dpkg != "" && st != tc.dpkg {
				t.Errorf("dpkg status %q (version %s), want %q", st, v, tc.dpkg)
			}
			if got := installedVersion(inst); got != tc.version {
				t.Errorf("installed version %q, want %q", got, tc.version)
			}
			logs, _ := filepath.Glob(filepath.Join(f.root, "envs/hello/logs", r.DeployID+".RESTARTING.*.log"))
			if len(logs) != 3 {
				t.Errorf("RESTARTING logs %q, want one per try", logs)
			}
		})
	}
}

// TestDebRefused checks that a package named .deb that is not one is
// refused before anything runs, and the serving build is untouched.
func TestDebRefused(t *testing.T) {
	f, dpkg, inst := debFixture(t)
	v1 := deploytest.BuildDeb(t, f.store, "hello", 1, debApp(inst, "v1", false))
	f.mustApply(manifest.Entry{Package: v1})
	bad := deploytest.Name(t, "hello", 2, manifest.FormatDeb)
	deploytest.Release(t, f.store, bad, deploytest.Pack(t, manifest.FormatGzip, deploytest.Entries(map[string]string{"x": "y"})))
	r := f.apply(manifest.Entry{Package: bad})
	if !errors.Is(r.Err, pkgformat.ErrCorrupt) || r.State != manifest.StateFailed || r.Serving != v1 {
		t.Fatalf("result: %+v", r)
	}
	if !strings.Contains(r.Err.Error(), "does not start as a Debian package") {
		t.Errorf("err %q", r.Err)
	}
	if st, v := dpkg.Status(debName); st != "install ok installed" || v != pkgformat.DebVersion(v1) {
		t.Errorf("dpkg: %q %q", st, v)
	}
}

// TestDebAptFix installs a .deb whose Depends no installed package meets:
// dpkg -i alone fails; with AptFix, apt-get -f install brings the
// dependency in from the apt sources (here a repository of the test's
// own) and the deploy succeeds.
func TestDebAptFix(t *testing.T) {
	for _, fix := range []bool{false, true} {
		name := "without AptFix"
		if fix {
			name = "with AptFix"
		}
		t.Run(name, func(t *testing.T) {
			dpkg := deploytest.NewDpkg(t)
			f := newFixture(t, func(c *pkginstall.Config) { c.AptFix = fix })
			inst := t.TempDir()
			depName := deploytest.Name(t, "dep", 1, manifest.FormatDeb)
			dpkg.AptRepo(deploytest.PackDeb(t, depName, map[string]string{
				inst + "/opt/dep/here": "yes\n",
				"debian/control":       "Package: pushpull-test-dep\n",
			}))
			files := debApp(inst, "v1", false)
			files["debian/control"] += "Depends: pushpull-test-dep\n"
			v1 := deploytest.BuildDeb(t, f.store, "hello", 1, files)
			r := f.apply(manifest.Entry{Package: v1})
			st, _ := dpkg.Status(debName)
			depSt, _ := dpkg.Status("pushpull-test-dep")
			if !fix {
				if r.Err == nil || !strings.Contains(r.Output, "pushpull-test-dep") || st == "install ok installed" {
					t.Errorf("without AptFix: err %v, status %q, output %q; want dpkg's unmet dependency", r.Err, st, r.Output)
				}
				return
			}
			if r.Err != nil || r.State != manifest.StateServing {
				t.Fatalf("with AptFix: %s %v\n%s", r.State, r.Err, r.Output)
			}
			if st != "install ok installed" || depSt != "install ok installed" {
				t.Errorf("dpkg: hello %q, dep %q", st, depSt)
			}
			if _, err := os.Stat(filepath.Join(inst, "opt/dep/here")); err != nil {
				t.Errorf("the dependency's files: %v", err)
			}
		})
	}
}

// TestDebOneEnvPerPackage: a second env whose .deb is the same Debian
// package as a serving env's is refused before anything is installed, so
// that removing one env can never take away the other's files.
func TestDebOneEnvPerPackage(t *testing.T) {
	f, dpkg, inst := debFixture(t)
	v1 := deploytest.BuildDeb(t, f.store, "hello", 1, debApp(inst, "v1", false))
	v2 := deploytest.BuildDeb(t, f.store, "hello", 2, debApp(inst, "v2", false))
	f.mustApply(manifest.Entry{Package: v1, Env: "hello-a"})
	r := f.apply(manifest.Entry{Package: v2, Env: "hello-b"})
	if r.Err == nil || r.State != manifest.StateFailed || !strings.Contains(r.Err.Error(), "is env hello-a's on this host") {
		t.Fatalf("second env: %s %v", r.State, r.Err)
	}
	if st, v := dpkg.Status(debName); st != "install ok installed" || v != pkgformat.DebVersion(v1) {
		t.Errorf("dpkg: %q %q, want hello-a's v1 untouched", st, v)
	}
}

// TestTarWithPackageDebFile: a tar package that happens to hold a file
// named package.deb is a tar package: its own scripts run, not dpkg.
func TestTarWithPackageDebFile(t *testing.T) {
	f, dpkg, _ := debFixture(t)
	v1 := f.release("hello", 1, app("v1", pkgformat.DebFile, "not for dpkg"))
	f.mustApply(f.entry(v1))
	if got := f.steps(); !slices.Contains(got, expect("DEPLOY", v1, v1, "RESTARTING")[0]) {
		t.Errorf("steps %q: the package's RESTARTING did not run", got)
	}
	if st, _ := dpkg.Status(debName); st != "" {
		t.Errorf("dpkg ran: %q", st)
	}
	if r := f.eng.Stop(t.Context(), "hello"); r.Err != nil {
		t.Errorf("stop: %v", r.Err)
	}
}

// TestDebWaitsForLock: while another dpkg holds its lock (here the test,
// as unattended-upgrades would), dpkg -i is tried again until the lock is
// free, and the deploy succeeds rather than failing the package.
func TestDebWaitsForLock(t *testing.T) {
	f, dpkg, inst := debFixture(t)
	v1 := deploytest.BuildDeb(t, f.store, "hello", 1, debApp(inst, "v1", false))
	lock, err := os.OpenFile(filepath.Join(dpkg.Admin, "lock-frontend"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	fl := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0}
	if err := syscall.FcntlFlock(lock.Fd(), syscall.F_SETLK, &fl); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(time.Second)
		fl.Type = syscall.F_UNLCK
		_ = syscall.FcntlFlock(lock.Fd(), syscall.F_SETLK, &fl)
	}()
	r := f.mustApply(manifest.Entry{Package: v1})
	if st, _ := dpkg.Status(debName); st != "install ok installed" {
		t.Errorf("dpkg: %q", st)
	}
	logs, _ := filepath.Glob(filepath.Join(f.root, "envs/hello/logs", r.DeployID+".RESTARTING.*.log"))
	if len(logs) != 1 {
		t.Fatalf("RESTARTING logs %q, want one try that waited", logs)
	}
	if b, _ := os.ReadFile(logs[0]); !strings.Contains(string(b), "trying again in 5 s") {
		t.Errorf("the try did not wait for the lock:\n%s", b)
	}
}
