package deploytest

import (
	"bytes"
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
// (see Name), into store, and returns its name. Keys are absolute paths
// where dpkg installs the file ("/tmp/TestX/001/opt/hello/version"), or
// paths under debian/ for the control file and maintainer scripts; a file
// is executable when it starts with "#!". The package is what release
// -format deb makes (pkgformat.WriteDeb), with Meta(name).
func BuildDeb(t testing.TB, store *blobstore.Store, app string, seq int, files map[string]string) manifest.PackageName {
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
	name := Name(t, app, seq, manifest.FormatDeb)
	var buf bytes.Buffer
	if err := tree.WriteDeb(t.Context(), &buf, name, Meta(name), nil); err != nil {
		t.Fatal(err)
	}
	Release(t, store, name, buf.Bytes())
	return name
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
