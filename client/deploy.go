package client

import (
	"context"
	"net/http"
)

// DeployRequest is the body of POST /api/deploy: a package and either a
// list of servers or a group.
type DeployRequest struct {
	Package string   `json:"package"`
	Servers []string `json:"servers,omitempty"`
	Group   string   `json:"group,omitempty"`
	// AbortRollout aborts the active rollouts that would otherwise refuse
	// the deploy (409) first; the audit records say so.
	AbortRollout bool `json:"abort_rollout,omitempty"`
}

// DeployResult is one manifest's outcome in POST /api/deploy: a server's,
// or the group's.
type DeployResult struct {
	Server     string `json:"server,omitempty"`
	Group      string `json:"group,omitempty"`
	Changed    bool   `json:"changed"`
	Revision   int64  `json:"revision,omitempty"`
	Version    string `json:"version,omitempty"`
	Skipped    string `json:"skipped,omitempty"`
	Error      string `json:"error,omitempty"`
	NudgeError string `json:"nudge_error,omitempty"`
	AuditError string `json:"audit_error,omitempty"`
}

// DeployResponse is the answer of POST /api/deploy.
type DeployResponse struct {
	Package string         `json:"package"` // the package deployed, in canonical form
	Results []DeployResult `json:"results"`
}

// Deploy sets one app's version on servers or in a group's manifest (POST
// /api/deploy). The error wraps ErrBadRequest when nothing was written
// (an unknown server, an app not allowed, a missing package), ErrConflict
// when an active rollout drives the env, ErrUnavailable when a write
// failed.
func (c *Client) Deploy(ctx context.Context, req DeployRequest) (DeployResponse, error) {
	var out DeployResponse
	err := c.do(ctx, call{method: http.MethodPost, path: "/api/deploy", body: req, out: &out})
	return out, err
}
