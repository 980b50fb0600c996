package pkginstall_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
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

// putRaw writes data as package name with metadata whose sha256 is sum,
// bypassing the PackageWriter, to store a package that lies.
func putRaw(t testing.TB, store *blobstore.Store, name manifest.PackageName, data []byte, sum string) {
	t.Helper()
	m := deploytest.Meta(name)
	m.SHA256 = sum
	if err := store.Bucket().WriteAll(t.Context(), blobstore.PackageKey(name), data, &blob.WriterOptions{Metadata: m.Map()}); err != nil {
		t.Fatal(err)
	}
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
	return newFixtureOn(t, store, mod...)
}

// newFixtureOn is newFixture on store, which the caller closes: a file://
// bucket lets a helper process read the same packages.
func newFixtureOn(t testing.TB, store *blobstore.Store, mod ...func(*pkginstall.Config)) *fixture {
	t.Helper()
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

// release builds files as app's package seq (see deploytest.Build).
func (f *fixture) release(appName string, seq int, files map[string]string) manifest.PackageName {
	f.t.Helper()
	return deploytest.Build(f.t, f.store, appName, seq, files)
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
