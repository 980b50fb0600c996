package pkginstall_test

import (
	"slices"
	"testing"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkginstall"
)

// TestStage checks stage-then-flip: Stage puts a build under builds/
// without running a script or touching what serves; a later Apply of it
// reads nothing from the bucket; staging again is unchanged; the staged
// build is kept while others are pruned.
func TestStage(t *testing.T) {
	f := newFixture(t)
	v1 := f.release("hello", 1, app("v1"))
	v2 := f.release("hello", 2, app("v2"))
	f.mustApply(f.entry(v1))
	f.steps()

	r := f.eng.Stage(t.Context(), "hello", v2)
	if r.Err != nil || r.What != pkginstall.Staged || r.Downloaded == 0 || r.Serving != v1 {
		t.Fatalf("Stage = %+v", r)
	}
	if got := f.steps(); len(got) != 0 {
		t.Errorf("Stage ran scripts: %q", got)
	}
	if f.current("hello") != v1.ID() || !slices.Contains(f.builds("hello"), v2.ID()) {
		t.Fatalf("after Stage: current %s, builds %q", f.current("hello"), f.builds("hello"))
	}
	inst, err := f.eng.Installed()
	if err != nil || len(inst) != 1 || inst[0].Staged != v2 || inst[0].Package != v1 {
		t.Errorf("Installed = %+v, %v", inst, err)
	}
	if r := f.eng.Stage(t.Context(), "hello", v2); r.Err != nil || r.What != pkginstall.Unchanged || r.Downloaded != 0 {
		t.Errorf("Stage again = %+v", r)
	}
	// The flip needs no download: the package may even be gone.
	if err := f.store.Bucket().Delete(t.Context(), blobstore.PackageKey(v2)); err != nil {
		t.Fatal(err)
	}
	if r := f.mustApply(f.entry(v2)); r.Downloaded != 0 || r.Action != manifest.ActionDeploy {
		t.Errorf("Apply of the staged build = %+v, want a deploy with no download", r)
	}
	if f.current("hello") != v2.ID() {
		t.Errorf("current %s, want %s", f.current("hello"), v2.ID())
	}
	// Staging a package the bucket does not hold fails and leaves the env
	// as it is.
	v3 := f.release("hello", 3, app("v3"))
	if err := f.store.Bucket().Delete(t.Context(), blobstore.PackageKey(v3)); err != nil {
		t.Fatal(err)
	}
	if r := f.eng.Stage(t.Context(), "hello", v3); r.Err == nil || r.What != pkginstall.Failed {
		t.Errorf("Stage of a missing package = %+v, want Failed", r)
	}
	if f.current("hello") != v2.ID() || slices.Contains(f.builds("hello"), v3.ID()) {
		t.Errorf("after a failed Stage: current %s, builds %q", f.current("hello"), f.builds("hello"))
	}
}
