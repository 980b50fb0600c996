package pkginstall_test

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/signing"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/internal/testing/testserver"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
	"github.com/pushpull/pushpull/pkginstall"
)

// refused checks that applying bad to a host serving good failed with
// want, ran none of bad's scripts (the serving build's PRE_DOWNLOAD may
// have run), left current on good and left nothing of bad under builds/.
func refused(t *testing.T, f *fixture, good, bad manifest.PackageName, want error) {
	t.Helper()
	f.steps()
	r := f.apply(f.entry(bad))
	if r.Err == nil || !errors.Is(r.Err, want) {
		t.Fatalf("apply %s: err = %v, want %v", bad, r.Err, want)
	}
	if r.State != manifest.StateFailed || r.Step != manifest.StepDownloading || r.Serving != good {
		t.Errorf("result %+v", r)
	}
	if f.current("hello") != good.ID() {
		t.Errorf("current = %q, want %s", f.current("hello"), good.ID())
	}
	if got := f.builds("hello"); !slices.Equal(got, []string{good.ID()}) {
		t.Errorf("builds = %q", got)
	}
	if got, want := f.steps(), expect("DEPLOY", bad, good, pre); !slices.Equal(got, want) {
		t.Errorf("steps\n got %q\nwant %q", got, want)
	}
}

// TestTampered checks that a package whose bytes do not match its sha256
// is refused.
func TestTampered(t *testing.T) {
	f := newFixture(t)
	v1 := f.release("hello", 1, app("v1"))
	f.mustApply(f.entry(v1))

	data := deploytest.Pack(t, manifest.FormatZstd, deploytest.Entries(app("v2")))
	sum := deploytest.SHA256(data)
	other := deploytest.Pack(t, manifest.FormatZstd, deploytest.Entries(app("v2-evil")))
	for i, tamper := range []func([]byte) []byte{
		func(b []byte) []byte { b[len(b)/2] ^= 0x55; return b },   // a flipped byte
		func(b []byte) []byte { return append(b, "trailing"...) }, // bytes appended after the archive
		func(b []byte) []byte { return b[:len(b)-3] },             // truncated
		func([]byte) []byte { return other },                      // another archive
	} {
		bad := deploytest.Name(t, "hello", 10+i, manifest.FormatZstd)
		putRaw(t, f.store, bad, tamper(bytes.Clone(data)), sum)
		refused(t, f, v1, bad, pkginstall.ErrChecksum)
	}
}

// TestSignatures checks that with verify keys, only packages signed by one
// of them, for their own name and sha256, are installed; two trusted keys
// (a rotation) both work.
func TestSignatures(t *testing.T) {
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	newPub, newPriv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *pkginstall.Config) { c.VerifyKeys = []minisign.PublicKey{pub, newPub} })
	sign := func(key minisign.PrivateKey, data []byte, name manifest.PackageName) []byte {
		h := signing.NewHasher()
		h.Write(data)
		return h.Sign(key, name.String(), deploytest.SHA256(data))
	}
	put := func(seq int, version string) (manifest.PackageName, []byte) {
		name := deploytest.Name(t, "hello", seq, manifest.FormatZstd)
		data := deploytest.Pack(t, manifest.FormatZstd, deploytest.Entries(app(version)))
		deploytest.Release(t, f.store, name, data)
		return name, data
	}
	v1, d1 := put(1, "v1")
	if err := f.store.WriteSignature(t.Context(), v1, sign(priv, d1, v1)); err != nil {
		t.Fatal(err)
	}
	f.mustApply(f.entry(v1))

	unsigned, _ := put(2, "unsigned")
	refused(t, f, v1, unsigned, pkginstall.ErrUnsigned)

	wrongKey, d3 := put(3, "wrong key")
	if err := f.store.WriteSignature(t.Context(), wrongKey, sign(other, d3, wrongKey)); err != nil {
		t.Fatal(err)
	}
	refused(t, f, v1, wrongKey, signing.ErrBadSignature)

	// v1's genuine signature, moved beside another package: the bytes and
	// the trusted comment both name v1.
	moved, _ := put(4, "moved")
	if err := f.store.WriteSignature(t.Context(), moved, sign(priv, d1, v1)); err != nil {
		t.Fatal(err)
	}
	refused(t, f, v1, moved, signing.ErrBadSignature)

	// The same bytes as v1 under another name, with v1's signature: the
	// trusted comment names v1.
	renamed := deploytest.Name(t, "hello", 5, manifest.FormatZstd)
	deploytest.Release(t, f.store, renamed, d1)
	if err := f.store.WriteSignature(t.Context(), renamed, sign(priv, d1, v1)); err != nil {
		t.Fatal(err)
	}
	refused(t, f, v1, renamed, signing.ErrBadSignature)

	good, d6 := put(6, "v6")
	if err := f.store.WriteSignature(t.Context(), good, sign(priv, d6, good)); err != nil {
		t.Fatal(err)
	}
	f.mustApply(f.entry(good))

	// Signed by the second trusted key: the rotation's new key.
	rotated, d7 := put(7, "v7")
	if err := f.store.WriteSignature(t.Context(), rotated, sign(newPriv, d7, rotated)); err != nil {
		t.Fatal(err)
	}
	f.mustApply(f.entry(rotated))
}

// TestHostileArchives checks that archives trying to write outside the
// build, devices and bombs are refused, with nothing written outside the
// temporary directory and current unchanged.
func TestHostileArchives(t *testing.T) {
	base := deploytest.Entries(app("evil"))
	reg := func(name, body string) deploytest.Entry {
		return deploytest.Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, Body: []byte(body)}
	}
	cases := []struct {
		name    string
		entries []deploytest.Entry
		want    error
	}{
		{"dot-dot", []deploytest.Entry{reg("../evil", "x")}, pkgformat.ErrUnsafe},
		{"deep dot-dot", []deploytest.Entry{reg("teletraan/../../../../evil", "x")}, pkgformat.ErrUnsafe},
		{"absolute", []deploytest.Entry{reg("/tmp/pkginstall-evil-abs", "x")}, pkgformat.ErrUnsafe},
		{"symlink to / then through it", []deploytest.Entry{
			{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: "root", Linkname: "/"}},
			reg("root/tmp/pkginstall-evil-link", "x"),
		}, pkgformat.ErrUnsafe},
		{"relative symlink out", []deploytest.Entry{
			{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: "up", Linkname: "../../.."}},
			reg("up/evil", "x"),
		}, pkgformat.ErrUnsafe},
		{"hard link to /etc/passwd", []deploytest.Entry{
			{Header: tar.Header{Typeflag: tar.TypeLink, Name: "passwd", Linkname: "/etc/passwd"}},
		}, pkgformat.ErrUnsafe},
		{"device", []deploytest.Entry{
			{Header: tar.Header{Typeflag: tar.TypeChar, Name: "null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
		}, pkgformat.ErrUnsafe},
		{"fifo", []deploytest.Entry{{Header: tar.Header{Typeflag: tar.TypeFifo, Name: "fifo", Mode: 0o666}}}, pkgformat.ErrUnsafe},
		{"bomb", []deploytest.Entry{
			{Header: tar.Header{Typeflag: tar.TypeReg, Name: "zeros", Mode: 0o644, Size: 64 << 20}, Body: make([]byte, 64<<20)},
		}, pkgformat.ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *pkginstall.Config) { c.MaxUnpack = pkgformat.Limits{MaxBytes: 1 << 20} })
			v1 := f.release("hello", 1, app("v1"))
			f.mustApply(f.entry(v1))
			outside := filepath.Join(f.root, "envs", "hello")
			before := tree(t, f.root)
			bad := deploytest.Name(t, "hello", 2, manifest.FormatZstd)
			deploytest.Release(t, f.store, bad, deploytest.Pack(t, manifest.FormatZstd, append(slices.Clone(base), tc.entries...)))
			refused(t, f, v1, bad, tc.want)
			after := tree(t, f.root)
			for p := range after {
				if !before[p] && !strings.HasPrefix(p, "envs/hello/logs/") && p != "state.json" {
					t.Errorf("new path after a refused archive: %s", p)
				}
			}
			for _, p := range []string{"/tmp/pkginstall-evil-abs", "/tmp/pkginstall-evil-link", filepath.Join(outside, "evil"), filepath.Join(f.root, "evil")} {
				if _, err := os.Lstat(p); err == nil {
					os.Remove(p)
					t.Errorf("%s was written", p)
				}
			}
		})
	}
}

// tree lists every path under root, relative, with / separators.
func tree(t *testing.T, root string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = true
		return nil
	})
	return out
}

// TestGzip checks that tar.gz packages install like tar.zst ones.
func TestGzip(t *testing.T) {
	f := newFixture(t)
	name := deploytest.Name(t, "hello", 1, manifest.FormatGzip)
	deploytest.Release(t, f.store, name, deploytest.Pack(t, manifest.FormatGzip, deploytest.Entries(app("gz"))))
	f.mustApply(f.entry(name))
	if got := f.file("hello", "version.txt"); got != "gz\n" {
		t.Fatalf("version.txt = %q", got)
	}
}

// TestMissingPackage checks that a package absent from the bucket fails
// the download without retries and leaves the host as it was.
func TestMissingPackage(t *testing.T) {
	f := newFixture(t)
	v1 := f.release("hello", 1, app("v1"))
	f.mustApply(f.entry(v1))
	missing := deploytest.Name(t, "hello", 2, manifest.FormatZstd)
	r := f.apply(f.entry(missing))
	if r.Err == nil || !strings.Contains(r.Err.Error(), "not found") || r.Serving != v1 || f.current("hello") != v1.ID() {
		t.Fatalf("result %+v", r)
	}
	if strings.Contains(f.logs.String(), "bucket read failed; trying again") {
		t.Error("a missing package was retried")
	}
}

// TestTransientBucketErrors checks that a download failing with 500s from
// a real S3 server is tried again by the engine and succeeds once the
// server recovers, and that the failures are reported.
func TestTransientBucketErrors(t *testing.T) {
	s3 := testserver.StartS3(t)
	s3.Setenv(t)
	direct := s3.Bucket(t, "")
	px := deploytest.StartProxy(t, s3.Endpoint)
	ctx := t.Context()
	viaProxy, err := blobstore.Open(ctx, strings.Replace(direct, s3.Endpoint, px.URL, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer viaProxy.Close()
	f := newFixture(t, func(c *pkginstall.Config) {
		c.Store = viaProxy
		c.Backoff = 300 * time.Millisecond
	})
	v1 := deploytest.Name(t, "hello", 1, manifest.FormatZstd)
	deploytest.Release(t, viaProxy, v1, deploytest.Pack(t, manifest.FormatZstd, deploytest.Entries(app("v1"))))

	// 500s until the engine says it will try again, then a healthy server.
	px.Fail(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !strings.Contains(f.logs.String(), "bucket read failed; trying again") {
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		px.Fail(false)
	}()
	r := f.apply(f.entry(v1))
	<-done
	if r.Err != nil || f.current("hello") != v1.ID() {
		t.Fatalf("result %+v", r)
	}
	if px.Counts().Failed == 0 {
		t.Error("no request failed")
	}
}
