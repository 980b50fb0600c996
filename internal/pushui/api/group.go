package api

import (
	"net/http"

	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/manifest"
)

// pathTarget returns the manifest a request's path names, {server} or
// {group}, after checking that pushui knows it.
func (s *Handler) pathTarget(r *http.Request) (manifest.Target, error) {
	if g := r.PathValue("group"); g != "" {
		return manifest.Group(g), s.KnownGroup(g)
	}
	server := r.PathValue("server")
	return manifest.Server(server), s.KnownServer(server)
}

// apiGroups answers GET /api/groups: every group pushui knows (configured,
// with a manifest, or reported by a host) with its members counted by
// state, from the cache.
func (s *Handler) apiGroups(w http.ResponseWriter, r *http.Request) {
	out := client.Groups{AsOf: s.View.Load().AsOf, Groups: fleetview.Summaries(s.View.Load(), s.Conf(), s.Now(), s.View.Labels())}
	writeJSON(w, http.StatusOK, out)
}
