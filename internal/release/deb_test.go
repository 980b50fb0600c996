package release

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
)

// TestReleaseDeb releases a tree as a signed .deb and reads it back: the
// name ends in .deb, the metadata is a package's (format deb, sha256,
// unpacked size), the signature verifies, and dpkg-deb reads the Version
// release gave it and the maintainer script. A tree a .deb cannot be made
// of is refused before anything is stored.
func TestReleaseDeb(t *testing.T) {
	pub, keyFile := makeKey(t)
	bucket := "file://" + t.TempDir()
	dir := makeTree(t, map[string]file{
		"opt/hello/bin/hello": {data: "#!/bin/sh\necho hello\n", mode: 0o755},
		"etc/hello.conf":      {data: "port=1\n"},
		"debian/control":      {data: "Package: hello-web\nDepends: libc6\n"},
		"debian/postinst":     {data: "#!/bin/sh\nexit 0\n", mode: 0o755},
	})
	cfg := testConfig(bucket, "hello", dir)
	cfg.Format, cfg.SignKey, cfg.Note = manifest.FormatDeb, keyFile, "first .deb"
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Name.Format != manifest.FormatDeb || !strings.HasSuffix(res.Name.String(), ".deb") {
		t.Errorf("name %s", res.Name)
	}
	store := openStore(t, bucket)
	info, err := store.StatPackage(t.Context(), res.Name)
	if err != nil {
		t.Fatal(err)
	}
	if m := info.Meta; m.Format != manifest.FormatDeb || m.SHA256 == "" || m.Size != int64(len("#!/bin/sh\necho hello\n")+len("port=1\n")+len("Package: hello-web\nDepends: libc6\n")+len("#!/bin/sh\nexit 0\n")) || m.Note != "first .deb" {
		t.Errorf("metadata %+v", m)
	}
	verifySignature(t, store, res.Name, res.Meta.SHA256, pub)
	body, _, err := store.OpenPackage(t.Context(), res.Name)
	if err != nil {
		t.Fatal(err)
	}
	deb := filepath.Join(t.TempDir(), "p.deb")
	f, _ := os.Create(deb)
	if _, err := f.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	f.Close()
	body.Close()
	out, err := exec.Command("dpkg-deb", "--field", deb, "Package", "Version", "Depends").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Package: hello-web", "Version: " + pkgformat.DebVersion(res.Name), "Depends: libc6"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("control lacks %q:\n%s", want, out)
		}
	}

	for name, tree := range map[string]map[string]file{
		"teletraan scripts": {"teletraan/RESTARTING": script},
		"Version set":       {"debian/control": {data: "Version: 1\n"}},
	} {
		t.Run(name, func(t *testing.T) {
			bucket := "file://" + t.TempDir()
			cfg := testConfig(bucket, "hello", makeTree(t, tree))
			cfg.Format = manifest.FormatDeb
			if _, err := Run(t.Context(), cfg); !errors.Is(err, ErrInvalidTree) {
				t.Fatalf("Run = %v, want ErrInvalidTree", err)
			}
			assertEmpty(t, bucket)
		})
	}
}

// TestSameBuildOtherFormat: a .deb of a build (app, second, commit) that
// is in the bucket as a tar package is refused, since hosts keep builds by
// that ID.
func TestSameBuildOtherFormat(t *testing.T) {
	bucket := "file://" + t.TempDir()
	if _, err := Run(t.Context(), testConfig(bucket, "hello", appTree(t))); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(bucket, "hello", makeTree(t, map[string]file{"opt/x": {data: "x"}}))
	cfg.Format = manifest.FormatDeb
	if _, err := Run(t.Context(), cfg); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "the same build as") {
		t.Fatalf("Run = %v, want ErrExists naming the tar.zst", err)
	}
}
