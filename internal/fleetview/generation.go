package fleetview

import (
	"strconv"
	"strings"

	"github.com/pushpull/pushpull/blobstore"
)

// Generation names what a page shows: the cache's generation and, for
// a rollout page, its record's version. It changes when they do, and not
// on a heartbeat.
func Generation(st *State, rollout blobstore.Version) string {
	g := strconv.FormatUint(st.gen, 10)
	if rollout != "" {
		g += "-" + strings.Trim(string(rollout), `"`)
	}
	return g
}
