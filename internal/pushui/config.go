package pushui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

// pushConfig is the push config in force, as last read from the bucket.
// Immutable once published.
type pushConfig struct {
	conf    *manifest.PushConfig
	version blobstore.Version
}

func newPushConfig(c *manifest.PushConfig, v blobstore.Version) *pushConfig {
	return &pushConfig{conf: c, version: v}
}

// conf returns the push config in force. Callers must not modify it.
func (s *service) conf() *manifest.PushConfig { return s.pc.Load().conf }

// bootstrapConfig loads the bucket's push config, first writing boot there
// (write-if-absent) when the bucket holds none. A bucket that already holds
// a config different from boot keeps its own, with a warning.
func (s *service) bootstrapConfig(ctx context.Context, boot *manifest.PushConfig) error {
	c, v, err := s.fleet.Config(ctx)
	if err != nil {
		return fmt.Errorf("pushui: push config in the bucket: %w", err)
	}
	switch {
	case c == nil && boot == nil:
		return fmt.Errorf("pushui: no push config in the bucket (%s): give -config FILE to write one", blobstore.PushConfigKey)
	case c == nil:
		v, err = s.fleet.PutConfig(ctx, "pushui -config", boot, "")
		if errors.Is(err, blobstore.ErrConflict) {
			return s.bootstrapConfig(ctx, boot) // another replica wrote it first
		}
		if err != nil {
			return fmt.Errorf("pushui: write the push config to the bucket: %w", err)
		}
		s.log.Info("push config written to the bucket", "key", blobstore.PushConfigKey, "servers", len(boot.Servers))
		c = boot
	case boot != nil && string(boot.Marshal()) != string(c.Marshal()):
		s.log.Warn("the bucket holds a different push config than -config; using the bucket's (edit it at /config or with PUT /api/config)", "key", blobstore.PushConfigKey)
	}
	s.pc.Store(newPushConfig(c, v))
	return nil
}

// reloadConfig follows the bucket's push config: one small request when it
// is unchanged. A config that vanished or became invalid is logged and the
// last good one kept for the pages (fleet refuses writes meanwhile).
func (s *service) reloadConfig(ctx context.Context) {
	c, v, err := s.fleet.Config(ctx)
	cur := s.pc.Load()
	switch {
	case err != nil:
		s.log.Warn("push config unusable; showing the last good one", "key", blobstore.PushConfigKey, "err", err)
	case c == nil:
		s.log.Warn("push config missing from the bucket; showing the last one", "key", blobstore.PushConfigKey)
	case v != cur.version:
		s.pc.Store(newPushConfig(c, v))
		s.log.Info("push config reloaded", "servers", len(c.Servers))
	}
}

// maxConfigBody bounds a PUT or posted push config: the bucket's bound on
// every document.
const maxConfigBody = blobstore.MaxDocumentSize

// apiGetConfig answers GET /api/config: the push config in the bucket,
// with its ETag.
func (s *apiHandler) apiGetConfig(w http.ResponseWriter, r *http.Request) {
	s.reloadConfig(r.Context())
	pc := s.pc.Load()
	w.Header().Set("ETag", etag(pc.version))
	writeRaw(w, http.StatusOK, pc.conf.Marshal())
}

// apiPutConfig answers PUT /api/config (admins only): replace the push
// config, conditionally on If-Match with the ETag a GET returned. 428
// without it, 412 when the config changed meanwhile, 400 when the body is
// not a valid config; nothing is written in those cases.
func (s *apiHandler) apiPutConfig(w http.ResponseWriter, r *http.Request) {
	ifMatch := strings.TrimSpace(r.Header.Get("If-Match"))
	if ifMatch == "" {
		writeAPIError(w, http.StatusPreconditionRequired, "PUT needs If-Match with the ETag from GET /api/config")
		return
	}
	body, err := readBody(w, r, maxConfigBody)
	if err != nil {
		s.apiBodyError(w, "push config", err)
		return
	}
	c, err := manifest.ParsePushConfig(body)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	_, v, err := s.fleet.Config(ctx)
	if err != nil && v == "" {
		s.failErrHook(w, r, err)
		return
	}
	if !preconditionHolds(ifMatch, "", v) {
		writeAPIError(w, http.StatusPreconditionFailed, "the push config changed since it was read: nothing written; GET it again")
		return
	}
	nv, err := s.fleet.PutConfig(ctx, userOf(ctx), c, v)
	if errors.Is(err, blobstore.ErrConflict) {
		writeAPIError(w, http.StatusPreconditionFailed, "the push config changed since it was read: nothing written; GET it again")
		return
	}
	if err != nil {
		s.failErrHook(w, r, err)
		return
	}
	s.pc.Store(newPushConfig(c, nv))
	w.Header().Set("ETag", etag(nv))
	writeRaw(w, http.StatusOK, c.Marshal())
}

type configPage struct {
	page
	Key, Text, Version, Error string
	Conflict, Saved           bool
	History                   []*manifest.AuditRecord
}

// handleConfigPage shows the push config, editable by admins, with its
// history.
func (s *webUI) handleConfigPage(w http.ResponseWriter, r *http.Request) {
	s.reloadConfig(r.Context())
	pc := s.pc.Load()
	p := &configPage{page: s.page(r, "push config"), Key: blobstore.PushConfigKey, Text: string(pc.conf.Marshal()), Version: string(pc.version), Saved: r.URL.Query().Get("saved") == "1"}
	s.renderConfig(w, r, http.StatusOK, p)
}

func (s *webUI) renderConfig(w http.ResponseWriter, r *http.Request, code int, p *configPage) {
	p.History, _ = s.fleet.ConfigHistory(r.Context(), 20)
	s.render(w, r, code, "config", p)
}

// handleConfigSave saves the posted push config if the bucket's is still
// the one the page showed.
func (s *webUI) handleConfigSave(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	text := r.PostFormValue("config")
	p := &configPage{page: s.page(r, "push config"), Key: blobstore.PushConfigKey, Text: text, Version: r.PostFormValue("version")}
	if len(text) > maxConfigBody {
		p.Error = fmt.Sprintf("the push config is larger than %d bytes", maxConfigBody)
		s.renderConfig(w, r, http.StatusRequestEntityTooLarge, p)
		return
	}
	c, err := manifest.ParsePushConfig([]byte(text))
	if err != nil {
		p.Error = err.Error()
		s.renderConfig(w, r, http.StatusBadRequest, p)
		return
	}
	nv, err := s.fleet.PutConfig(ctx, userOf(ctx), c, blobstore.Version(p.Version))
	if errors.Is(err, blobstore.ErrConflict) {
		s.reloadConfig(ctx)
		pc := s.pc.Load()
		p.Conflict, p.Text, p.Version = true, string(pc.conf.Marshal()), string(pc.version)
		s.renderConfig(w, r, http.StatusPreconditionFailed, p)
		return
	}
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	s.pc.Store(newPushConfig(c, nv))
	http.Redirect(w, r, "/config?saved=1", http.StatusSeeOther)
}
