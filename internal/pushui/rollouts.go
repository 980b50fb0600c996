package pushui

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/rollout"
	"github.com/pushpull/pushpull/manifest"
)

// DefaultRolloutTick is how often pushui drives its rollouts by default
// (Options.RolloutTick). A replica holds a rollout's lease for six ticks,
// so another takes over within half a minute of its death.
const DefaultRolloutTick = 5 * time.Second

// rolloutTick returns opts' tick, or the default.
func (opts Options) rolloutTick() time.Duration {
	if opts.RolloutTick > 0 {
		return opts.RolloutTick
	}
	return DefaultRolloutTick
}

// newDriver returns the rollout driver of s: its members come from the
// cache, refreshed once per tick that moves a rollout (reading only what
// changed), and not at all while none runs.
func (s *service) newDriver(store *blobstore.Store, tick time.Duration) *rollout.Driver {
	host, _ := os.Hostname()
	return &rollout.Driver{
		Store:   store,
		Fleet:   s.fleet,
		Holder:  "pushui@" + host + "/" + strconv.Itoa(os.Getpid()),
		Lease:   6 * tick,
		Now:     s.now,
		Log:     s.log,
		Refresh: func(ctx context.Context) error { return s.cache.refresh(ctx) },
		Members: func(ctx context.Context, group string) ([]rollout.Member, error) {
			st, now := s.cache.load(), s.now()
			var out []rollout.Member
			for _, name := range st.members(group) {
				ss := st.servers[name]
				out = append(out, rollout.Member{Name: name, Status: ss.Status, Stale: ss.Status.Stale(now)})
			}
			return out, nil
		},
	}
}

// DriveRollouts drives the bucket's rollouts until ctx ends, one move
// every Options.RolloutTick (Driver.Tick: one pushui replica at a time
// drives each rollout, under a lease). Run calls it; it returns when ctx
// ends.
func (s *Server) DriveRollouts(ctx context.Context) { s.svc.rollouts.Run(ctx, s.svc.rolloutTick) }

// every calls fn every d until ctx ends, and then returns.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// apiStartRollout answers POST /api/rollouts: start a rollout of the body's
// strategy (manifest.RolloutStrategy), whose fields left out take the
// group's default from the push config's rollouts, else the built-in
// defaults. 201 with the record; 409 when the group env has an active
// rollout; 400 for a bad strategy or one the push config refuses.
func (s *apiHandler) apiStartRollout(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "rollout strategy: "+err.Error())
		return
	}
	var target struct {
		Group   string               `json:"group"`
		Package manifest.PackageName `json:"package"`
	}
	if err := json.Unmarshal(body, &target); err != nil {
		writeAPIError(w, http.StatusBadRequest, "rollout strategy: "+err.Error())
		return
	}
	if err := s.knownGroup(target.Group); err != nil {
		s.failErrHook(w, r, err)
		return
	}
	st, err := s.conf().RolloutFor(target.Group, target.Package).Decode(body)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "rollout strategy: "+err.Error())
		return
	}
	rec, err := s.rollouts.Start(r.Context(), st, userOf(r.Context()))
	if err != nil {
		s.rolloutFail(w, r, err)
		return
	}
	s.cache.refreshGroup(r.Context(), st.Group)
	writeJSON(w, http.StatusCreated, rec)
}

// rolloutsPage is how many records GET /api/rollouts returns by default.
const rolloutsPage = 50

// apiRollouts answers GET /api/rollouts[?group=][&limit=N][&after=CURSOR]:
// a page of records, newest first (at most limit, default 50, at most
// blobstore.MaxRolloutsPage), and "next", the cursor of the next page when
// there is one. A record that is invalid is listed in state "invalid" with
// the reason.
func (s *apiHandler) apiRollouts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := rolloutsPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > blobstore.MaxRolloutsPage {
			writeAPIError(w, http.StatusBadRequest, "limit "+strconv.Quote(v)+": want a number from 1 to "+strconv.Itoa(blobstore.MaxRolloutsPage))
			return
		}
		limit = n
	}
	recs, next, err := s.rollouts.List(r.Context(), q.Get("group"), q.Get("after"), limit)
	if err != nil {
		s.rolloutFail(w, r, err)
		return
	}
	out := map[string]any{"rollouts": recs}
	if next != "" {
		out["next"] = next
	}
	writeJSON(w, http.StatusOK, out)
}

// apiRollout answers GET /api/rollouts/{group}/{env}/{id}: the record (in
// state "invalid", with the reason, when it is).
func (s *apiHandler) apiRollout(w http.ResponseWriter, r *http.Request) {
	rec, _, err := s.rollouts.Get(r.Context(), pathRollout(r))
	if err != nil {
		s.rolloutFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// apiRolloutCommand answers POST /api/rollouts/{group}/{env}/{id}/{cmd}:
// pause, resume, promote, abort or revert (Driver.Command).
func (s *apiHandler) apiRolloutCommand(w http.ResponseWriter, r *http.Request) {
	cmd, err := rollout.ParseCommand(r.PathValue("cmd"))
	var rec *manifest.RolloutRecord
	if err == nil {
		rec, err = s.rollouts.Command(r.Context(), pathRollout(r), cmd, userOf(r.Context()))
	}
	if err != nil {
		s.rolloutFail(w, r, err)
		return
	}
	s.cache.refreshGroup(r.Context(), r.PathValue("group"))
	writeJSON(w, http.StatusOK, rec)
}

// pathRollout is the rollout a request's path names.
func pathRollout(r *http.Request) blobstore.RolloutRef {
	return blobstore.RolloutRef{Group: r.PathValue("group"), Env: r.PathValue("env"), ID: r.PathValue("id")}
}

// rolloutFail answers a rollout error with the status its kind calls for
// (rolloutError).
func (s *apiHandler) rolloutFail(w http.ResponseWriter, r *http.Request, err error) {
	s.failErrHook(w, r, rolloutError(err))
}
