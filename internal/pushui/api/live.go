package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/internal/fleetview"
)

// liveAge is how old the cache may be when a live page asks whether
// anything changed: pages follow the fleet within about twice this, and a
// fleet nobody watches costs nothing more than -refresh.
const liveAge = time.Second

// apiLive answers GET /api/live[?rollout=group/env/id] with
// {"generation": G}: the generation of what the pages show, after a
// refresh of the cache if it is older than liveAge (one shared refresh,
// reading only what changed). A page whose generation differs loads
// itself again and replaces what changed.
func (s *Handler) apiLive(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := s.View.RefreshIfOlder(ctx, liveAge); err != nil {
		s.failErrHook(w, r, err)
		return
	}
	var v blobstore.Version
	if ref := r.URL.Query().Get("rollout"); ref != "" {
		parts := strings.Split(ref, "/")
		if len(parts) != 3 {
			WriteError(w, http.StatusBadRequest, "rollout: want group/env/id")
			return
		}
		_, ver, err := s.Rollouts.Get(ctx, blobstore.RolloutRef{Group: parts[0], Env: parts[1], ID: parts[2]})
		if err != nil && !errors.Is(err, blobstore.ErrNotFound) {
			s.rolloutFail(w, r, err)
			return
		}
		v = ver
	}
	writeJSON(w, http.StatusOK, client.Live{Generation: fleetview.Generation(s.View.Load(), v)})
}
