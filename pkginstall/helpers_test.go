package pkginstall_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"gocloud.dev/blob"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkginstall"
)

// recScript records one line per run: "STEP OPCODE BUILD_ID PWD", to the
// file named by the config value REC, and fails when a file FAIL_{STEP}
// lies beside it (so a package decides which of its steps fail) or when the
// config value FAIL_STEP names the step.
const recScript = `#!/bin/sh
echo "$DEPLOY_STEP $OPCODE $BUILD_ID $(pwd)" >> "$REC"
if [ -e "FAIL_$DEPLOY_STEP" ] || [ "$FAIL_STEP" = "$DEPLOY_STEP" ]; then
	echo "output of the failing $DEPLOY_STEP"
	echo "$DEPLOY_STEP fails on purpose" >&2
	exit 3
fi
`

var allSteps = []string{"PRE_DOWNLOAD", "POST_DOWNLOAD", "PRE_RESTART", "RESTARTING", "POST_RESTART", "STOPPING"}

// app returns the files of a package whose six scripts run recScript, a
// version file and a template.
func app(version string, extra ...string) map[string]string {
	files := map[string]string{
		"version.txt":             version + "\n",
		"teletraan/app.conf.tmpl": "version=" + version + " level={$TELETRAAN_LOG_LEVEL:info} tag=${TELETRAAN_TAG:none}\n",
	}
	for _, s := range allSteps {
		files["teletraan/"+s] = recScript
	}
	for i := 0; i+1 < len(extra); i += 2 {
		files[extra[i]] = extra[i+1]
	}
	return files
}

// entryT is one tar entry of a test archive.
type entryT struct {
	hdr  tar.Header
	body []byte
}

// archive returns files as tar entries, directories first, sorted. Files
// under teletraan/ that are not templates or FAIL_ markers, and files
// starting with #!, are executable.
func archive(files map[string]string) []entryT {
	paths := slices.Sorted(func(yield func(string) bool) {
		for p := range files {
			if !yield(p) {
				return
			}
		}
	})
	dirs := map[string]bool{}
	for _, p := range paths {
		for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	var out []entryT
	mtime := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for _, d := range slices.Sorted(func(yield func(string) bool) {
		for d := range dirs {
			if !yield(d) {
				return
			}
		}
	}) {
		out = append(out, entryT{hdr: tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime}})
	}
	for _, p := range paths {
		mode := int64(0o644)
		base := filepath.Base(p)
		if strings.HasPrefix(p, "teletraan/") && !strings.HasSuffix(p, ".tmpl") && !strings.HasPrefix(base, "FAIL_") || strings.HasPrefix(files[p], "#!") {
			mode = 0o755
		}
		out = append(out, entryT{hdr: tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(files[p])), ModTime: mtime}, body: []byte(files[p])})
	}
	return out
}

// pack writes entries as a compressed tar.
func pack(t testing.TB, format manifest.Format, entries []entryT) []byte {
	t.Helper()
	var buf bytes.Buffer
	var zw io.WriteCloser
	var err error
	if format == manifest.FormatGzip {
		zw = gzip.NewWriter(&buf)
	} else if zw, err = zstd.NewWriter(&buf); err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if len(e.body) > 0 {
			if _, err := tw.Write(e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pkgName returns the name of app's package number seq.
func pkgName(t testing.TB, app string, seq int, format manifest.Format) manifest.PackageName {
	t.Helper()
	built := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Minute)
	name, err := manifest.NewPackageName(app, built, fmt.Sprintf("%012x", 0xabc000000000+seq), false, format)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func meta(name manifest.PackageName) manifest.PackageMeta {
	return manifest.PackageMeta{
		App: name.App, Commit: name.Commit + "0000", Branch: "main", Repo: "https://example.com/" + name.App,
		Built: name.Built, User: "test", Host: "test", Format: name.Format,
	}
}

// release writes data as package name through a PackageWriter (which
// computes and seals the sha256).
func release(t testing.TB, store *blobstore.Store, name manifest.PackageName, data []byte) {
	t.Helper()
	pw, err := store.NewPackageWriter(t.Context(), name, meta(name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Write(data); err != nil {
		pw.Abort()
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
}

// putRaw writes data as package name with metadata whose sha256 is sum,
// bypassing the PackageWriter, to store a package that lies.
func putRaw(t testing.TB, store *blobstore.Store, name manifest.PackageName, data []byte, sum string) {
	t.Helper()
	m := meta(name)
	m.SHA256 = sum
	if err := store.Bucket().WriteAll(t.Context(), blobstore.PackageKey(name), data, &blob.WriterOptions{Metadata: m.Map()}); err != nil {
		t.Fatal(err)
	}
}

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// fixture is one engine on a fresh root and mem:// bucket, with a record
// file the scripts write to.
type fixture struct {
	t     testing.TB
	root  string
	store *blobstore.Store
	rec   string
	cfg   pkginstall.Config
	eng   *pkginstall.Engine
	logs  *logSink
	seen  int // record lines already taken
}

func newFixture(t testing.TB, mod ...func(*pkginstall.Config)) *fixture {
	t.Helper()
	store, err := blobstore.Open(t.Context(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{t: t, root: t.TempDir(), store: store, rec: filepath.Join(t.TempDir(), "rec"), logs: &logSink{}}
	f.cfg = pkginstall.Config{
		Store:       store,
		Server:      "web-1",
		Backoff:     10 * time.Millisecond,
		StepTimeout: 20 * time.Second,
		Logger:      slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mod {
		m(&f.cfg)
	}
	f.open()
	t.Cleanup(func() {
		if f.eng != nil {
			f.eng.Close()
		}
		if t.Failed() && os.Getenv("PKGINSTALL_TEST_LOG") != "" {
			t.Logf("engine log:\n%s", f.logs.String())
		}
	})
	return f
}

func (f *fixture) open() {
	f.t.Helper()
	eng, err := pkginstall.Open(f.root, f.cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.eng = eng
}

// reopen closes the engine and opens a new one on the same root.
func (f *fixture) reopen() {
	f.t.Helper()
	f.eng.Close()
	f.open()
}

// release packs files and releases them as app's package seq.
func (f *fixture) release(appName string, seq int, files map[string]string) manifest.PackageName {
	f.t.Helper()
	name := pkgName(f.t, appName, seq, manifest.FormatZstd)
	release(f.t, f.store, name, pack(f.t, manifest.FormatZstd, archive(files)))
	return name
}

// entry returns an entry for p whose scripts record to f.rec.
func (f *fixture) entry(p manifest.PackageName, kv ...string) manifest.Entry {
	e := manifest.Entry{Package: p, Config: map[string]string{"REC": f.rec}}
	for i := 0; i+1 < len(kv); i += 2 {
		switch kv[i] {
		case "env":
			e.Env = kv[i+1]
		case "on_failure":
			e.OnFailure = manifest.Policy(kv[i+1])
		case "restart":
			e.Restart = kv[i+1]
		default:
			e.Config[kv[i]] = kv[i+1]
		}
	}
	return e
}

func (f *fixture) apply(e manifest.Entry) pkginstall.Result {
	f.t.Helper()
	return f.eng.Apply(f.t.Context(), e)
}

// mustApply applies e and fails the test unless it succeeded.
func (f *fixture) mustApply(e manifest.Entry) pkginstall.Result {
	f.t.Helper()
	r := f.apply(e)
	if r.Err != nil || r.State != manifest.StateServing {
		f.t.Fatalf("apply %s: %+v", e.Package, r)
	}
	return r
}

// steps returns the record lines since the last call, as
// "STEP OPCODE BUILD_ID @ID-of-the-build-the-script-came-from[/env]".
func (f *fixture) steps() []string {
	f.t.Helper()
	data, err := os.ReadFile(f.rec)
	if err != nil && !os.IsNotExist(err) {
		f.t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) == 1 && lines[0] == "" {
		lines = nil
	}
	out := lines[f.seen:]
	f.seen = len(lines)
	var res []string
	for _, l := range out {
		fields := strings.Fields(l)
		if len(fields) != 4 {
			f.t.Fatalf("record line %q", l)
		}
		res = append(res, fields[0]+" "+fields[1]+" "+fields[2]+" "+f.from(fields[3]))
	}
	return res
}

// from maps a script's working directory to "@ID" or "@ID/ENV" of the build
// it lies in.
func (f *fixture) from(dir string) string {
	rel, err := filepath.Rel(filepath.Join(f.root, "envs"), dir)
	if err != nil {
		return dir
	}
	parts := strings.Split(rel, string(filepath.Separator))
	// env/builds/ID/teletraan[/ENV]
	if len(parts) < 4 || parts[1] != "builds" || parts[3] != "teletraan" {
		return dir
	}
	s := "@" + parts[2]
	if len(parts) > 4 {
		s += "/" + strings.Join(parts[4:], "/")
	}
	return s
}

// expect builds the expected step lines: opcode, the build deployed, the
// build the scripts come from, and the steps.
func expect(opcode string, deployed, from manifest.PackageName, steps ...string) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s+" "+opcode+" "+deployed.File()+" @"+from.ID())
	}
	return out
}

func cat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// current returns the build id env's current names, "" for none.
func (f *fixture) current(env string) string {
	target, err := os.Readlink(filepath.Join(f.root, "envs", env, "current"))
	if err != nil {
		return ""
	}
	return filepath.Base(target)
}

// builds lists the entries of env's builds/ (temporary ones included).
func (f *fixture) builds(env string) []string {
	ents, _ := os.ReadDir(filepath.Join(f.root, "envs", env, "builds"))
	var out []string
	for _, de := range ents {
		out = append(out, de.Name())
	}
	return out
}

func (f *fixture) file(env, name string) string {
	f.t.Helper()
	data, err := os.ReadFile(filepath.Join(f.root, "envs", env, "current", name))
	if err != nil {
		f.t.Fatal(err)
	}
	return string(data)
}

// logSink collects log output, safe for concurrent writes.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

const (
	pre  = "PRE_DOWNLOAD"
	post = "POST_DOWNLOAD"
	preR = "PRE_RESTART"
	rest = "RESTARTING"
	posR = "POST_RESTART"
	stop = "STOPPING"
)

func contextWithTimeout(t testing.TB, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}
