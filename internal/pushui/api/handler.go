package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/pushpull/pushpull/internal/pushui/ops"
)

// New returns the JSON API over svc; failErr answers the errors
// of its writes, and page renders its reference for a browser.
func New(svc *ops.Service, failErr func(http.ResponseWriter, *http.Request, error), page func(w http.ResponseWriter, r *http.Request, routes any)) *Handler {
	return &Handler{Service: svc, failErrHook: failErr, page: page}
}

// Handler serves the JSON API.
type Handler struct {
	*ops.Service
	failErrHook func(http.ResponseWriter, *http.Request, error)
	page        func(w http.ResponseWriter, r *http.Request, routes any)
}

// WriteError answers {"error": msg} with code.
func WriteError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// writeJSON sends v as compact JSON (pipe it through jq to read it).
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
