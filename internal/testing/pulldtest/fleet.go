package pulldtest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

// FleetMarkFile is the file, in envs/{env}/ of a host's root, that
// FleetApp's RESTARTING script writes the build id to.
const FleetMarkFile = "restarted"

// fleetScript is FleetApp's only script: one fork, one small write.
const fleetScript = `#!/bin/sh
echo "$BUILD_ID" > "$BUILDS_DIR/../` + FleetMarkFile + `"
`

// FleetApp returns the files of the smallest app worth deploying to a
// thousand simulated hosts on one machine: a version file and a RESTARTING
// script that writes BUILD_ID to envs/{env}/restarted (FleetMarkFile) under
// the host's root. It has no other script, so a deploy forks once.
func FleetApp(version string) map[string]string {
	return map[string]string{
		"version.txt":          version + "\n",
		"teletraan/RESTARTING": fleetScript,
	}
}

// Tracker is a slog.Handler for one pulld's Config.Logger that follows
// what a fleet benchmark needs to know without asking the host anything:
// what triggered each reconcile (the "reconcile" record's trigger: "poll",
// or the nudge source, such as "pubsub-mem") and when each package first
// came to serve (the "action done" record with state SERVING_BUILD), which
// is when pkginstall recorded it serving, just before pulld writes its
// status. It keeps no log text but the last few warnings and errors, so a
// thousand of them cost little. Its methods are safe for concurrent use.
type Tracker struct {
	mu       sync.Mutex
	started  bool              // pulld logged that it started
	trigger  string            // of the reconcile under way
	triggers map[string]int    // reconciles per trigger
	served   map[string]Served // package → when it first served
	problems []string          // last warnings and errors
	notify   func()
}

// Served says when a package first came to serve on a host and what
// triggered the reconcile that deployed it.
type Served struct {
	At      time.Time
	Trigger string
}

// trackerProblems is how many warnings and errors a Tracker keeps.
const trackerProblems = 5

// NewTracker returns a Tracker that calls notify (when not nil) each time
// a package first serves. notify must not block.
func NewTracker(notify func()) *Tracker {
	return &Tracker{triggers: map[string]int{}, served: map[string]Served{}, notify: notify}
}

// Enabled accepts every level: the reconcile record is a debug one.
func (t *Tracker) Enabled(context.Context, slog.Level) bool { return true }

// WithAttrs returns t: the records it reads carry their own attributes.
func (t *Tracker) WithAttrs([]slog.Attr) slog.Handler { return t }

// WithGroup returns t.
func (t *Tracker) WithGroup(string) slog.Handler { return t }

// Handle looks at one record.
func (t *Tracker) Handle(_ context.Context, r slog.Record) error {
	switch {
	case r.Message == "pulld started":
		t.mu.Lock()
		t.started = true
		t.mu.Unlock()
	case r.Message == "reconcile":
		trigger := attr(r, "trigger")
		t.mu.Lock()
		t.trigger = trigger
		t.triggers[trigger]++
		t.mu.Unlock()
	case r.Message == "action done" && attr(r, "state") == string(manifest.StateServing):
		pkg := attr(r, "serving")
		t.mu.Lock()
		_, seen := t.served[pkg]
		if !seen {
			t.served[pkg] = Served{At: r.Time, Trigger: t.trigger}
		}
		t.mu.Unlock()
		if !seen && t.notify != nil {
			t.notify()
		}
	case r.Level >= slog.LevelWarn:
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String())
			return true
		})
		t.mu.Lock()
		if len(t.problems) == trackerProblems {
			t.problems = t.problems[1:]
		}
		t.problems = append(t.problems, b.String())
		t.mu.Unlock()
	}
	return nil
}

// attr returns the value of r's attribute key as a string, "" when absent.
func attr(r slog.Record, key string) string {
	v := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// Started reports whether pulld has logged that it started: its nudge
// sources are then being opened.
func (t *Tracker) Started() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.started
}

// Served returns when pkg (a package name's String) first served, and
// whether it has.
func (t *Tracker) Served(pkg string) (Served, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.served[pkg]
	return s, ok
}

// Triggers returns how many reconciles each trigger started so far.
func (t *Tracker) Triggers() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := make(map[string]int, len(t.triggers))
	for k, v := range t.triggers {
		m[k] = v
	}
	return m
}

// Problems returns the last few warnings and errors logged, oldest first.
func (t *Tracker) Problems() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.problems...)
}
