// Package pulldtest has what pulld's end-to-end tests and benchmarks share:
// apps whose real Teletraan scripts report what ran (StepsApp with its
// StepLog, FleetApp), a client of a running pulld's HTTP API, helpers that
// write manifests and wait for a status, and a Tracker that follows a
// fleet of pulld instances through their logs. The packages themselves are
// built with deploytest.Build, which pkginstall's tests share, and faults
// are put between pulld and its bucket with deploytest.Proxy.
package pulldtest

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
)

// Steps are the six Teletraan scripts, in deploy order, STOPPING last.
var Steps = pkgformat.Scripts()

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
