package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/internal/pushui/ops"
	"github.com/pushpull/pushpull/manifest"
)

type configPage struct {
	page
	Key, Text, Version, Error string
	Conflict, Saved           bool
	History                   []*manifest.AuditRecord
}

// handleConfigPage shows the push config, editable by admins, with its
// history.
func (s *Handler) handleConfigPage(w http.ResponseWriter, r *http.Request) {
	s.ReloadConfig(r.Context())
	pc := s.Config.Load()
	p := &configPage{page: s.page(r, "push config"), Key: blobstore.PushConfigKey, Text: string(pc.Conf.Marshal()), Version: string(pc.Version), Saved: r.URL.Query().Get("saved") == "1"}
	s.renderConfig(w, r, http.StatusOK, p)
}

func (s *Handler) renderConfig(w http.ResponseWriter, r *http.Request, code int, p *configPage) {
	p.History, _ = s.Fleet.ConfigHistory(r.Context(), 20)
	s.render(w, r, code, "config", p)
}

// handleConfigSave saves the posted push config if the bucket's is still
// the one the page showed.
func (s *Handler) handleConfigSave(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	text := r.PostFormValue("config")
	p := &configPage{page: s.page(r, "push config"), Key: blobstore.PushConfigKey, Text: text, Version: r.PostFormValue("version")}
	if len(text) > ops.MaxConfigBody {
		p.Error = fmt.Sprintf("the push config is larger than %d bytes", ops.MaxConfigBody)
		s.renderConfig(w, r, http.StatusRequestEntityTooLarge, p)
		return
	}
	c, err := manifest.ParsePushConfig([]byte(text))
	if err != nil {
		p.Error = err.Error()
		s.renderConfig(w, r, http.StatusBadRequest, p)
		return
	}
	nv, err := s.Fleet.PutConfig(ctx, auth.User(ctx), c, blobstore.Version(p.Version))
	if errors.Is(err, blobstore.ErrConflict) {
		s.ReloadConfig(ctx)
		pc := s.Config.Load()
		p.Conflict, p.Text, p.Version = true, string(pc.Conf.Marshal()), string(pc.Version)
		s.renderConfig(w, r, http.StatusPreconditionFailed, p)
		return
	}
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	s.Config.Store(ops.NewPushConfig(c, nv))
	http.Redirect(w, r, "/config?saved=1", http.StatusSeeOther)
}
