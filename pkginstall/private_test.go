package pkginstall_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestHostStateIsPrivate: state.json and the attempt logs hold config
// values, so a new root keeps them owner-only (the root may be passed
// through but not listed), and an existing root made with looser modes is
// tightened when an engine opens it.
func TestHostStateIsPrivate(t *testing.T) {
	f := newFixture(t)
	v1 := f.release("hello", 1, app("v1"))
	f.mustApply(f.entry(v1, "SECRET", "hunter2"))
	logs := filepath.Join(f.root, "envs", "hello", "logs")
	check := func(when string) {
		t.Helper()
		for p, want := range map[string]fs.FileMode{
			f.root:                              fs.ModeDir | 0o711,
			filepath.Join(f.root, "state.json"): 0o600,
			filepath.Join(f.root, "lock"):       0o600,
			logs:                                fs.ModeDir | 0o700,
		} {
			if fi, err := os.Lstat(p); err != nil || fi.Mode() != want {
				t.Errorf("%s: %s is %v (%v), want %v", when, p, fi.Mode(), err, want)
			}
		}
		ents, err := os.ReadDir(logs)
		if err != nil || len(ents) == 0 {
			t.Fatalf("%s: no attempt logs: %v", when, err)
		}
		for _, e := range ents {
			if fi, err := e.Info(); err != nil || fi.Mode() != 0o600 {
				t.Errorf("%s: log %s is %v, want 0600", when, e.Name(), fi.Mode())
			}
		}
		// The build stays reachable by the service's own user.
		if fi, err := os.Stat(filepath.Join(f.root, "envs")); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: envs/ is %v, want 0755", when, fi.Mode())
		}
	}
	check("new root")

	loosen := map[string]fs.FileMode{f.root: 0o755, filepath.Join(f.root, "state.json"): 0o644, filepath.Join(f.root, "lock"): 0o666, logs: 0o755}
	for p, m := range loosen {
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(logs)
	for _, e := range ents {
		os.Chmod(filepath.Join(logs, e.Name()), 0o644)
	}
	f.reopen()
	check("existing root")
}
