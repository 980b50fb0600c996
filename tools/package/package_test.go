package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/release"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
)

const testCommit = "0123456789abcdef0123456789abcdef01234567"

// dpkgRoot is an empty system for dpkg --root: the packages a test
// installs go there, and their maintainer scripts act on it (DPKG_ROOT).
type dpkgRoot struct {
	t    *testing.T
	Root string
}

func newRoot(t *testing.T) *dpkgRoot {
	t.Helper()
	r := &dpkgRoot{t: t, Root: t.TempDir()}
	admin := filepath.Join(r.Root, "var/lib/dpkg")
	if err := os.MkdirAll(admin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(admin, "status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

// dpkg runs the real dpkg on the root, maintainer scripts outside a
// chroot (they honour DPKG_ROOT).
func (r *dpkgRoot) dpkg(args ...string) string {
	r.t.Helper()
	out, err := exec.Command("dpkg", append([]string{"--root=" + r.Root, "--force-script-chrootless"}, args...)...).CombinedOutput()
	if err != nil {
		r.t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// query runs dpkg-query -W -f=format pkg on the root.
func (r *dpkgRoot) query(pkg, format string) string {
	r.t.Helper()
	out, _ := exec.Command("dpkg-query", "--admindir="+filepath.Join(r.Root, "var/lib/dpkg"), "-W", "-f="+format, pkg).Output()
	return string(out)
}

func buildFor(t *testing.T, out string, built time.Time, programs ...string) []Built {
	t.Helper()
	bs, err := Build(t.Context(), Config{Module: "../..", Out: out, Commit: testCommit, Built: built, Programs: programs})
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// TestPackageInstalls builds pushpull-pulld, installs it with the real
// dpkg into a root of the test's own, and checks what an operator gets:
// the unit (run from /usr/bin, enabled), /etc/default/pulld as a conffile,
// /var/lib/pulld with mode 0711, a binary no one but root may write, pulld
// -version saying the package's version; then removes it. (make package
// builds pushpull-pushui and pushpull-release the same way; building them
// here would double the test's time.)
func TestPackageInstalls(t *testing.T) {
	built := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	bs := buildFor(t, filepath.Join(t.TempDir(), "dist"), built, "pulld")
	for _, dir := range []string{"var", "var/lib"} { // only pulld's root is 0711
		if fi, err := os.Stat(filepath.Join(bs[0].Tree, dir)); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("the package's /%s: %v, %v; want 0755", dir, fi.Mode(), err)
		}
	}
	r := newRoot(t)
	for _, b := range bs {
		r.dpkg("-i", b.Deb)
		if got := r.query(b.Package, "${Status}"); got != "install ok installed" {
			t.Errorf("%s: %q", b.Package, got)
		}
	}
	version := pkgformat.DebVersion(bs[0].Name)
	if got := r.query("pushpull-pulld", "${Version}"); got != version {
		t.Errorf("pushpull-pulld version %q, want %s", got, version)
	}
	unit, err := os.ReadFile(filepath.Join(r.Root, "lib/systemd/system/pulld.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/bin/pulld $PULLD_ARGS", "EnvironmentFile=-/etc/default/pulld", "Restart=always", "StateDirectoryMode=0711", "WantedBy=multi-user.target"} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("pulld.service lacks %q", want)
		}
	}
	if bytes.Contains(unit, []byte("/usr/local/bin")) {
		t.Error("pulld.service still names /usr/local/bin")
	}
	link, err := os.Readlink(filepath.Join(r.Root, "etc/systemd/system/multi-user.target.wants/pulld.service"))
	if err != nil || !strings.HasSuffix(link, "/pulld.service") {
		t.Errorf("pulld.service is not enabled: %q, %v", link, err)
	}
	if got := r.query("pushpull-pulld", "${Conffiles}"); !strings.Contains(got, "/etc/default/pulld") {
		t.Errorf("conffiles %q, want /etc/default/pulld", got)
	}
	for path, want := range map[string]os.FileMode{
		"var/lib/pulld":     0o711 | os.ModeDir,
		"usr/bin/pulld":     0o755,
		"etc/default/pulld": 0o644,
	} {
		fi, err := os.Stat(filepath.Join(r.Root, path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
	out, err := exec.Command(filepath.Join(r.Root, "usr/bin/pulld"), "-version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "pulld "+version {
		t.Errorf("pulld -version = %q, %v; want %s", out, err, version)
	}

	r.dpkg("-r", "pushpull-pulld")
	for _, gone := range []string{"lib/systemd/system/pulld.service", "usr/bin/pulld", "etc/systemd/system/multi-user.target.wants/pulld.service"} {
		if _, err := os.Lstat(filepath.Join(r.Root, gone)); err == nil {
			t.Errorf("%s remains after dpkg -r", gone)
		}
	}
}

// TestSelfUpdate: a host runs pulld from pushpull-pulld; the next build of
// that package is released as app pulld and listed in the host's manifest.
// pulld installs it with dpkg (whose postinst, seeing DEPLOY_ID, does not
// restart it), records the deploy and exits 0, which is systemd's cue to
// start the new binary (Restart=always); started again, it is the new
// version and has nothing to do.
func TestSelfUpdate(t *testing.T) {
	old := buildFor(t, filepath.Join(t.TempDir(), "old"), time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), "pulld")[0]
	newAt := time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC)
	next := buildFor(t, filepath.Join(t.TempDir(), "new"), newAt, "pulld")[0]
	r := newRoot(t)
	r.dpkg("-i", old.Deb)

	bucket := "file://" + filepath.Join(t.TempDir(), "bucket")
	res, err := release.Run(t.Context(), release.Config{
		Bucket: bucket, Create: true, App: "pulld", Dir: next.Tree, Format: manifest.FormatDeb, Commit: testCommit,
		Now: func() time.Time { return newAt }, Out: &bytes.Buffer{},
	})
	if err != nil {
		t.Fatal(err)
	}
	store, err := blobstore.Open(t.Context(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.UpdateManifestAt(t.Context(), manifest.Server("web-1"), "", false, blobstore.Replace(&manifest.Manifest{Packages: []manifest.Entry{{Package: res.Name}}})); err != nil {
		t.Fatal(err)
	}

	// pulld's dpkg runs act on the test's root: dpkg reads ~/.dpkg.cfg.
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".dpkg.cfg"), []byte("root "+r.Root+"\nforce-script-chrootless\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pulld := filepath.Join(r.Root, "usr/bin/pulld")
	args := []string{"-bucket", bucket, "-server", "web-1", "-root", filepath.Join(r.Root, "var/lib/pulld"), "-listen", "", "-host-info", "", "-poll", "10s"}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pulld, args...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pulld did not exit 0 after updating itself: %v\n%s", err, out)
	}
	want := pkgformat.DebVersion(res.Name)
	if got := r.query("pushpull-pulld", "${Version} ${Status}"); got != want+" install ok installed" {
		t.Errorf("dpkg: %q, want %s installed", got, want)
	}
	if v, err := exec.Command(pulld, "-version").Output(); err != nil || strings.TrimSpace(string(v)) != "pulld "+want {
		t.Errorf("the new pulld -version = %q, %v; want %s", v, err, want)
	}
	st, err := store.ReadStatus(t.Context(), "web-1")
	if err != nil {
		t.Fatal(err)
	}
	if es, _ := st.Lookup("pulld"); es.State != manifest.StateServing || es.Serving != res.Name.String() || st.PulldVersion != pkgformat.DebVersion(old.Name) {
		t.Errorf("status written before the exit: %s %s by %s", es.State, es.Serving, st.PulldVersion)
	}
	if !strings.Contains(string(out), "pulld's own package was updated; exiting") {
		t.Errorf("pulld did not exit for its own update:\n%s", out)
	}

	// systemd starts the new binary: it has nothing to do.
	cmd = exec.CommandContext(ctx, pulld, append(args, "-once")...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the new pulld -once: %v\n%s", err, out)
	}
	if st, err = store.ReadStatus(t.Context(), "web-1"); err != nil || st.PulldVersion != want {
		t.Errorf("status after the restart: %+v, %v; want pulld_version %s", st, err, want)
	}
}
