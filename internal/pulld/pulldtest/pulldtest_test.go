package pulldtest_test

import (
	"archive/tar"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/pulld/pulldtest"
	"github.com/pushpull/pushpull/internal/testserver"
	"github.com/pushpull/pushpull/manifest"
)

func TestBuild(t *testing.T) {
	store, err := blobstore.Open(t.Context(), "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	p := pulldtest.Build(t, store, "hello", 1, pulldtest.StepsApp("v1"))
	if p.String() != "hello/hello-20261122T100100Z-abc000000001.tar.zst" {
		t.Errorf("name = %s", p)
	}
	r, info, err := store.OpenPackage(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if info.Meta.App != "hello" || info.Meta.SHA256 == "" || info.Meta.Format != manifest.FormatZstd {
		t.Errorf("meta = %+v", info.Meta)
	}
	zr, err := zstd.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	got := map[string]int64{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h.Mode
	}
	if got["teletraan/"] != 0o755 || got["teletraan/RESTARTING"] != 0o755 || got["version.txt"] != 0o644 {
		t.Errorf("entries = %v", got)
	}
	if want := pulldtest.Expect(p, "DEPLOY", "RESTARTING"); !slices.Equal(want, []string{"RESTARTING DEPLOY " + p.File()}) {
		t.Errorf("Expect = %q", want)
	}
}

func TestProxy(t *testing.T) {
	s3 := testserver.StartS3(t)
	s3.Setenv(t)
	url := s3.Bucket(t, "")
	px := pulldtest.StartProxy(t, s3.Endpoint)
	store, err := blobstore.Open(t.Context(), strings.Replace(url, s3.Endpoint, px.URL, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.WriteManifest(t.Context(), "web-1", &manifest.Manifest{}, ""); err != nil {
		t.Fatalf("write through the proxy: %v", err)
	}
	c := px.Counts()
	if c.Requests == 0 || c.BytesIn == 0 || c.BytesOut == 0 || c.Failed != 0 {
		t.Errorf("counts after a write = %+v", c)
	}
	px.Fail(true)
	if _, _, err := store.ChangedManifest(t.Context(), "web-1", ""); err == nil || !blobstore.IsTransient(err) {
		t.Errorf("read with 500s: %v, want a transient error", err)
	}
	if px.Counts().Failed == 0 {
		t.Error("no request was failed")
	}
	px.Fail(false)
	if changed, _, err := store.ChangedManifest(t.Context(), "web-1", ""); err != nil || !changed {
		t.Errorf("read after the fault cleared: %v %v", changed, err)
	}
}
