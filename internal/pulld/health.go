package pulld

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

// health runs the health checks of the envs that serve an entry with one
// (manifest.Health), each in a goroutine of its own, and keeps their
// outcomes for status. Its methods are safe for concurrent use: the loop
// syncs it after each reconcile, the checks report to it, snapshot reads it.
type health struct {
	ctx    context.Context // the checks' lifetime; nil: no checks (once, terminate)
	dir    func(env string) string
	nudge  func() // asks for a status write: called when an env's health flips
	client *http.Client

	mu     sync.Mutex
	checks map[string]*healthCheck // by env
	state  map[string]healthState  // by env
}

// healthCheck is one env's running check; key names what it checks, so
// that a change of the entry's check or serving package restarts it.
type healthCheck struct {
	key    string
	cancel context.CancelFunc
}

// healthState is an env's last outcome.
type healthState struct {
	healthy bool
	since   time.Time // when it last became healthy
	err     string
}

func newHealth(ctx context.Context, dir func(string) string, nudge func()) *health {
	return &health{ctx: ctx, dir: dir, nudge: nudge, client: &http.Client{},
		checks: map[string]*healthCheck{}, state: map[string]healthState{}}
}

// sync runs a check for every env of want (env → its entry, whose package
// serves) whose entry has one, and stops the others.
func (h *health) sync(want map[string]manifest.Entry) {
	if h == nil || h.ctx == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for env, c := range h.checks {
		e, ok := want[env]
		if !ok || e.Health == nil || c.key != healthKey(e) {
			c.cancel()
			delete(h.checks, env)
			delete(h.state, env)
		}
	}
	for env, e := range want {
		if e.Health == nil || h.checks[env] != nil {
			continue
		}
		ctx, cancel := context.WithCancel(h.ctx)
		h.checks[env] = &healthCheck{key: healthKey(e), cancel: cancel}
		go h.run(ctx, env, *e.Health)
	}
}

func healthKey(e manifest.Entry) string {
	return fmt.Sprintf("%s %+v", e.Package, *e.Health)
}

// run checks env every period until ctx ends, recording each outcome.
func (h *health) run(ctx context.Context, env string, spec manifest.Health) {
	t := time.NewTicker(spec.Period())
	defer t.Stop()
	for {
		err := h.check(ctx, env, spec)
		if ctx.Err() != nil {
			return
		}
		h.record(env, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check runs one check of env, bounded by the spec's timeout.
func (h *health) check(ctx context.Context, env string, spec manifest.Health) error {
	ctx, cancel := context.WithTimeout(ctx, spec.Limit())
	defer cancel()
	if spec.HTTP != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, spec.HTTP, nil)
		if err != nil {
			return err
		}
		resp, err := h.client.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", spec.HTTP, context.Cause(ctx))
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("GET %s: %s", spec.HTTP, resp.Status)
		}
		return nil
	}
	dir := h.dir(env)
	cmd := exec.CommandContext(ctx, filepath.Join(dir, filepath.FromSlash(spec.Exec)))
	cmd.Dir = dir
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: timed out after %v", spec.Exec, spec.Limit())
		}
		return fmt.Errorf("%s: %w", spec.Exec, err)
	}
	return nil
}

// record keeps env's outcome and asks for a status write when its health
// flipped (or is first known).
func (h *health) record(env string, err error) {
	h.mu.Lock()
	if h.checks[env] == nil {
		h.mu.Unlock()
		return // stopped meanwhile
	}
	old, known := h.state[env]
	st := healthState{healthy: err == nil, since: old.since}
	if err != nil {
		st.err = err.Error()
		st.since = time.Time{}
	} else if !old.healthy || !known {
		st.since = time.Now().UTC()
	}
	h.state[env] = st
	flipped := !known || old.healthy != st.healthy
	h.mu.Unlock()
	if flipped {
		h.nudge()
	}
}

// fill sets es's health fields from env's last outcome, if any.
func (h *health) fill(es *manifest.EnvStatus) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.state[es.Env]
	if !ok {
		return
	}
	healthy := st.healthy
	es.Healthy, es.HealthySince, es.HealthError = &healthy, st.since, st.err
}
