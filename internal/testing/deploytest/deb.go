package deploytest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
)

// BuildDeb releases files as a Debian package, app's package number seq
// (see Name), into store, and returns its name; see PackDeb.
func BuildDeb(t testing.TB, store *blobstore.Store, app string, seq int, files map[string]string) manifest.PackageName {
	t.Helper()
	name := Name(t, app, seq, manifest.FormatDeb)
	Release(t, store, name, PackDeb(t, name, files))
	return name
}

// PackDeb returns files as the Debian package name, what release -format
// deb makes of them (pkgformat.WriteDeb, with Meta(name)). Keys are
// absolute paths where dpkg installs the file
// ("/tmp/TestX/001/opt/hello/version"), or paths under debian/ for the
// control file and maintainer scripts; a file is executable when it starts
// with "#!".
func PackDeb(t testing.TB, name manifest.PackageName, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		full := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(p, "/")))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	tree, err := pkgformat.WalkTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tree.WriteDeb(t.Context(), &buf, name, Meta(name), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Dpkg is a dpkg database of a test's own.
type Dpkg struct {
	t     testing.TB
	Admin string // the admin directory
}

// NewDpkg gives the test a new, empty dpkg database: DPKG_ADMINDIR, which
// dpkg, dpkg-query, apt's dpkg runs and the maintainer scripts follow,
// names it for the rest of the test (and for the programs it starts), so
// that packages a test installs never touch the host's own. Files still go
// where the packages say: tests install under their temporary directories.
// It fails the test when dpkg is not installed.
func NewDpkg(t testing.TB) *Dpkg {
	t.Helper()
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Fatalf("dpkg is needed for .deb tests: %v", err)
	}
	admin := filepath.Join(t.TempDir(), "dpkg")
	if err := os.MkdirAll(admin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(admin, "status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DPKG_ADMINDIR", admin)
	return &Dpkg{t: t, Admin: admin}
}

// Status returns dpkg's status and version of the Debian package pkg
// ("install ok installed", "20261122.101000+abc000000001"), or "" and ""
// when dpkg does not know it.
func (d *Dpkg) Status(pkg string) (status, version string) {
	d.t.Helper()
	out, err := exec.Command("dpkg-query", "--admindir="+d.Admin, "-W", "-f=${Status}\t${Version}", pkg).Output()
	if err != nil {
		return "", ""
	}
	status, version, _ = strings.Cut(string(out), "\t")
	return status, version
}

// AptRepo serves debs to apt from a local repository of the test's own:
// it writes them with a Packages index, points APT_CONFIG (which apt-get
// reads, also when pulld runs it) at a configuration whose only source is
// that repository and whose package status is d's, and runs apt-get
// update. Nothing of the host's apt configuration, lists or cache is used.
func (d *Dpkg) AptRepo(debs ...[]byte) {
	d.t.Helper()
	dir := d.t.TempDir()
	repo := filepath.Join(dir, "repo")
	for _, sub := range []string{"repo", "lists/partial", "cache/archives/partial", "parts", "prefs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			d.t.Fatal(err)
		}
	}
	var index bytes.Buffer
	for i, deb := range debs {
		file := fmt.Sprintf("p%d.deb", i)
		path := filepath.Join(repo, file)
		if err := os.WriteFile(path, deb, 0o644); err != nil {
			d.t.Fatal(err)
		}
		control, err := exec.Command("dpkg-deb", "--field", path).Output()
		if err != nil {
			d.t.Fatalf("dpkg-deb --field %s: %v", path, err)
		}
		fmt.Fprintf(&index, "%sFilename: ./%s\nSize: %d\nSHA256: %s\n\n", control, file, len(deb), SHA256(deb))
	}
	if err := os.WriteFile(filepath.Join(repo, "Packages"), index.Bytes(), 0o644); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sources.list"), []byte("deb [trusted=yes] file:"+repo+" ./\n"), 0o644); err != nil {
		d.t.Fatal(err)
	}
	conf := fmt.Sprintf(`Dir::Etc::SourceList "%[1]s/sources.list";
Dir::Etc::SourceParts "%[1]s/parts";
Dir::Etc::Preferences "%[1]s/prefs/none";
Dir::Etc::PreferencesParts "%[1]s/prefs";
Dir::State::Lists "%[1]s/lists";
Dir::State::status "%[2]s/status";
Dir::Cache "%[1]s/cache";
APT::Sandbox::User "root";
DPkg::Options:: "--admindir=%[2]s";
`, dir, d.Admin)
	confPath := filepath.Join(dir, "apt.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		d.t.Fatal(err)
	}
	d.t.Setenv("APT_CONFIG", confPath)
	if out, err := exec.Command("apt-get", "update").CombinedOutput(); err != nil {
		d.t.Fatalf("apt-get update of the test's repository: %v\n%s", err, out)
	}
}
