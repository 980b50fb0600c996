package web

import (
	"net/http"
	"time"

	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/internal/pushui/auth"
)

// Mount adds the pages' routes to mux.
func (s *Handler) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.handleIndex)
	mux.HandleFunc("POST /refresh", s.handleRefresh)
	mux.HandleFunc("GET /servers/{server}", s.handleServer)
	mux.HandleFunc("GET /servers/{server}/apps/{app}", s.handleApp)
	mux.HandleFunc("POST /servers/{server}/apps/{app}/deploy", s.handleDeploy)
	mux.HandleFunc("POST /servers/{server}/apps/{app}/remove", s.handleRemove)
	mux.HandleFunc("GET /servers/{server}/envs/{env}/output", s.handleOutput)
	mux.HandleFunc("POST /servers/{server}/envs/{env}/restart", s.handleRestart)
	mux.HandleFunc("POST /servers/{server}/envs/{env}/config", s.handleConfig)
	mux.HandleFunc("POST /promote", s.handlePromote)
	mux.HandleFunc("GET /groups", s.handleGroups)
	mux.HandleFunc("GET /groups/{group}", s.handleGroup)
	mux.HandleFunc("POST /groups/{group}/apps/{app}/deploy", s.handleGroupDeploy)
	mux.HandleFunc("POST /groups/{group}/apps/{app}/remove", s.handleGroupRemove)
	mux.HandleFunc("POST /groups/{group}/envs/{env}/restart", s.handleGroupRestart)
	mux.HandleFunc("POST /groups/{group}/envs/{env}/config", s.handleGroupConfig)
	mux.HandleFunc("POST /groups/{group}/envs/{env}/promote", s.handlePromoteEnv)
	mux.HandleFunc("POST /groups/{group}/rollouts", s.handleStartRollout)
	mux.HandleFunc("GET /rollouts/{group}/{env}/{id}", s.handleRollout)
	mux.HandleFunc("POST /rollouts/{group}/{env}/{id}/{cmd}", s.handleRolloutCommand)
	mux.Handle("GET /static/", http.StripPrefix("/static/", s.staticHandler()))
	mux.HandleFunc("GET /config", s.handleConfigPage)
	mux.HandleFunc("POST /config", s.handleConfigSave)
}

// page is what every page shows around its content.
type page struct {
	Title    string
	User     string
	AuthOn   bool
	CanWrite bool
	Now      time.Time
	// Here is the request's path and query, where a refresh returns to.
	Here string
	// Live is the generation of what the page shows (liveGeneration):
	// the page's script asks /api/live for it and reloads what changed.
	// LiveRollout names the rollout (group/env/id) a rollout page follows.
	Live        string
	LiveRollout string
}

func (s *Handler) page(r *http.Request, title string) page {
	s.ReloadConfig(r.Context()) // one small request: the config is the bucket's, which anyone may change
	c := auth.CallerOf(r.Context())
	return page{
		Title:    title,
		User:     c.Name,
		AuthOn:   c.Auth,
		CanWrite: c.Admin,
		Now:      s.Now(),
		Here:     r.URL.RequestURI(),
		Live:     fleetview.Generation(s.View.Load(), ""),
	}
}

// apiPage is the API reference (GET /api).
type apiPage struct {
	page
	Routes any
	Base   string
}

// APIReference renders the API reference: routes is the API's route table
// (api.Handler.Routes), whose fields the page shows. The web package
// knows it only by its fields, so that the pages do not depend on the API.
func (s *Handler) APIReference(w http.ResponseWriter, r *http.Request, routes any) {
	s.render(w, r, http.StatusOK, "api", &apiPage{page: s.page(r, "API"), Routes: routes, Base: "http://" + r.Host})
}

type errorPage struct {
	page
	Code    int
	Message string
}

// Fail answers an error page.
func (s *Handler) Fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.render(w, r, code, "error", &errorPage{page: s.page(r, http.StatusText(code)), Code: code, Message: msg})
}

// failErr answers err with the status its kind calls for.
func (s *Handler) failErr(w http.ResponseWriter, r *http.Request, err error) {
	s.failErrHook(w, r, err)
}
