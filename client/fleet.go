package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/pushpull/pushpull/manifest"
)

// Servers returns every server with its desired and actual state, from
// pushui's cache (GET /api/servers); group, when not "", keeps its
// members only.
func (c *Client) Servers(ctx context.Context, group string) (Servers, error) {
	var out Servers
	q := url.Values{}
	if group != "" {
		q.Set("group", group)
	}
	err := c.do(ctx, call{method: http.MethodGet, path: "/api/servers", query: q, out: &out})
	return out, err
}

// Groups returns every group with its members counted by state and its
// active rollouts (GET /api/groups).
func (c *Client) Groups(ctx context.Context) (Groups, error) {
	var out Groups
	err := c.do(ctx, call{method: http.MethodGet, path: "/api/groups", out: &out})
	return out, err
}

// ServerHistory returns server's manifest changes, newest first, at most
// limit (GET /api/servers/{server}/history).
func (c *Client) ServerHistory(ctx context.Context, server string, limit int) (History, error) {
	return c.history(ctx, "/api/servers/"+url.PathEscape(server)+"/history", limit)
}

// GroupHistory is ServerHistory for a group's manifest.
func (c *Client) GroupHistory(ctx context.Context, group string, limit int) (History, error) {
	return c.history(ctx, "/api/groups/"+url.PathEscape(group)+"/history", limit)
}

func (c *Client) history(ctx context.Context, path string, limit int) (History, error) {
	var out History
	err := c.do(ctx, call{method: http.MethodGet, path: path, query: url.Values{"limit": {strconv.Itoa(limit)}}, out: &out})
	return out, err
}

// Packages returns app's packages, newest first, with their metadata
// (GET /api/apps/{app}/packages).
func (c *Client) Packages(ctx context.Context, app string) (Packages, error) {
	var out Packages
	err := c.do(ctx, call{method: http.MethodGet, path: "/api/apps/" + url.PathEscape(app) + "/packages", out: &out})
	return out, err
}

// GroupManifest returns group's manifest, read fresh, with its ETag (GET
// /api/groups/{group}); a group without one gets an empty manifest and
// ETag "".
func (c *Client) GroupManifest(ctx context.Context, group string) (*manifest.Manifest, string, error) {
	return c.manifest(ctx, "/api/groups/"+url.PathEscape(group))
}

// ServerManifest is GroupManifest for a server's own manifest.
func (c *Client) ServerManifest(ctx context.Context, server string) (*manifest.Manifest, string, error) {
	return c.manifest(ctx, "/api/servers/"+url.PathEscape(server))
}

func (c *Client) manifest(ctx context.Context, path string) (*manifest.Manifest, string, error) {
	var raw json.RawMessage
	var hdr http.Header
	if err := c.do(ctx, call{method: http.MethodGet, path: path, out: &raw, header: &hdr}); err != nil {
		return nil, "", err
	}
	m, err := manifest.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("client: GET %s: %w", path, err)
	}
	return m, hdr.Get("ETag"), nil
}

// Written is what a PUT of a manifest wrote.
type Written struct {
	Manifest *manifest.Manifest // as stored: canonical, its revision moved on
	ETag     string             // the new version, for the next PUT
	// NudgeError says why the hosts could not be nudged ("" when they
	// were, or nothing needed it): they act at their next poll instead.
	NudgeError string
}

// PutGroupManifest replaces group's manifest with m, only if it is still
// at etag (the ETag of the GET it was read with; "" = it must not exist
// yet). The error wraps ErrPrecondition when it changed meanwhile (nothing
// is written), ErrBadRequest when pushui refuses m.
func (c *Client) PutGroupManifest(ctx context.Context, group string, m *manifest.Manifest, etag string) (Written, error) {
	return c.putManifest(ctx, "/api/groups/"+url.PathEscape(group), m, etag)
}

// PutServerManifest is PutGroupManifest for a server's own manifest.
func (c *Client) PutServerManifest(ctx context.Context, server string, m *manifest.Manifest, etag string) (Written, error) {
	return c.putManifest(ctx, "/api/servers/"+url.PathEscape(server), m, etag)
}

func (c *Client) putManifest(ctx context.Context, path string, m *manifest.Manifest, etag string) (Written, error) {
	h := http.Header{"If-Match": {etag}}
	if etag == "" {
		h = http.Header{"If-None-Match": {"*"}}
	}
	var raw json.RawMessage
	var hdr http.Header
	if err := c.do(ctx, call{method: http.MethodPut, path: path, body: json.RawMessage(m.Marshal()), reqHeader: h, out: &raw, header: &hdr}); err != nil {
		return Written{}, err
	}
	got, err := manifest.Parse(raw)
	if err != nil {
		return Written{}, fmt.Errorf("client: PUT %s: %w", path, err)
	}
	return Written{Manifest: got, ETag: hdr.Get("ETag"), NudgeError: hdr.Get("X-Pushui-Nudge-Error")}, nil
}

// Live returns the generation of what pushui shows, after pushui
// refreshed its view of the bucket if it was older than a second (GET
// /api/live): call it before reading Servers or Groups to see the fleet
// as it is now, on a pushui run without -refresh.
func (c *Client) Live(ctx context.Context) (Live, error) {
	var out Live
	err := c.do(ctx, call{method: http.MethodGet, path: "/api/live", out: &out})
	return out, err
}
