package pushui

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pushpull/pushpull/blobstore"
)

// liveAge is how old the cache may be when a live page asks whether
// anything changed: pages follow the fleet within about twice this, and a
// fleet nobody watches costs nothing more than -refresh.
const liveAge = time.Second

// liveGeneration names what a page shows: the cache's generation and, for
// a rollout page, its record's version. It changes when they do, and not
// on a heartbeat.
func liveGeneration(st *state, rollout blobstore.Version) string {
	g := strconv.FormatUint(st.gen, 10)
	if rollout != "" {
		g += "-" + strings.Trim(string(rollout), `"`)
	}
	return g
}

// apiLive answers GET /api/live[?rollout=group/env/id] with
// {"generation": G}: the generation of what the pages show, after a
// refresh of the cache if it is older than liveAge (one shared refresh,
// reading only what changed). A page whose generation differs loads
// itself again and replaces what changed.
func (s *apiHandler) apiLive(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := s.cache.refreshIfOlder(ctx, liveAge); err != nil {
		s.failErrHook(w, r, err)
		return
	}
	var v blobstore.Version
	if ref := r.URL.Query().Get("rollout"); ref != "" {
		parts := strings.Split(ref, "/")
		if len(parts) != 3 {
			writeAPIError(w, http.StatusBadRequest, "rollout: want group/env/id")
			return
		}
		_, ver, err := s.rollouts.Get(ctx, blobstore.RolloutRef{Group: parts[0], Env: parts[1], ID: parts[2]})
		if err != nil && !errors.Is(err, blobstore.ErrNotFound) {
			s.rolloutFail(w, r, err)
			return
		}
		v = ver
	}
	writeJSON(w, http.StatusOK, map[string]string{"generation": liveGeneration(s.cache.load(), v)})
}
