package pulld

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/pushpull/pushpull/manifest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update to accept):\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestPlan(t *testing.T) {
	eng := newFakeEngine()
	same, upd, cfg := pkg(t, "same", 1), pkg(t, "upd", 2), pkg(t, "cfg", 3)
	eng.install(manifest.Entry{Package: same})
	eng.install(manifest.Entry{Package: pkg(t, "upd", 1)})
	eng.install(manifest.Entry{Package: cfg})
	eng.install(manifest.Entry{Package: pkg(t, "gone", 1)})
	m := &manifest.Manifest{Revision: 12, Packages: []manifest.Entry{
		{Package: pkg(t, "new", 4)},
		{Package: upd},
		{Package: same},
		{Package: cfg, Config: map[string]string{"LOG_LEVEL": "debug"}},
	}}
	steps, err := plan(eng, manifest.Merge([]manifest.Source{{Target: manifest.Server("web-1"), Manifest: m}}))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := printPlan(&buf, []planDoc{{target: manifest.Server("web-1"), version: "v", revision: 12}}, steps); err != nil {
		t.Fatal(err)
	}
	if calls := eng.takeCalls(); len(calls) != 0 {
		t.Errorf("planning changed something: %q", calls)
	}
	golden(t, "plan.txt", buf.Bytes())

	buf.Reset()
	printPlan(&buf, []planDoc{{target: manifest.Server("web-1")}}, nil)
	golden(t, "plan-absent.txt", buf.Bytes())

	// With groups: the group's entries, a held conflict, a missing group.
	eng = newFakeEngine()
	eng.install(manifest.Entry{Package: pkg(t, "gone", 1)})
	eng.install(manifest.Entry{Package: pkg(t, "both", 1)})
	d := manifest.Merge([]manifest.Source{
		{Target: manifest.Server("web-1")},
		{Target: manifest.Group("web"), Manifest: &manifest.Manifest{Revision: 3, Packages: []manifest.Entry{{Package: pkg(t, "new", 4)}, {Package: pkg(t, "both", 2)}}}},
		{Target: manifest.Group("canary"), Manifest: &manifest.Manifest{Revision: 1, Packages: []manifest.Entry{{Package: pkg(t, "both", 3)}}}},
		{Target: manifest.Group("gone")},
	})
	if steps, err = plan(eng, d); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	printPlan(&buf, []planDoc{{target: manifest.Server("web-1")}, {target: manifest.Group("web"), version: "v", revision: 3},
		{target: manifest.Group("canary"), version: "v", revision: 1}, {target: manifest.Group("gone")}}, steps)
	golden(t, "plan-groups.txt", buf.Bytes())
}
