// Package pulldtest has what pulld's end-to-end tests and benchmarks share:
// real packages with real Teletraan scripts written into a real bucket, and
// an HTTP proxy in front of a bucket server that counts requests and bytes
// and can be switched to answer 500.
package pulldtest

import (
	"archive/tar"
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

// Steps are the six Teletraan scripts, in deploy order, STOPPING last.
var Steps = []string{"PRE_DOWNLOAD", "POST_DOWNLOAD", "PRE_RESTART", "RESTARTING", "POST_RESTART", "STOPPING"}

// StepsLogKey is the config key naming the file the scripts of StepsApp
// append to; NotifyKey, when set, names a FIFO that RESTARTING writes one
// line to ("BUILD_ID DEPLOY_ID $RESTART_TAG"), so a benchmark can time it
// without polling.
const (
	StepsLogKey = "STEPS_LOG"
	NotifyKey   = "NOTIFY_FIFO"
)

// stepScript appends "STEP OPCODE BUILD_ID DEPLOY_ID" to $STEPS_LOG and,
// for RESTARTING, signals $NOTIFY_FIFO.
const stepScript = `#!/bin/sh
set -e
echo "$DEPLOY_STEP $OPCODE $BUILD_ID" >> "$STEPS_LOG"
if [ "$DEPLOY_STEP" = RESTARTING ] && [ -n "$NOTIFY_FIFO" ]; then
	echo "$BUILD_ID $DEPLOY_ID $RESTART_TAG" > "$NOTIFY_FIFO"
fi
if [ -f "$FAIL_FILE" ] && grep -qx "$DEPLOY_STEP $BUILD_ID" "$FAIL_FILE"; then
	echo "failing $DEPLOY_STEP on purpose" >&2
	exit 3
fi
`

// StepsApp returns the files of a tiny app whose six scripts log each step
// (see StepLog), plus a version file holding version.
func StepsApp(version string) map[string]string {
	files := map[string]string{"version.txt": version + "\n"}
	for _, s := range Steps {
		files["teletraan/"+s] = stepScript
	}
	return files
}

// Build writes a package of app into store, built at built from a commit
// derived from seq, with files (path → content; scripts under teletraan/
// are made executable), as tar.zst. It returns the package's name.
func Build(t testing.TB, store *blobstore.Store, app string, seq int, files map[string]string) manifest.PackageName {
	t.Helper()
	built := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Minute)
	commit := fmt.Sprintf("%012x", 0xabc000000000+seq)
	name, err := manifest.NewPackageName(app, built, commit, false, manifest.FormatZstd)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := store.NewPackageWriter(t.Context(), name, manifest.PackageMeta{
		App: app, Commit: commit, Branch: "main", Repo: "https://example.com/" + app,
		Built: built, User: "test", Host: "test", Note: "pulldtest",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeTarZst(pw, files); err != nil {
		pw.Abort()
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	return name
}

// writeTarZst writes files as a zstd-compressed tar to w, directories
// first, in sorted order.
func writeTarZst(w io.Writer, files map[string]string) error {
	zw, err := zstd.NewWriter(w)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	paths := make([]string, 0, len(files))
	dirs := map[string]bool{}
	for p := range files {
		paths = append(paths, p)
		for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	slices.Sort(paths)
	var dirList []string
	for d := range dirs {
		dirList = append(dirList, d)
	}
	slices.Sort(dirList)
	mtime := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for _, d := range dirList {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime}); err != nil {
			return err
		}
	}
	for _, p := range paths {
		mode := int64(0o644)
		if strings.HasPrefix(p, "teletraan/") && !strings.HasSuffix(p, ".tmpl") || strings.HasPrefix(files[p], "#!") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(files[p])), ModTime: mtime}); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, files[p]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// StepLog is the file StepsApp's scripts append to: one line per script
// run, "STEP OPCODE BUILD_ID".
type StepLog struct {
	Path string
	mu   sync.Mutex
	read int // lines already returned by Take
}

// NewStepLog returns a step log in a new temporary directory.
func NewStepLog(t testing.TB) *StepLog {
	return &StepLog{Path: filepath.Join(t.TempDir(), "steps.log")}
}

// Lines returns every line logged so far.
func (l *StepLog) Lines(t testing.TB) []string {
	t.Helper()
	data, err := os.ReadFile(l.Path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// Take returns the lines logged since the last Take.
func (l *StepLog) Take(t testing.TB) []string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.Lines(t)
	out := lines[l.read:]
	l.read = len(lines)
	return out
}

// Config returns the config values that make StepsApp's scripts log here.
func (l *StepLog) Config() map[string]string {
	return map[string]string{StepsLogKey: l.Path}
}

// Expect returns the step-log lines of running steps with opcode on p.
func Expect(p manifest.PackageName, opcode string, steps ...string) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s+" "+opcode+" "+p.File())
	}
	return out
}
