package pulld_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/internal/pulld"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/internal/testing/pulldtest"
	"github.com/pushpull/pushpull/manifest"
)

// TestManifestByHand: on a file:// bucket, a manifest written by hand
// (printf >, with no sidecar) is installed by the daemon, a later hand edit
// in place is acted on (the poll is an hour, so only the file watch can
// explain it), and a hand-written document that is not a manifest, such as
// {} or {"packages": null}, is refused whole: manifest_error in status,
// the serving build untouched.
func TestManifestByHand(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, "file://"+dir)
	v1 := deploytest.Build(t, h.store, "hello", 1, pulldtest.StepsApp("v1"))
	v2 := deploytest.Build(t, h.store, "hello", 2, pulldtest.StepsApp("v2"))
	path := filepath.Join(dir, "servers", "web-1.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(data []byte) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.start("file")
	write((&manifest.Manifest{Revision: 1, Packages: []manifest.Entry{h.entry(v1)}}).Marshal())
	h.waitEnv("hello", manifest.StateServing, v1.String())

	write((&manifest.Manifest{Revision: 2, Packages: []manifest.Entry{h.entry(v2)}}).Marshal())
	h.waitEnv("hello", manifest.StateServing, v2.String())
	h.steps.Take(t)

	for _, bad := range []string{`{}`, `{"packages": null}`, `null`, `{"revision": 3, "revision": 4, "packages": []}`} {
		write([]byte(bad))
		st := pulldtest.WaitStatus(t, wait, h.bucketStatus, func(st *manifest.Status) bool { return st.ManifestError != "" })
		if !strings.Contains(st.ManifestError, "invalid manifest") {
			t.Fatalf("%s: manifest_error %q", bad, st.ManifestError)
		}
		if !pulldtest.EnvIs("hello", manifest.StateServing, v2.String())(st) || pulldtest.Current(t, h.cfg.Root, "hello") != v2.ID() {
			t.Fatalf("%s: serving build touched:\n%s", bad, st.Marshal())
		}
		write((&manifest.Manifest{Revision: 5, Packages: []manifest.Entry{h.entry(v2)}}).Marshal())
		pulldtest.WaitStatus(t, wait, h.bucketStatus, func(st *manifest.Status) bool { return st.ManifestError == "" })
	}
	h.wantSteps("refused manifests")
}

// TestOnceByHand: pulld -once reads a hand-written manifest (cp of a file
// into servers/, no sidecar) and installs it; a document that is not a
// manifest is ErrManifest (exit 2) with the host left as it is; a bucket
// directory that does not exist (a typo) is refused, not created.
func TestOnceByHand(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, "file://"+dir)
	v1 := deploytest.Build(t, h.store, "hello", 1, pulldtest.StepsApp("v1"))
	src := filepath.Join(t.TempDir(), "web-1.json")
	if err := os.WriteFile(src, (&manifest.Manifest{Packages: []manifest.Entry{h.entry(v1)}}).Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(src)
	path := filepath.Join(dir, "servers", "web-1.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil { // cp web-1.json servers/
		t.Fatal(err)
	}
	cfg := h.cfg
	cfg.Once, cfg.Listen = true, ""
	if err := pulld.Run(t.Context(), cfg); err != nil {
		t.Fatalf("pulld -once on a hand-written manifest: %v", err)
	}
	if pulldtest.Current(t, cfg.Root, "hello") != v1.ID() {
		t.Fatal("pulld -once did not install the hand-written manifest")
	}
	if err := os.WriteFile(path, []byte(`{"revision": 9}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pulld.Run(t.Context(), cfg); !errors.Is(err, pulld.ErrManifest) {
		t.Fatalf("pulld -once on {\"revision\": 9}: %v, want ErrManifest", err)
	}
	if pulldtest.Current(t, cfg.Root, "hello") != v1.ID() {
		t.Fatal("a refused manifest changed the host")
	}
	// The status of a host that cannot use its manifest still says when
	// and by which attempt its envs last changed.
	st, err := h.store.ReadStatus(t.Context(), "web-1")
	if err != nil {
		t.Fatal(err)
	}
	if es, ok := st.Lookup("hello"); !ok || es.DeployID == "" || es.Updated.IsZero() {
		t.Fatalf("status of the served env after a refused manifest: %+v", es)
	}
	big := append([]byte(`{"packages": []}`), make([]byte, 2<<20)...)
	for i := range big[16:] {
		big[16+i] = ' '
	}
	if err := os.WriteFile(path, big, 0o644); err != nil {
		t.Fatal(err)
	}
	err = pulld.Run(t.Context(), cfg)
	if !errors.Is(err, pulld.ErrManifest) || !strings.Contains(err.Error(), "2097168 bytes, more than 1048576") {
		t.Fatalf("pulld -once on a 2 MiB manifest: %v, want ErrManifest naming its size", err)
	}
	if pulldtest.Current(t, cfg.Root, "hello") != v1.ID() {
		t.Fatal("a refused manifest changed the host")
	}
	cfg.Bucket = "file://" + filepath.Join(dir, "typo")
	err = pulld.Run(t.Context(), cfg)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("pulld -once on a missing bucket directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "typo")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pulld created the typo's directory: %v", err)
	}
}
