package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

// RolloutStart is a rollout to start: the group, the package, and the
// strategy's fields to set, by their JSON names in POST /api/rollouts
// ("canary", "steps", "min_healthy_time", "auto_revert", …). The fields
// left out take the group's default strategy from the push config, else
// the built-in defaults.
type RolloutStart struct {
	Group   string
	Package manifest.PackageName
	Set     map[string]any
}

// MarshalJSON is the body of POST /api/rollouts.
func (s RolloutStart) MarshalJSON() ([]byte, error) {
	body := map[string]any{}
	for k, v := range s.Set {
		body[k] = v
	}
	body["group"], body["package"] = s.Group, s.Package.String()
	return json.Marshal(body)
}

// Rollout is a rollout's record as pushui answered it, with the version
// (ETag) a long poll waits on.
type Rollout struct {
	*manifest.RolloutRecord
	ETag string
}

// StartRollout starts a rollout (POST /api/rollouts). The error wraps
// ErrConflict when the group env has an active rollout, ErrBadRequest for
// a strategy pushui refuses, ErrNotFound for an unknown group.
func (c *Client) StartRollout(ctx context.Context, s RolloutStart) (*manifest.RolloutRecord, error) {
	var rec manifest.RolloutRecord
	if err := c.do(ctx, call{method: http.MethodPost, path: "/api/rollouts", body: s, out: &rec}); err != nil {
		return nil, err
	}
	return &rec, nil
}

// GetRollout returns rollout id's record (GET /api/rollouts/{id}).
func (c *Client) GetRollout(ctx context.Context, id string) (*Rollout, error) {
	return c.WaitRollout(ctx, id, "", 0)
}

// WaitRollout long-polls rollout id: it returns as soon as the record's
// version is no longer etag, or after wait (at most a minute, pushui's
// bound) with the record as it is. etag "" returns at once.
func (c *Client) WaitRollout(ctx context.Context, id, etag string, wait time.Duration) (*Rollout, error) {
	var rec manifest.RolloutRecord
	var hdr http.Header
	cl := call{method: http.MethodGet, path: "/api/rollouts/" + url.PathEscape(id), out: &rec, header: &hdr}
	if etag != "" && wait > 0 {
		cl.query = url.Values{"wait": {waitParam(wait)}}
		cl.reqHeader = http.Header{"If-None-Match": {etag}}
	}
	if err := c.do(ctx, cl); err != nil {
		return nil, err
	}
	return &Rollout{RolloutRecord: &rec, ETag: hdr.Get("ETag")}, nil
}

// RolloutCommand runs cmd on rollout id: "pause", "resume", "promote",
// "abort" or "revert" (POST /api/rollouts/{id}/{cmd}). The error wraps
// ErrConflict when the rollout's state does not allow it.
func (c *Client) RolloutCommand(ctx context.Context, id, cmd string) (*manifest.RolloutRecord, error) {
	var rec manifest.RolloutRecord
	if err := c.do(ctx, call{method: http.MethodPost, path: "/api/rollouts/" + url.PathEscape(id) + "/" + url.PathEscape(cmd), out: &rec}); err != nil {
		return nil, err
	}
	return &rec, nil
}

// Rollouts lists the rollouts of group ("" for every group), newest first,
// at most limit (0 for all), following pushui's pages.
func (c *Client) Rollouts(ctx context.Context, group string, limit int) ([]*manifest.RolloutRecord, error) {
	var out []*manifest.RolloutRecord
	after := ""
	for {
		q := url.Values{"limit": {strconv.Itoa(1000)}}
		if group != "" {
			q.Set("group", group)
		}
		if after != "" {
			q.Set("after", after)
		}
		var page RolloutPage
		if err := c.do(ctx, call{method: http.MethodGet, path: "/api/rollouts", query: q, out: &page}); err != nil {
			return nil, err
		}
		out = append(out, page.Rollouts...)
		if limit > 0 && len(out) >= limit {
			return out[:limit], nil
		}
		if page.Next == "" {
			return out, nil
		}
		after = page.Next
	}
}

// Status returns server's status as its pulld last wrote it, script
// output included (GET /api/servers/{server}/status). The error wraps
// ErrNotFound before its first report.
func (c *Client) Status(ctx context.Context, server string) (*manifest.Status, error) {
	var st manifest.Status
	if err := c.do(ctx, call{method: http.MethodGet, path: "/api/servers/" + url.PathEscape(server) + "/status", out: &st}); err != nil {
		return nil, err
	}
	return &st, nil
}
