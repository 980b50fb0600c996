package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/internal/pushui/ops"
	"github.com/pushpull/pushpull/manifest"
)

// afterWrite redirects to where a successful form write lands, carrying
// the outcome in the query.
func afterWrite(w http.ResponseWriter, r *http.Request, target, done string, c *ops.Change, extra url.Values) {
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	q.Set("done", done)
	if !c.Changed {
		q.Set("done", "same")
	}
	if c.NudgeErr != nil {
		q.Add("warn", "nudge")
	}
	if c.AuditErr != nil {
		q.Add("warn", "audit")
	}
	http.Redirect(w, r, target+"?"+q.Encode(), http.StatusSeeOther)
}

// formFail answers a failed form write on the app page: 412 with the new
// state on a conflict, 400 with the reason for bad input, 409 for a
// manifest that does not parse; other failures get the error page.
func (s *Handler) formFail(w http.ResponseWriter, r *http.Request, server, app string, err error) {
	var in *ops.InputError
	code := 0
	switch {
	case errors.Is(err, blobstore.ErrConflict):
		code = http.StatusPreconditionFailed
	case errors.As(err, &in):
		code = http.StatusBadRequest
	case errors.Is(err, ops.ErrBrokenManifest):
		code = http.StatusConflict
	}
	if code == 0 || manifest.CheckName("app", app) != nil || s.KnownServer(server) != nil {
		s.failErr(w, r, err)
		return
	}
	ctx := r.Context()
	p := s.appData(ctx, r, server, app)
	if code == http.StatusPreconditionFailed {
		p.Conflict = true
		if recs, err := s.Bucket.ListAudit(ctx, manifest.Server(server), 1); err == nil && len(recs) > 0 {
			p.LastEdit = &fleetview.HistoryEntry{Time: fleetview.At(recs[0].Time, p.Now), User: recs[0].User, Action: recs[0].Action}
		}
	} else {
		p.Error = err.Error()
	}
	s.render(w, r, code, "app", p)
}

// handleDeploy points the app at the chosen package, if the manifest is
// still the one the page showed.
func (s *Handler) handleDeploy(w http.ResponseWriter, r *http.Request) {
	server, app := r.PathValue("server"), r.PathValue("app")
	if err := s.checkServerApp(server, app); err != nil {
		s.failErr(w, r, err)
		return
	}
	p, err := manifest.ParsePackageName(r.PostFormValue("package"))
	if err == nil && p.App != app {
		err = ops.BadInput("package %s is not a package of %s", p, app)
	} else if err != nil {
		err = ops.BadInput("%v", err)
	}
	if err == nil {
		err = s.CheckDeploy(r.Context(), manifest.Server(server), p)
	}
	if err != nil {
		s.formFail(w, r, server, app, err)
		return
	}
	c, err := s.Edit(r.Context(), fleet.Edit{Target: manifest.Server(server), User: auth.User(r.Context()), Action: "set " + app + " to " + p.String(),
		Apply: s.PinPackage(server, p), IfVersion: blobstore.Version(r.PostFormValue("version")), AbortRollout: r.PostFormValue("abort_rollout") == "on"})
	if err != nil {
		s.formFail(w, r, server, app, err)
		return
	}
	afterWrite(w, r, "/servers/"+server+"/apps/"+app, "deploy", c, url.Values{"what": {p.String()}})
}

// handleRemove removes every env of the app from the server; the form must
// carry confirm=yes.
func (s *Handler) handleRemove(w http.ResponseWriter, r *http.Request) {
	server, app := r.PathValue("server"), r.PathValue("app")
	if err := s.checkServerApp(server, app); err != nil {
		s.failErr(w, r, err)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		s.formFail(w, r, server, app, ops.BadInput("tick the box to confirm removing %s from %s", app, server))
		return
	}
	c, err := s.EditIfVersion(r.Context(), auth.User(r.Context()), manifest.Server(server), blobstore.Version(r.PostFormValue("version")), "remove "+app, ops.RemoveApp(manifest.Server(server), app))
	if err != nil {
		s.formFail(w, r, server, app, err)
		return
	}
	afterWrite(w, r, "/servers/"+server, "remove", c, url.Values{"app": {app}})
}

// envApp returns the app of env on server, from the cached manifest, or
// the form's app field when the env is not known.
func (s *Handler) envApp(r *http.Request, server, env string) string {
	if ss := s.View.Load().Servers[server]; ss != nil && ss.Manifest != nil {
		if e, ok := ss.Manifest.Lookup(env); ok {
			return e.Package.App
		}
	}
	return r.PostFormValue("app")
}

// checkEnv checks the path of an env action and returns the env's app.
func (s *Handler) checkEnv(r *http.Request, server, env string) (string, error) {
	if err := s.KnownServer(server); err != nil {
		return "", err
	}
	if err := manifest.CheckName("env", env); err != nil {
		return "", ops.BadInput("%v", err)
	}
	app := s.envApp(r, server, env)
	if app == "" {
		return "", ops.BadInput("env %s is not on server %s", env, server)
	}
	if err := manifest.CheckName("app", app); err != nil {
		return "", ops.BadInput("%v", err)
	}
	return app, nil
}

// handleRestart gives the env a new restart token.
func (s *Handler) handleRestart(w http.ResponseWriter, r *http.Request) {
	server, env := r.PathValue("server"), r.PathValue("env")
	app, err := s.checkEnv(r, server, env)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	c, err := s.EditIfVersion(r.Context(), auth.User(r.Context()), manifest.Server(server), blobstore.Version(r.PostFormValue("version")), "restart "+env, ops.RestartEnv(manifest.Server(server), env, s.Now()))
	if err != nil {
		s.formFail(w, r, server, app, err)
		return
	}
	afterWrite(w, r, "/servers/"+server+"/apps/"+app, "restart", c, url.Values{"env": {env}})
}

// handleConfig replaces the env's config values with the form's.
func (s *Handler) handleConfig(w http.ResponseWriter, r *http.Request) {
	server, env := r.PathValue("server"), r.PathValue("env")
	app, err := s.checkEnv(r, server, env)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	cfg, err := parseConfigText(r.PostFormValue("config"))
	if err != nil {
		s.formFail(w, r, server, app, ops.BadInput("%v", err))
		return
	}
	c, err := s.EditIfVersion(r.Context(), auth.User(r.Context()), manifest.Server(server), blobstore.Version(r.PostFormValue("version")), "config "+env, ops.SetConfig(manifest.Server(server), env, cfg))
	if err != nil {
		s.formFail(w, r, server, app, err)
		return
	}
	afterWrite(w, r, "/servers/"+server+"/apps/"+app, "config", c, url.Values{"env": {env}})
}

// handlePromote sets one package in a group's manifest, from a server's
// app page: one write, which every member follows. It returns to the
// group's page, which follows the members to the build.
func (s *Handler) handlePromote(w http.ResponseWriter, r *http.Request) {
	p, err := manifest.ParsePackageName(r.PostFormValue("package"))
	if err != nil {
		s.failErr(w, r, ops.BadInput("%v", err))
		return
	}
	group := r.PostFormValue("group")
	c, err := s.DeployGroup(r.Context(), auth.User(r.Context()), group, p, r.PostFormValue("abort_rollout") == "on")
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	// The group's page says what was saved and follows the members to
	// the new build, live.
	extra := url.Values{"what": {p.String()}}
	if c.Changed {
		extra.Set("rev", strconv.FormatInt(c.After.Revision, 10))
	}
	afterWrite(w, r, "/groups/"+group, "deploy", c, extra)
}
