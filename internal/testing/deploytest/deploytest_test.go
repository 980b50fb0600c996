package deploytest_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/internal/testing/testserver"
	"github.com/pushpull/pushpull/manifest"
)

// files is a small app: a script, a template, a FAIL_ marker, a plain file
// and a nested file.
var files = map[string]string{
	"teletraan/RESTARTING":       "#!/bin/sh\necho restart\n",
	"teletraan/app.conf.tmpl":    "level={$TELETRAAN_LOG_LEVEL:info}\n",
	"teletraan/FAIL_RESTARTING":  "",
	"teletraan/prod/PRE_RESTART": "echo no shebang, executable for being a script\n",
	"version.txt":                "v1\n",
	"bin/tool":                   "#!/bin/sh\necho a script outside teletraan/\n",
	"share/doc/README":           "docs\n",
}

// wantModes are the entries Entries makes of files, in order, with modes.
var wantModes = []struct {
	name string
	mode int64
}{
	{"bin/", 0o755},
	{"share/", 0o755},
	{"share/doc/", 0o755},
	{"teletraan/", 0o755},
	{"teletraan/prod/", 0o755},
	{"bin/tool", 0o755},
	{"share/doc/README", 0o644},
	{"teletraan/FAIL_RESTARTING", 0o644},
	{"teletraan/RESTARTING", 0o755},
	{"teletraan/app.conf.tmpl", 0o644},
	{"teletraan/prod/PRE_RESTART", 0o755},
	{"version.txt", 0o644},
}

// TestBuild checks that a package released in either format reads back
// from the bucket with its metadata, a sha256 that matches its bytes, and
// the entries, modes, times and contents Entries promises.
func TestBuild(t *testing.T) {
	for _, format := range []manifest.Format{manifest.FormatZstd, manifest.FormatGzip} {
		t.Run(string(format), func(t *testing.T) {
			store, err := blobstore.Open(t.Context(), "file://"+t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			var name manifest.PackageName
			if format == manifest.FormatZstd {
				name = deploytest.Build(t, store, "hello", 1, files)
			} else {
				name = deploytest.Name(t, "hello", 1, format)
				deploytest.Release(t, store, name, deploytest.Pack(t, format, deploytest.Entries(files)))
			}
			if want := "hello/hello-20261122T100100Z-abc000000001.tar." + map[manifest.Format]string{manifest.FormatZstd: "zst", manifest.FormatGzip: "gz"}[format]; name.String() != want {
				t.Errorf("name = %s, want %s", name, want)
			}

			r, info, err := store.OpenPackage(t.Context(), name)
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(r)
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			want := deploytest.Meta(name)
			want.SHA256 = deploytest.SHA256(data)
			if got := info.Meta; got.App != want.App || got.Commit != "abc0000000010000" || got.Commit != want.Commit ||
				got.Repo != want.Repo || got.Branch != want.Branch || !got.Built.Equal(want.Built) || got.Format != format || got.SHA256 != want.SHA256 {
				t.Errorf("meta = %+v, want %+v", got, want)
			}

			var zr io.Reader
			if format == manifest.FormatZstd {
				d, err := zstd.NewReader(bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				zr = d
			} else if zr, err = gzip.NewReader(bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			tr := tar.NewReader(zr)
			for i := 0; ; i++ {
				h, err := tr.Next()
				if errors.Is(err, io.EOF) {
					if i != len(wantModes) {
						t.Errorf("%d entries, want %d", i, len(wantModes))
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if i >= len(wantModes) || h.Name != wantModes[i].name || h.Mode != wantModes[i].mode {
					t.Errorf("entry %d: %s %o", i, h.Name, h.Mode)
					continue
				}
				if !h.ModTime.Equal(deploytest.MTime) {
					t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, deploytest.MTime)
				}
				body, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasSuffix(h.Name, "/") && string(body) != files[h.Name] {
					t.Errorf("%s: contents %q, want %q", h.Name, body, files[h.Name])
				}
			}
		})
	}
}

// TestName checks that names depend only on app and seq, and that a later
// seq is a newer build.
func TestName(t *testing.T) {
	a, b := deploytest.Name(t, "hello", 1, manifest.FormatZstd), deploytest.Name(t, "hello", 2, manifest.FormatZstd)
	if a != deploytest.Name(t, "hello", 1, manifest.FormatZstd) {
		t.Error("the same app and seq give another name")
	}
	if a.Compare(b) >= 0 {
		t.Errorf("%s does not sort before %s", a, b)
	}
}

// TestProxy checks, against a real S3 server, that the proxy forwards and
// counts requests and bytes, and that switched to fail it answers 500s
// that blobstore sees as transient, until switched back.
func TestProxy(t *testing.T) {
	s3 := testserver.StartS3(t)
	s3.Setenv(t)
	url := s3.Bucket(t, "")
	px := deploytest.StartProxy(t, s3.Endpoint)
	store, err := blobstore.Open(t.Context(), strings.Replace(url, s3.Endpoint, px.URL, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.UpdateManifestAt(t.Context(), manifest.Server("web-1"), "", false, blobstore.Replace(&manifest.Manifest{})); err != nil {
		t.Fatalf("write through the proxy: %v", err)
	}
	if _, _, err := store.ReadManifest(t.Context(), manifest.Server("web-1")); err != nil {
		t.Fatalf("read through the proxy: %v", err)
	}
	c := px.Counts()
	if c.Requests == 0 || c.BytesIn == 0 || c.BytesOut == 0 || c.Failed != 0 {
		t.Errorf("counts after a write and a read = %+v", c)
	}
	if len(px.Log()) != int(c.Requests) {
		t.Errorf("log %q, want %d requests", px.Log(), c.Requests)
	}
	px.Fail(true)
	if _, _, err := store.ChangedManifest(t.Context(), manifest.Server("web-1"), ""); err == nil || !blobstore.IsTransient(err) {
		t.Errorf("read with 500s: %v, want a transient error", err)
	}
	if px.Counts().Failed == 0 {
		t.Error("no request was failed")
	}
	px.Fail(false)
	if changed, _, err := store.ChangedManifest(t.Context(), manifest.Server("web-1"), ""); err != nil || !changed {
		t.Errorf("read after the fault cleared: %v %v", changed, err)
	}
}
