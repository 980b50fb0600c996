package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/internal/pushui/ops"
	"github.com/pushpull/pushpull/internal/rollout"
	"github.com/pushpull/pushpull/manifest"
)

type rolloutPage struct {
	page
	*fleetview.RolloutView
	Flash        []string
	FlashWarning string
}

// handleRollout renders one rollout: its state, its steps, the members by
// side and state, and the failing ones with their script's output. The
// page follows the rollout live (liveGeneration).
func (s *Handler) handleRollout(w http.ResponseWriter, r *http.Request) {
	group, env, id := r.PathValue("group"), r.PathValue("env"), r.PathValue("id")
	if err := s.KnownGroup(group); err != nil {
		s.failErr(w, r, err)
		return
	}
	ctx := r.Context()
	rec, v, err := s.Rollouts.Get(ctx, blobstore.RolloutRef{Group: group, Env: env, ID: id})
	switch {
	case errors.Is(err, blobstore.ErrNotFound):
		s.Fail(w, r, http.StatusNotFound, "no rollout "+id+" of group "+group+" env "+env)
		return
	case errors.Is(err, manifest.ErrInvalidName):
		s.failErr(w, r, ops.BadInput("%v", err))
		return
	case err != nil:
		s.failErr(w, r, err)
		return
	}
	s.View.RefreshGroup(ctx, group)
	pg := s.page(r, "rollout "+id)
	pg.Live = fleetview.Generation(s.View.Load(), v)
	pg.LiveRollout = group + "/" + env + "/" + id
	p := &rolloutPage{page: pg, RolloutView: fleetview.BuildRollout(s.View.Load(), rec, pg.Now, s.View.Labels())}
	switch done := r.URL.Query().Get("done"); {
	case done == "start":
		p.Flash = append(p.Flash, "Rollout of "+rec.Strategy.Package.String()+" to group "+rec.Strategy.Group+" started.")
	default:
		if cmd, err := rollout.ParseCommand(done); err == nil {
			p.Flash = append(p.Flash, rolloutFlash(cmd, rec))
		}
	}
	s.render(w, r, http.StatusOK, "rollout", p)
}

// rolloutFlash says what a command did, naming the build.
func rolloutFlash(cmd rollout.Command, rec *manifest.RolloutRecord) string {
	what := rec.Strategy.Package.String()
	switch cmd {
	case rollout.Revert:
		return "Reverted: every member goes back to " + rec.Previous.String() + "."
	case rollout.Promote:
		return "Promoted: every member goes to " + what + " now."
	}
	return "Rollout of " + what + ": " + string(cmd) + " done; it is " + string(rec.State) + "."
}

// handleRolloutCommand runs a button's command and returns to the page.
func (s *Handler) handleRolloutCommand(w http.ResponseWriter, r *http.Request) {
	group, env, id, cmd := r.PathValue("group"), r.PathValue("env"), r.PathValue("id"), r.PathValue("cmd")
	if err := s.KnownGroup(group); err != nil {
		s.failErr(w, r, err)
		return
	}
	c, err := rollout.ParseCommand(cmd)
	if err == nil {
		_, err = s.Rollouts.Command(r.Context(), blobstore.RolloutRef{Group: group, Env: env, ID: id}, c, auth.User(r.Context()))
	}
	if err != nil {
		s.failErr(w, r, ops.RolloutError(err))
		return
	}
	s.View.RefreshGroup(r.Context(), group)
	http.Redirect(w, r, fleetview.RolloutURL(group, env, id)+"?done="+url.QueryEscape(cmd), http.StatusSeeOther)
}

// handleStartRollout starts a rollout from the group page's form: the
// package, and the strategy's main knobs (the rest have their defaults,
// or the group's default strategy from the push config when the form asks
// for it).
func (s *Handler) handleStartRollout(w http.ResponseWriter, r *http.Request) {
	group := r.PathValue("group")
	if err := s.KnownGroup(group); err != nil {
		s.failErr(w, r, err)
		return
	}
	pkg, err := manifest.ParsePackageName(r.PostFormValue("package"))
	if err != nil {
		s.failErr(w, r, ops.BadInput("%v", err))
		return
	}
	st, err := strategyFromForm(r, s.Conf().RolloutFor(group, pkg))
	if err != nil {
		s.failErr(w, r, ops.BadInput("%v", err))
		return
	}
	rec, err := s.Rollouts.Start(r.Context(), st, auth.User(r.Context()))
	if err != nil {
		s.failErr(w, r, ops.RolloutError(err))
		return
	}
	s.View.RefreshGroup(r.Context(), group)
	http.Redirect(w, r, fleetview.RolloutURL(group, rec.Strategy.Env, rec.ID)+"?done=start", http.StatusSeeOther)
}

// strategyFromForm reads the start form's knobs over def, the group's
// default strategy for the package.
func strategyFromForm(r *http.Request, def manifest.RolloutStrategy) (manifest.RolloutStrategy, error) {
	st := def
	var err error
	if v := r.PostFormValue("canary"); v != "" {
		if st.Canary, err = strconv.Atoi(v); err != nil {
			return st, fmt.Errorf("canary %q: want a number of hosts", v)
		}
	}
	if v := strings.TrimSpace(r.PostFormValue("steps")); v != "" {
		st.Steps = nil
		for f := range strings.FieldsFuncSeq(v, func(c rune) bool { return c == ',' || c == ' ' || c == '%' }) {
			n, err := strconv.ParseFloat(f, 64)
			if err != nil {
				return st, fmt.Errorf("steps %q: want percentages such as 10, 50, 100", v)
			}
			st.Steps = append(st.Steps, n)
		}
	}
	if v := r.PostFormValue("min_healthy_time"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return st, fmt.Errorf("min_healthy_time %q: want a duration such as 30s", v)
		}
		st.MinHealthyTime = manifest.Duration(d)
	}
	st.AutoRevert = st.AutoRevert || r.PostFormValue("auto_revert") == "on"
	st.PauseAfterCanary = st.PauseAfterCanary || r.PostFormValue("pause_after_canary") == "on"
	st.StageFirst = st.StageFirst || r.PostFormValue("stage_first") == "on"
	return st, nil
}
