package release

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/internal/signing"
	"github.com/pushpull/pushpull/internal/testing/testserver"
	"github.com/pushpull/pushpull/manifest"
)

// appTree is a small app with scripts, an env directory, a template, a
// setuid helper, a nested link and an empty directory.
func appTree(t testing.TB) string {
	return makeTree(t, map[string]file{
		"teletraan/RESTARTING":            script,
		"teletraan/POST_RESTART":          {data: "#!/bin/sh\nexit 0\n", mode: 0o700},
		"teletraan/api-canary/RESTARTING": script,
		"teletraan/app.conf.tmpl":         {data: "level={$TELETRAAN_LOG_LEVEL:info}\n", mode: 0o640},
		"bin/hello":                       {data: "binary", mode: fs.ModeSetuid | 0o755},
		"bin/current":                     {link: "hello"},
		"etc/hello.conf":                  {data: "x=1\n", mode: 0o600},
		"var/empty":                       {dir: true, mode: fs.ModeSticky | 0o777},
		"a long directory name that goes on and on and on/and a long file name that goes on and on and on and on.txt": {data: "long"},
	})
}

// wantMembers is appTree as read back from an archive.
var wantMembers = map[string]member{
	"teletraan/":                      {typ: '5', mode: 0o755},
	"teletraan/RESTARTING":            {typ: '0', mode: 0o755, data: script.data},
	"teletraan/POST_RESTART":          {typ: '0', mode: 0o700, data: "#!/bin/sh\nexit 0\n"},
	"teletraan/api-canary/":           {typ: '5', mode: 0o755},
	"teletraan/api-canary/RESTARTING": {typ: '0', mode: 0o755, data: script.data},
	"teletraan/app.conf.tmpl":         {typ: '0', mode: 0o640, data: "level={$TELETRAAN_LOG_LEVEL:info}\n"},
	"bin/":                            {typ: '5', mode: 0o755},
	"bin/hello":                       {typ: '0', mode: 0o4755, data: "binary"},
	"bin/current":                     {typ: '2', mode: 0o777, link: "hello"},
	"etc/":                            {typ: '5', mode: 0o755},
	"etc/hello.conf":                  {typ: '0', mode: 0o600, data: "x=1\n"},
	"var/":                            {typ: '5', mode: 0o755},
	"var/empty/":                      {typ: '5', mode: 0o1777},
	"a long directory name that goes on and on and on/":                                                           {typ: '5', mode: 0o755},
	"a long directory name that goes on and on and on/and a long file name that goes on and on and on and on.txt": {typ: '0', mode: 0o644, data: "long"},
}

// TestRoundTrip releases appTree to each backend and reads it back: name,
// metadata, sha256 of the stored object, archive contents and modes, and
// the signature.
func TestRoundTrip(t *testing.T) {
	backends := []struct {
		name  string
		start func(t *testing.T) string
	}{
		{"file", func(t *testing.T) string { return "file://" + t.TempDir() }},
		{"s3", func(t *testing.T) string {
			s := testserver.StartS3(t)
			s.Setenv(t)
			return s.Bucket(t, "")
		}},
		{"gcs", func(t *testing.T) string {
			g := testserver.StartGCS(t)
			g.Setenv(t)
			return g.Bucket(t, "")
		}},
	}
	pub, keyFile := makeKey(t)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			bucket := b.start(t)
			for i, format := range []manifest.Format{manifest.FormatZstd, manifest.FormatGzip} {
				t.Run(string(format), func(t *testing.T) {
					cfg := testConfig(bucket, "hello", appTree(t))
					cfg.Format = format
					// A second apart: one build (app, second, commit) is
					// one package, whatever its format.
					built := fixedNow.Add(time.Duration(i) * time.Second)
					cfg.Now = func() time.Time { return built }
					cfg.Note = "first release\nof hello"
					cfg.Branch, cfg.Repo = "main", "https://example.com/hello.git"
					cfg.SignKey = keyFile
					var out strings.Builder
					cfg.Out = &out
					res, err := Run(t.Context(), cfg)
					if err != nil {
						t.Fatalf("Run: %v", err)
					}
					want := "hello/hello-" + built.Format(manifest.BuildTimeLayout) + "-0123456789ab." + string(format)
					if res.Name.String() != want || out.String() != want+"\n" {
						t.Fatalf("name %s, stdout %q; want %s", res.Name, out.String(), want)
					}
					store := openStore(t, bucket)
					info, members := readBack(t, store, res.Name)
					wantMeta := manifest.PackageMeta{
						App: "hello", Commit: cfg.Commit, Branch: "main", Repo: cfg.Repo, Built: built,
						User: "alice", Host: "build-1", Note: cfg.Note, SHA256: res.Meta.SHA256, Format: format,
						Size: unpackedSize(wantMembers),
					}
					if info.Meta != wantMeta {
						t.Errorf("metadata\n got %+v\nwant %+v", info.Meta, wantMeta)
					}
					if info.Size != res.Size {
						t.Errorf("stored %d bytes, Result says %d", info.Size, res.Size)
					}
					compareMembers(t, members, wantMembers)
					verifySignature(t, store, res.Name, info.Meta.SHA256, pub)
					list, err := store.ListPackages(t.Context(), "hello")
					if err != nil || !slices.ContainsFunc(list, func(i blobstore.PackageInfo) bool { return i.Name == res.Name && i.Meta == info.Meta }) {
						t.Errorf("ListPackages = %v, %v; want it to list %s", list, err, res.Name)
					}
				})
			}
		})
	}
}

func compareMembers(t *testing.T, got, want map[string]member) {
	t.Helper()
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("archive lacks %s", name)
			continue
		}
		if g != w {
			t.Errorf("%s: got %+v, want %+v", name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("archive has unexpected %s", name)
		}
	}
}

func openStore(t testing.TB, bucket string) *blobstore.Store {
	t.Helper()
	store, err := blobstore.Open(context.Background(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// makeKey writes an unencrypted minisign secret key and returns the public
// key and the key file.
func makeKey(t testing.TB) (minisign.PublicKey, string) {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	data, err := priv.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "release.key")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return pub, path
}

// verifySignature checks the signature beside name as pulld would.
func verifySignature(t testing.TB, store *blobstore.Store, name manifest.PackageName, sum string, pub minisign.PublicKey) {
	t.Helper()
	sig, err := store.ReadSignature(t.Context(), name)
	if err != nil {
		t.Fatalf("ReadSignature: %v", err)
	}
	r, _, err := store.OpenPackage(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := signing.NewHasher()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	if err := h.Verify([]minisign.PublicKey{pub}, sig, name.String(), sum); err != nil {
		t.Errorf("signature: %v", err)
	}
}

// TestEncryptedKey checks signing with a password-protected key (made
// once, as minisign -G makes them, into testdata: encrypting and decrypting
// a key takes seconds each), and the error without the password, before
// anything is uploaded.
func TestEncryptedKey(t *testing.T) {
	t.Parallel()
	pub, err := signing.LoadPublicKey("testdata/encrypted.pub")
	if err != nil {
		t.Fatal(err)
	}
	const keyFile = "testdata/encrypted.key"
	bucket := "file://" + t.TempDir()
	cfg := testConfig(bucket, "hello", appTree(t))
	cfg.SignKey = keyFile
	_, err = Run(t.Context(), cfg)
	if !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), PasswordEnv) {
		t.Fatalf("Run without password = %v, want cli.ErrUsage naming %s", err, PasswordEnv)
	}
	assertEmpty(t, bucket)
	cfg.SignPassword = "s3cret"
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	verifySignature(t, openStore(t, bucket), res.Name, res.Meta.SHA256, pub)
}

// TestNeverOverwrites checks that a second release of the same commit in
// the same second fails with ErrExists and leaves the first intact, also
// when both run at once.
func TestNeverOverwrites(t *testing.T) {
	bucket := "file://" + t.TempDir()
	cfg := testConfig(bucket, "hello", appTree(t))
	cfg.Note = "first"
	first, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Note = "second"
	var out strings.Builder
	cfg.Out = &out
	_, err = Run(t.Context(), cfg)
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "same commit within one second") {
		t.Fatalf("second Run = %v, want ErrExists", err)
	}
	if out.Len() != 0 {
		t.Errorf("failed release printed %q", out.String())
	}
	info, _ := readBack(t, openStore(t, bucket), first.Name)
	if info.Meta.Note != "first" || info.Meta.SHA256 != first.Meta.SHA256 {
		t.Errorf("first package changed: %+v", info.Meta)
	}

	// Concurrent: exactly one of several wins.
	cfg.Dir = appTree(t)
	cfg.Now = func() time.Time { return fixedNow.Add(time.Hour) }
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			c := cfg
			c.Note = fmt.Sprint(i)
			_, errs[i] = Run(t.Context(), c)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrExists):
			t.Errorf("concurrent Run = %v, want nil or ErrExists", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d concurrent releases of one name succeeded, want 1", ok)
	}
}

// gitRun runs git in dir with a fixed identity.
func gitRun(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=T", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestGitFacts checks commit, branch, repo (credentials removed) and dirty
// read from the repository, flags taking precedence, and the error for a
// tree outside any repository.
func TestGitFacts(t *testing.T) {
	dir := appTree(t)
	gitRun(t, dir, "init", "-q")
	gitRun(t, dir, "add", ".")
	gitRun(t, dir, "commit", "-q", "-m", "one")
	gitRun(t, dir, "remote", "add", "origin", "https://bot:tok3n@git.example.com/hello.git")
	head := gitRun(t, dir, "rev-parse", "HEAD")
	bucket := "file://" + t.TempDir()

	cfg := testConfig(bucket, "hello", dir)
	cfg.Commit = ""
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Meta
	if m.Commit != head || m.Branch != "main" || m.Repo != "https://git.example.com/hello.git" || m.Dirty {
		t.Errorf("clean: got commit %s branch %q repo %q dirty %v; want %s main, no credentials, clean", m.Commit, m.Branch, m.Repo, m.Dirty, head)
	}

	if err := os.WriteFile(filepath.Join(dir, "untracked"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Now = func() time.Time { return fixedNow.Add(time.Second) }
	cfg.Branch = "release-1"
	res, err = Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Meta.Dirty || !res.Name.Dirty || !strings.HasSuffix(res.Name.String(), "-dirty.tar.zst") || res.Meta.Branch != "release-1" {
		t.Errorf("dirty: got %s, %+v", res.Name, res.Meta)
	}

	// A subdirectory of the repository has the repository's facts.
	cfg.Dir = filepath.Join(dir, "teletraan")
	cfg.Now = func() time.Time { return fixedNow.Add(2 * time.Second) }
	if res, err = Run(t.Context(), cfg); err != nil || res.Meta.Commit != head {
		t.Errorf("subdirectory: %v, %+v", err, res.Meta)
	}

	// Outside a repository, -commit is required.
	plain := appTree(t)
	cfg = testConfig(bucket, "other", plain)
	cfg.Commit = ""
	if _, err := Run(t.Context(), cfg); !errors.Is(err, ErrNotGit) || !strings.Contains(err.Error(), "-commit") {
		t.Errorf("outside git: %v, want ErrNotGit mentioning -commit", err)
	}
}

func TestRedactURL(t *testing.T) {
	tests := map[string]string{
		"https://bot:tok3n@git.example.com/x.git": "https://git.example.com/x.git",
		"https://tok3n@git.example.com/x.git":     "https://git.example.com/x.git",
		"https://git.example.com/x.git":           "https://git.example.com/x.git",
		"ssh://git@git.example.com/x.git":         "ssh://git@git.example.com/x.git",
		"ssh://git:pw@git.example.com/x.git":      "ssh://git@git.example.com/x.git",
		"git@github.com:pushpull/pushpull.git":    "git@github.com:pushpull/pushpull.git",
		"/srv/git/x.git":                          "/srv/git/x.git",
	}
	for in, want := range tests {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// randomTree returns a tree of one incompressible file of size bytes.
func randomTree(t testing.TB, size int) string {
	dir := t.TempDir()
	data := make([]byte, size)
	r := mrand.NewChaCha8([32]byte{1})
	_, _ = r.Read(data)
	if err := os.WriteFile(filepath.Join(dir, "blob"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestFailedUpload checks that an upload that fails mid-stream (the S3 or
// GCS server killed, or the context cancelled) leaves nothing under the
// package's name.
func TestFailedUpload(t *testing.T) {
	const size = 40 << 20
	tree := randomTree(t, size)
	t.Run("s3 killed", func(t *testing.T) {
		s3 := testserver.StartS3(t)
		s3.Setenv(t)
		bucket := s3.Bucket(t, "")
		cfg := testConfig(bucket, "hello", tree)
		var once sync.Once
		cfg.OnProgress = func(read, written int64) {
			if read > 24<<20 {
				once.Do(s3.Stop)
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		_, err := Run(ctx, cfg)
		if err == nil {
			t.Fatal("Run succeeded with the server killed mid-stream")
		}
		t.Logf("Run: %v", err)
		s3.Restart(t)
		assertNoPackage(t, bucket, "hello")
	})
	t.Run("gcs killed", func(t *testing.T) {
		gcs := testserver.StartGCS(t)
		gcs.Setenv(t)
		bucket := gcs.Bucket(t, "")
		cfg := testConfig(bucket, "hello", tree)
		var once sync.Once
		cfg.OnProgress = func(read, written int64) {
			if read > 24<<20 {
				once.Do(gcs.Stop)
			}
		}
		// The GCS client retries a dead server until the context ends, so
		// here the deadline is what fails the upload.
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		_, err := Run(ctx, cfg)
		if err == nil {
			t.Fatal("Run succeeded with the server killed mid-stream")
		}
		gcs.Restart(t)
		assertNoPackage(t, bucket, "hello")
	})
	t.Run("cancelled", func(t *testing.T) {
		bucket := "file://" + t.TempDir()
		ctx, cancel := context.WithCancel(t.Context())
		cfg := testConfig(bucket, "hello", tree)
		cfg.OnProgress = func(read, written int64) {
			if read > size/2 {
				cancel()
			}
		}
		if _, err := Run(ctx, cfg); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
		assertNoPackage(t, bucket, "hello")
	})
}

func assertNoPackage(t *testing.T, bucket, app string) {
	t.Helper()
	store := openStore(t, bucket)
	names, err := store.ListPackageNames(t.Context(), app)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) > 0 {
		t.Errorf("packages left after a failed upload: %v", names)
	}
}

// TestUsageErrors checks configurations refused before anything is read.
func TestUsageErrors(t *testing.T) {
	dir := appTree(t)
	tests := []struct {
		name string
		edit func(*Config)
		say  string
	}{
		{"no bucket", func(c *Config) { c.Bucket = "" }, "-bucket is required"},
		{"no app", func(c *Config) { c.App = "" }, "-app is required"},
		{"bad app", func(c *Config) { c.App = "../x" }, "invalid name"},
		{"short commit", func(c *Config) { c.Commit = "abc" }, "hex digits"},
		{"non-hex commit", func(c *Config) { c.Commit = "0123456789abcdefg" }, "hex digits"},
		{"bad format", func(c *Config) { c.Format = "zip" }, "-format"},
		{"bad server", func(c *Config) { c.Deploy = []string{"../packages/x"} }, "-deploy"},
		{"missing dir", func(c *Config) { c.Dir = filepath.Join(dir, "nope") }, "no such file"},
		{"dir is a file", func(c *Config) { c.Dir = filepath.Join(dir, "etc/hello.conf") }, "not a directory"},
		{"missing key", func(c *Config) { c.SignKey = filepath.Join(dir, "nope.key") }, "-sign-key"},
		{"bad nudge", func(c *Config) { c.Deploy = []string{"web-1"}; c.Nudge.URL = "ftp://{server}/" }, "nudge"},
		{"bad nudge gce", func(c *Config) { c.Deploy = []string{"web-1"}; c.Nudge.GCE = "us-central1-a" }, `nudge: GCE "us-central1-a"`},
		{"list with deploy", func(c *Config) { c.List = true; c.Deploy = []string{"web-1"} }, "-list takes only"},
		{"list with create", func(c *Config) { c.List, c.Commit, c.Create = true, "", true }, "-list takes only"},
		{"list with json", func(c *Config) { c.List, c.Commit, c.JSON = true, "", true }, "-list takes only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bucket := "file://" + t.TempDir()
			cfg := testConfig(bucket, "hello", dir)
			tt.edit(&cfg)
			_, err := Run(t.Context(), cfg)
			if !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), tt.say) {
				t.Fatalf("Run = %v, want cli.ErrUsage saying %q", err, tt.say)
			}
		})
	}
}

// TestProgress checks the progress lines (as for a terminal) and the
// summary line.
func TestProgress(t *testing.T) {
	cfg := testConfig("file://"+t.TempDir(), "hello", randomTree(t, 4<<20))
	var progress, summary strings.Builder
	cfg.Progress, cfg.Summary = &progress, &summary
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := progress.String()
	if !strings.HasPrefix(p, "\rrelease: ") || !strings.HasSuffix(p, "\n") || !strings.Contains(p, "100.0%  4.0 MiB of 4.0 MiB read") {
		t.Errorf("progress %q", p)
	}
	s := summary.String()
	if strings.Count(s, "\n") != 1 || !strings.Contains(s, "stored "+res.Name.String()+": 1 file, 4.0 MiB → ") || !strings.Contains(s, res.Meta.SHA256) {
		t.Errorf("summary %q", s)
	}
}
