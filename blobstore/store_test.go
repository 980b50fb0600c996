package blobstore_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

func TestKeysRefuseBadNames(t *testing.T) {
	s := openURL(t, "mem://")
	for _, name := range []string{"../x", "../packages/x", "a/b", ".", "..", "", strings.Repeat("a", 300), "Web"} {
		t.Run(name, func(t *testing.T) {
			for op, err := range map[string]error{
				"ManifestKey": second(blobstore.ManifestKey(manifest.Server(name))),
				"StatusKey":   second(blobstore.StatusKey(name)),
				"ReadManifest": func() error {
					_, _, err := s.ReadManifest(t.Context(), manifest.Server(name))
					return err
				}(),
				"WriteManifest": second(blobstore.WriteManifest(s, t.Context(), manifest.Server(name), &manifest.Manifest{}, "")),
				"ListPackages":  second(s.ListPackages(t.Context(), name)),
				"AppendAudit":   s.AppendAudit(t.Context(), &manifest.AuditRecord{Server: name}),
			} {
				if !errors.Is(err, manifest.ErrInvalidName) {
					t.Errorf("%s(%q) = %v, want ErrInvalidName", op, name, err)
				}
			}
		})
	}
	// Nothing reached the bucket.
	if it, err := s.Bucket().List(nil).Next(t.Context()); err == nil {
		t.Fatalf("bucket not empty: %s", it.Key)
	}
}

func second[T any](_ T, err error) error { return err }

func TestPrefix(t *testing.T) {
	dir := t.TempDir()
	a := openURL(t, "file://"+dir+"?prefix=team-a/")
	b := openURL(t, "file://"+dir+"?prefix=team-b/")
	p, _ := manifest.ParsePackageName("hello/hello-20261122T101500Z-0123456789ab.tar.zst")
	m := &manifest.Manifest{Packages: []manifest.Entry{{Package: p}}}
	if _, err := blobstore.WriteManifest(a, t.Context(), manifest.Server("web-1"), m, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "team-a", "servers", "web-1.json")); err != nil {
		t.Fatalf("manifest not under the prefix: %v", err)
	}
	if got, v, err := b.ReadManifest(t.Context(), manifest.Server("web-1")); err != nil || v != "" || len(got.Packages) != 0 {
		t.Fatalf("team-b sees team-a's manifest: %+v %v", got, err)
	}
	if a.LocalDir() != dir {
		t.Fatalf("LocalDir = %q, want %q", a.LocalDir(), dir)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, u := range []string{"nope://x", "file://host/dir", "::"} {
		if _, err := blobstore.Open(t.Context(), u); err == nil {
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}

// TestFileCrossProcess runs several processes that each increment a counter
// in one manifest through UpdateManifest on a shared file:// bucket: the
// flock makes the version check hold between processes, so no increment is
// lost.
func TestFileCrossProcess(t *testing.T) {
	dir := t.TempDir()
	const procs, each = 4, 15
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^$")
		cmds[i].Env = append(os.Environ(), "BLOBSTORE_TEST_CHILD_DIR="+dir, "BLOBSTORE_TEST_CHILD_N="+strconv.Itoa(each))
		cmds[i].Stderr = os.Stderr
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	s := openURL(t, "file://"+dir)
	m, _, err := s.ReadManifest(t.Context(), manifest.Server("counter"))
	if err != nil {
		t.Fatal(err)
	}
	e, _ := m.Lookup("hello")
	if got := e.Config["N"]; got != strconv.Itoa(procs*each) || m.Revision != procs*each {
		t.Fatalf("counter %s, revision %d after %d increments: updates were lost", got, m.Revision, procs*each)
	}
}

// childIncrement is the child side of TestFileCrossProcess.
func childIncrement(dir string, n int) error {
	s, err := blobstore.Open(contextBackground(), "file://"+dir)
	if err != nil {
		return err
	}
	defer s.Close()
	p, _ := manifest.ParsePackageName("hello/hello-20261122T101500Z-0123456789ab.tar.zst")
	for range n {
		_, err := s.UpdateManifest(contextBackground(), manifest.Server("counter"), func(m *manifest.Manifest, _ bool) error {
			if len(m.Packages) == 0 {
				m.Packages = []manifest.Entry{{Package: p, Config: map[string]string{"N": "0"}}}
			}
			c, _ := strconv.Atoi(m.Packages[0].Config["N"])
			m.Packages[0].Config["N"] = strconv.Itoa(c + 1)
			return nil
		})
		if err != nil {
			return fmt.Errorf("increment: %w", err)
		}
	}
	return nil
}
