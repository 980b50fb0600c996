package pkginstall_test

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/internal/testing/unprivileged"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkginstall"
)

// TestReadOnlyDirectories checks that packages whose directories are
// read-only, even unsearchable, deploy, restart and are deleted by a pulld
// that is not root, in the order DESIGN §5 gives STAGING: unpack, render
// templates, set modes, rename into builds/. It runs as a user whom
// permission bits bind (nobody when the tests run as root), so that each
// step fails there if it meets a read-only directory it cannot handle.
//
// For each package it checks that the deploy renders every template, with
// the template's mode, into directories that end up with the archive's
// modes and modification times: a time set before rendering would have
// been changed by it, so the times prove the order even to root. Then a
// RESTART re-renders into the read-only build and leaves its modes as they
// were, and two more deploys with Keep 1 delete the first build.
func TestReadOnlyDirectories(t *testing.T) {
	if unprivileged.Run(t) {
		return
	}
	for _, tc := range []struct {
		name string
		// extra are files added to app(version), as path, contents pairs.
		extra []string
		// modes are the modes of tar entries (directories end in /).
		modes map[string]int64
		// rendered maps each rendered file to the mode of its template.
		rendered map[string]fs.FileMode
	}{
		{
			name:     "read-only teletraan",
			modes:    map[string]int64{"teletraan/": 0o555, "teletraan/app.conf.tmpl": 0o640},
			rendered: map[string]fs.FileMode{"teletraan/app.conf": 0o640},
		},
		{
			name:  "read-only template subdirectory",
			extra: []string{"teletraan/conf/db.yaml.tmpl", "level: {$TELETRAAN_LOG_LEVEL:info}\n"},
			modes: map[string]int64{"teletraan/": 0o555, "teletraan/conf/": 0o500, "teletraan/conf/db.yaml.tmpl": 0o600},
			rendered: map[string]fs.FileMode{
				"teletraan/app.conf":     0o644,
				"teletraan/conf/db.yaml": 0o600,
			},
		},
		{
			name:     "unsearchable directory above a read-only one",
			extra:    []string{"data/sub/file", "x"},
			modes:    map[string]int64{"data/": 0o600, "data/sub/": 0o555},
			rendered: map[string]fs.FileMode{"teletraan/app.conf": 0o644},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *pkginstall.Config) { c.Keep = 1 })
			unprivileged.RemovableTree(t, f.root)
			release := func(seq int) manifest.PackageName {
				t.Helper()
				entries := deploytest.Entries(app(fmt.Sprintf("v%d", seq), tc.extra...))
				set := 0
				for i := range entries {
					if m, ok := tc.modes[entries[i].Header.Name]; ok {
						entries[i].Header.Mode = m
						set++
					}
				}
				if set != len(tc.modes) {
					t.Fatalf("modes %v name entries the package does not have", tc.modes)
				}
				name := deploytest.Name(t, "hello", seq, manifest.FormatZstd)
				deploytest.Release(t, f.store, name, deploytest.Pack(t, manifest.FormatZstd, entries))
				return name
			}
			build := func(p manifest.PackageName) string {
				return filepath.Join(f.root, "envs", "hello", "builds", p.ID())
			}
			// checkRendered checks the rendered files of p's build and
			// that they hold level.
			checkRendered := func(p manifest.PackageName, level string) {
				t.Helper()
				for name, mode := range tc.rendered {
					file := filepath.Join(build(p), name)
					b, err := os.ReadFile(file)
					if err != nil || !strings.Contains(string(b), "level="+level) && !strings.Contains(string(b), "level: "+level) {
						t.Errorf("%s = %q %v, want level %s", name, b, err, level)
					}
					if got, want := lmode(file), mode.String(); got != want {
						t.Errorf("%s: %s, want the template's %s", name, got, want)
					}
				}
			}
			// checkModes checks the modes (and, with times, the
			// modification times) of p's directories that tc.modes
			// names, where a user whom permission bits bind can look.
			checkModes := func(p manifest.PackageName, times bool) {
				t.Helper()
				for name, mode := range tc.modes {
					if !strings.HasSuffix(name, "/") || !searchable(tc.modes, name) {
						continue
					}
					fi, err := os.Lstat(filepath.Join(build(p), name))
					if err != nil {
						t.Errorf("%s: %v", name, err)
						continue
					}
					if fi.Mode() != fs.ModeDir|fs.FileMode(mode) {
						t.Errorf("%s: mode %v, want the archive's %v", name, fi.Mode(), fs.ModeDir|fs.FileMode(mode))
					}
					if times && !fi.ModTime().Equal(deploytest.MTime) {
						t.Errorf("%s: modification time %v, want the archive's %v (set before rendering?)", name, fi.ModTime(), deploytest.MTime)
					}
				}
			}

			v1 := release(1)
			f.mustApply(f.entry(v1, "LOG_LEVEL", "debug"))
			checkRendered(v1, "debug")
			checkModes(v1, true)

			if r := f.mustApply(f.entry(v1, "LOG_LEVEL", "warn")); r.Action != manifest.ActionRestart {
				t.Errorf("second apply: %s, want a restart", r.Action)
			}
			checkRendered(v1, "warn")
			checkModes(v1, false) // rendering in place changes the times

			v2, v3 := release(2), release(3)
			f.mustApply(f.entry(v2))
			f.mustApply(f.entry(v3))
			if got, want := f.builds("hello"), []string{v2.ID(), v3.ID()}; !slices.Equal(got, want) {
				t.Errorf("builds after two more deploys with Keep 1 = %q, want %q", got, want)
			}
			for _, l := range strings.Split(f.logs.String(), "\n") {
				if strings.Contains(l, "failed") {
					t.Errorf("engine log: %s", l)
				}
			}
		})
	}

	// A package whose staging fails after its directories got their modes
	// leaves nothing under builds/.
	t.Run("staging fails after the modes are set", func(t *testing.T) {
		f := newFixture(t)
		unprivileged.RemovableTree(t, f.root)
		entries := deploytest.Entries(app("v1"))
		for i := range entries {
			if entries[i].Header.Name == "teletraan/" {
				entries[i].Header.Mode = 0o555
			}
		}
		v1 := deploytest.Name(t, "hello", 1, manifest.FormatZstd)
		deploytest.Release(t, f.store, v1, deploytest.Pack(t, manifest.FormatZstd, entries))
		// A file where the build is to go: the rename into builds/ fails.
		builds := filepath.Join(f.root, "envs", "hello", "builds")
		if err := os.MkdirAll(builds, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(builds, v1.ID()), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if r := f.apply(f.entry(v1)); r.Err == nil || r.Step != manifest.StepStaging {
			t.Fatalf("apply = %+v, want a failure in STAGING", r)
		}
		if got := f.builds("hello"); !slices.Equal(got, []string{v1.ID()}) {
			t.Errorf("builds = %q, want only the file in the way", got)
		}
	})

	// Open removes what a crash left under builds/ (here a build being
	// deleted), read-only directories and all.
	t.Run("leftover of a crash", func(t *testing.T) {
		f := newFixture(t)
		unprivileged.RemovableTree(t, f.root)
		left := filepath.Join(f.root, "envs", "hello", "builds", ".tmp-del-hello-20261122T100100Z-abc000000001")
		if err := os.MkdirAll(filepath.Join(left, "teletraan", "conf"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(left, "data", "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"teletraan/app.conf", "teletraan/conf/db.yaml", "data/sub/file"} {
			if err := os.WriteFile(filepath.Join(left, p), []byte("x"), 0o444); err != nil {
				t.Fatal(err)
			}
		}
		for _, d := range []struct {
			name string
			mode fs.FileMode
		}{{"teletraan/conf", 0o500}, {"teletraan", 0o555}, {"data/sub", 0o555}, {"data", 0o600}, {".", 0o555}} {
			if err := os.Chmod(filepath.Join(left, d.name), d.mode); err != nil {
				t.Fatal(err)
			}
		}
		f.reopen()
		if got := f.builds("hello"); len(got) != 0 {
			t.Errorf("builds after Open = %q, want none", got)
		}
	})
}

// searchable reports whether every directory above name (a tar entry name)
// that modes names can be searched by its owner.
func searchable(modes map[string]int64, name string) bool {
	for d := path.Dir(strings.TrimSuffix(name, "/")); d != "."; d = path.Dir(d) {
		if m, ok := modes[d+"/"]; ok && m&0o100 == 0 {
			return false
		}
	}
	return true
}

// lmode returns the mode of p, not following a symlink, as text, or the
// error of os.Lstat.
func lmode(p string) string {
	fi, err := os.Lstat(p)
	if err != nil {
		return err.Error()
	}
	return fi.Mode().String()
}
