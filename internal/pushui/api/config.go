package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/internal/pushui/ops"
	"github.com/pushpull/pushpull/manifest"
)

// apiGetConfig answers GET /api/config: the push config in the bucket,
// with its ETag.
func (s *Handler) apiGetConfig(w http.ResponseWriter, r *http.Request) {
	s.ReloadConfig(r.Context())
	pc := s.Config.Load()
	w.Header().Set("ETag", etag(pc.Version))
	writeRaw(w, http.StatusOK, pc.Conf.Marshal())
}

// apiPutConfig answers PUT /api/config (admins only): replace the push
// config, conditionally on If-Match with the ETag a GET returned. 428
// without it, 412 when the config changed meanwhile, 400 when the body is
// not a valid config; nothing is written in those cases.
func (s *Handler) apiPutConfig(w http.ResponseWriter, r *http.Request) {
	ifMatch := strings.TrimSpace(r.Header.Get("If-Match"))
	if ifMatch == "" {
		WriteError(w, http.StatusPreconditionRequired, "PUT needs If-Match with the ETag from GET /api/config")
		return
	}
	body, err := readBody(w, r, ops.MaxConfigBody)
	if err != nil {
		s.apiBodyError(w, "push config", err)
		return
	}
	c, err := manifest.ParsePushConfig(body)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	_, v, err := s.Fleet.Config(ctx)
	if err != nil && v == "" {
		s.failErrHook(w, r, err)
		return
	}
	if !preconditionHolds(ifMatch, "", v) {
		WriteError(w, http.StatusPreconditionFailed, "the push config changed since it was read: nothing written; GET it again")
		return
	}
	nv, err := s.Fleet.PutConfig(ctx, auth.User(ctx), c, v)
	if errors.Is(err, blobstore.ErrConflict) {
		WriteError(w, http.StatusPreconditionFailed, "the push config changed since it was read: nothing written; GET it again")
		return
	}
	if err != nil {
		s.failErrHook(w, r, err)
		return
	}
	s.Config.Store(ops.NewPushConfig(c, nv))
	w.Header().Set("ETag", etag(nv))
	writeRaw(w, http.StatusOK, c.Marshal())
}
