package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/internal/pushui/ops"
	"github.com/pushpull/pushpull/internal/rollout"
	"github.com/pushpull/pushpull/manifest"
)

// apiStartRollout answers POST /api/rollouts: start a rollout of the body's
// strategy (manifest.RolloutStrategy), whose fields left out take the
// group's default from the push config's rollouts, else the built-in
// defaults. 201 with the record; 409 when the group env has an active
// rollout; 400 for a bad strategy or one the push config refuses.
func (s *Handler) apiStartRollout(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		WriteError(w, http.StatusBadRequest, "rollout strategy: "+err.Error())
		return
	}
	var target struct {
		Group   string               `json:"group"`
		Package manifest.PackageName `json:"package"`
	}
	if err := json.Unmarshal(body, &target); err != nil {
		WriteError(w, http.StatusBadRequest, "rollout strategy: "+err.Error())
		return
	}
	if err := s.KnownGroup(target.Group); err != nil {
		s.failErrHook(w, r, err)
		return
	}
	st, err := s.Conf().RolloutFor(target.Group, target.Package).Decode(body)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "rollout strategy: "+err.Error())
		return
	}
	rec, err := s.Rollouts.Start(r.Context(), st, auth.User(r.Context()))
	if err != nil {
		s.rolloutFail(w, r, err)
		return
	}
	s.View.RefreshGroup(r.Context(), st.Group)
	writeJSON(w, http.StatusCreated, rec)
}

// rolloutsPage is how many records GET /api/rollouts returns by default.
const rolloutsPage = 50

// apiRollouts answers GET /api/rollouts[?group=][&limit=N][&after=CURSOR]:
// a page of records, newest first (at most limit, default 50, at most
// blobstore.MaxRolloutsPage), and "next", the cursor of the next page when
// there is one. A record that is invalid is listed in state "invalid" with
// the reason.
func (s *Handler) apiRollouts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := rolloutsPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > blobstore.MaxRolloutsPage {
			WriteError(w, http.StatusBadRequest, "limit "+strconv.Quote(v)+": want a number from 1 to "+strconv.Itoa(blobstore.MaxRolloutsPage))
			return
		}
		limit = n
	}
	recs, next, err := s.Rollouts.List(r.Context(), q.Get("group"), q.Get("after"), limit)
	if err != nil {
		s.rolloutFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, client.RolloutPage{Rollouts: recs, Next: next})
}

// maxRolloutWait bounds ?wait= on GET /api/rollouts/{id}: under the
// server's write timeout, and short enough that a client notices a
// pushui that went away.
const maxRolloutWait = time.Minute

// rolloutPoll is how often a waiting GET reads the record again.
const rolloutPoll = time.Second

// apiRollout answers GET /api/rollouts/{id} (and the long form
// /api/rollouts/{group}/{env}/{id}): the record (in state "invalid", with
// the reason, when it is), its version as ETag. With ?wait=D (at most a
// minute) and If-None-Match: ETAG it is a long poll: the answer comes when
// the record's version is no longer ETAG, or after D with the record as it
// is — so a client follows a rollout with one request per change rather
// than one per second.
func (s *Handler) apiRollout(w http.ResponseWriter, r *http.Request) {
	ref, err := s.pathRollout(r)
	if err != nil {
		s.rolloutFail(w, r, err)
		return
	}
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			WriteError(w, http.StatusBadRequest, "wait "+strconv.Quote(v)+": want a duration such as 30s")
			return
		}
		wait = min(wait, maxRolloutWait)
	}
	seen := strings.TrimSpace(r.Header.Get("If-None-Match"))
	ctx := r.Context()
	deadline := time.Now().Add(wait)
	for {
		rec, v, err := s.Rollouts.Get(ctx, ref)
		if err != nil {
			s.rolloutFail(w, r, err)
			return
		}
		if seen == "" || etag(v) != seen || !time.Now().Before(deadline) {
			if v != "" {
				w.Header().Set("ETag", etag(v))
			}
			writeJSON(w, http.StatusOK, rec)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(rolloutPoll, time.Until(deadline))):
		}
	}
}

// apiRolloutCommand answers POST /api/rollouts/{id}/{cmd} (and the long
// form /api/rollouts/{group}/{env}/{id}/{cmd}): pause, resume, promote,
// abort or revert (Driver.Command).
func (s *Handler) apiRolloutCommand(w http.ResponseWriter, r *http.Request) {
	ref, err := s.pathRollout(r)
	var cmd rollout.Command
	if err == nil {
		cmd, err = rollout.ParseCommand(r.PathValue("cmd"))
	}
	var rec *manifest.RolloutRecord
	if err == nil {
		rec, err = s.Rollouts.Command(r.Context(), ref, cmd, auth.User(r.Context()))
	}
	if err != nil {
		s.rolloutFail(w, r, err)
		return
	}
	s.View.RefreshGroup(r.Context(), ref.Group)
	writeJSON(w, http.StatusOK, rec)
}

// pathRollout is the rollout a request's path names: by its id alone
// (found through the id's claim, blobstore.FindRollout), or in the long
// form with its group and env.
func (s *Handler) pathRollout(r *http.Request) (blobstore.RolloutRef, error) {
	if r.PathValue("group") == "" {
		return s.Rollouts.Find(r.Context(), r.PathValue("id"))
	}
	return blobstore.RolloutRef{Group: r.PathValue("group"), Env: r.PathValue("env"), ID: r.PathValue("id")}, nil
}

// rolloutFail answers a rollout error with the status its kind calls for
// (rolloutError).
func (s *Handler) rolloutFail(w http.ResponseWriter, r *http.Request, err error) {
	s.failErrHook(w, r, ops.RolloutError(err))
}
