package api

import (
	"net/http"
	"strings"
)

// Route is one route of the JSON API: how the mux finds its handler
// and what the reference page (GET /api) says about it. The table below
// is the one home of both, so the page cannot forget a route.
type Route struct {
	Method  string           `json:"method"`
	Path    string           `json:"path"`
	handler http.HandlerFunc `json:"-"`
	What    string           `json:"what"`           // what it does
	Body    string           `json:"body,omitempty"` // the request body, "" for none
	Answers string           `json:"answers"`        // the status codes and what they carry
	Example string           `json:"example"`        // a curl command line; $PUSHUI is pushui's base URL
}

// Mount adds the API's routes to mux, from the table of apiRoutes, and
// answers 404 in JSON under /api/ for the rest.
func (s *Handler) Mount(mux *http.ServeMux) {
	for _, rt := range s.Routes() {
		mux.HandleFunc(rt.Method+" "+rt.Path, rt.handler)
	}
	mux.HandleFunc("GET /api", s.handleAPIDoc)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, "no such API endpoint: "+r.Method+" "+r.URL.Path)
	})
}

// Routes returns the API's routes, in the order the reference lists
// them.
func (s *Handler) Routes() []Route {
	const m = `{"revision": 3, "packages": [{"package": "hello/hello-20261122T101500Z-0123456789ab.tar.zst", "config": {"MESSAGE": "hi"}}]}`
	return []Route{
		{"GET", "/api/servers", s.apiServers,
			"Every server with its desired state (its own manifest merged with its groups') and what its pulld reports, from pushui's cache; as_of says when the bucket was last listed in full. Filters: ?server= and ?app= (substrings), ?group=. Script output is left out.",
			"", "200 {as_of, servers: [{name, in_config, groups, allowed, version, manifest, manifest_error, status, status_error, stale, pending, envs: [{env, app, desired, serving, state, step, error, drift, failed, in_progress, action, newer_available, allowed}]}]}",
			`curl -s "$PUSHUI/api/servers?group=web"`},
		{"GET", "/api/servers/{server}", s.apiGetManifest,
			"The server's own manifest, read fresh, in canonical form, with its version as ETag. A configured server without one gets an empty manifest and no ETag.",
			"", "200 manifest + ETag; 404 unknown server; 409 a manifest that does not parse (with its ETag, so that a PUT can replace it)",
			`curl -si "$PUSHUI/api/servers/web-1"`},
		{"PUT", "/api/servers/{server}", s.apiPutManifest,
			"Replace the server's manifest, if it is still the one you read: If-Match with the ETag of the GET, or If-None-Match: * to create it. The revision written is one more than the higher of the body's and the current one. A body equal to the current manifest writes nothing. The host is nudged.",
			m, "200 the manifest written + ETag (X-Pushui-Nudge-Error when the host could not be nudged); 428 without If-Match or If-None-Match; 412 the manifest changed (the current one in the body); 400 the body does not parse, or names an app the push config does not allow or a package that does not exist; nothing is written in those cases",
			`curl -s -X PUT -H 'If-Match: "ETAG"' --data-binary @web-1.json "$PUSHUI/api/servers/web-1"`},
		{"GET", "/api/servers/{server}/history", s.apiHistory,
			"The server's manifest changes, newest first: who, when, what, before and after. ?limit=N (default 50).",
			"", "200 {server|group, records: [{time, user, action, changes, before, after}]}",
			`curl -s "$PUSHUI/api/servers/web-1/history?limit=5"`},
		{"GET", "/api/servers/{server}/status", s.apiStatus,
			"The server's status as its pulld last wrote it, read fresh, script output included.",
			"", "200 status; 404 before its first report",
			`curl -s "$PUSHUI/api/servers/web-1/status"`},
		{"GET", "/api/groups", s.apiGroups,
			"Every group pushui knows (configured, with a manifest, or named by a host's status) with its members counted by state and its active rollouts, from the cache.",
			"", "200 {as_of, groups: [{name, in_config, allowed, exists, revision, members, stale, pending, overrides, held, states, done, rollouts}]}",
			`curl -s "$PUSHUI/api/groups"`},
		{"GET", "/api/groups/{group}", s.apiGetManifest,
			"The group's manifest, as GET /api/servers/{server} for a server's.",
			"", "as GET /api/servers/{server}", `curl -si "$PUSHUI/api/groups/web"`},
		{"PUT", "/api/groups/{group}", s.apiPutManifest,
			"Replace the group's manifest, as PUT /api/servers/{server}: one write, whatever the group's size; its members are nudged with one message.",
			m, "as PUT /api/servers/{server}",
			`curl -s -X PUT -H 'If-Match: "ETAG"' --data-binary @web.json "$PUSHUI/api/groups/web"`},
		{"GET", "/api/groups/{group}/history", s.apiHistory,
			"The group's manifest changes, as a server's history.",
			"", "as GET /api/servers/{server}/history", `curl -s "$PUSHUI/api/groups/web/history"`},
		{"GET", "/api/apps/{app}/packages", s.apiPackages,
			"The app's packages, newest first, with their metadata (commit, branch, repo, note, who built it, size).",
			"", "200 {app, packages: [{name, built, commit, branch, repo, user, host, dirty, note, sha256, format, size, error}]}",
			`curl -s "$PUSHUI/api/apps/hello/packages"`},
		{"POST", "/api/deploy", s.apiDeploy,
			`Set one app's version on the listed servers, or in a group's manifest (one write). Each manifest is a read-modify-write retried on conflict that touches only that app's entries, and ends any rollout block the entry carried. A deploy that would move an env under an active rollout (the group's, or a group's of which a listed server is a member) is refused naming the rollout, unless "abort_rollout": true, which aborts it first (the audit record says so).`,
			`{"package": "hello/hello-20261122T101500Z-0123456789ab.tar.zst", "servers": ["web-1", "web-2"]}  or  {"package": "hello/hello-20261122T101500Z-0123456789ab.tar.zst", "group": "web", "abort_rollout": false}`,
			"200 {results: [{server|group, changed, revision, version, skipped, error, nudge_error, audit_error}]}; 400 unknown server, app not allowed, missing package (nothing written); 409 an active rollout drives the env (named; nothing written); 502 a write failed (see each result)",
			`curl -s -d '{"package": "hello/hello-20261122T101500Z-0123456789ab.tar.zst", "group": "web"}' "$PUSHUI/api/deploy"`},
		{"POST", "/api/rollouts", s.apiStartRollout,
			"Start a rollout to a group: canaries, then waves, gated by the members' health. Fields left out take the group's default from the push config's rollouts, else canary 1, steps [10, 50, 100], min_healthy_time 10s, healthy_deadline 5m, progress_deadline 10m, max_failures 0, min_staged 100% (with stage_first). env defaults to the package's app. A group with no members is refused unless allow_empty. Of two starts for one group env at once, exactly one is created.",
			`{"group": "web", "package": "hello/hello-20261123T091500Z-89abcdef0123.tar.zst", "canary": 1, "steps": [10, 50, 100], "min_healthy_time": "30s", "max_failures": "10%", "auto_revert": true, "pause_after_canary": false, "stage_first": false, "allow_empty": false}`,
			"201 the rollout record {id, strategy, previous, state, reason, step, history, lease, created, updated}; 409 the group env has an active (or invalid) rollout, named; 400 a bad strategy, a group with no members, an app the group may not carry, a package that does not exist; 404 unknown group",
			`curl -s -d '{"group": "web", "package": "hello/hello-20261123T091500Z-89abcdef0123.tar.zst", "auto_revert": true}' "$PUSHUI/api/rollouts"`},
		{"GET", "/api/rollouts", s.apiRollouts,
			`A page of rollout records, newest first: ?group= for one group's, ?limit=N (default 50, at most 1000), ?after=NEXT for the page after the one whose "next" that was. A record that does not parse or contradicts itself is listed in state "invalid" with the reason.`,
			"", "200 {rollouts: [record], next}; 400 a bad limit; 404 an unknown after", `curl -s "$PUSHUI/api/rollouts?group=web&limit=10"`},
		{"GET", "/api/rollouts/{id}", s.apiRollout,
			`One rollout's record, by its id alone (ids are unique across groups and envs: each is claimed, write-if-absent, when its rollout starts), with its version as ETag: its state ("running", "paused", "succeeded", "failed", "reverted", "aborted", or "invalid" with the reason for a record that does not parse or contradicts itself), its current step and the history of its steps (when, how many hosts, done, failed, suspect, outcome: done, failed, staged, skipped, empty). To follow a rollout, long-poll: ?wait=30s (at most 1m) with If-None-Match: the ETag you have answers as soon as the record changes, or after the wait with the record as it is.`,
			"", "200 record + ETag; 400 a bad wait; 404 no such rollout", `curl -s "$PUSHUI/api/rollouts/20261201t101500-0a1b2c"`},
		{"GET", "/api/rollouts/{group}/{env}/{id}", s.apiRollout,
			"The same as GET /api/rollouts/{id}, with the rollout's group and env in the path (the long form, kept as an alias).",
			"", "as GET /api/rollouts/{id}", `curl -s "$PUSHUI/api/rollouts/web/hello/20261201t101500-0a1b2c"`},
		{"POST", "/api/rollouts/{id}/{cmd}", s.apiRolloutCommand,
			"pause (running → paused), resume (paused → running), promote (every member on the new build now), abort (stop where it is; of an invalid record: moved aside to {id}.json.invalid, or its lease dropped), revert (every member back on the previous build; also after a failure or an abort, while the group's entry is still the rollout's).",
			"", "200 record; 409 the rollout's state does not allow the command (an invalid record allows abort only); 404 no such rollout",
			`curl -s -X POST "$PUSHUI/api/rollouts/20261201t101500-0a1b2c/pause"`},
		{"POST", "/api/rollouts/{group}/{env}/{id}/{cmd}", s.apiRolloutCommand,
			"The same as POST /api/rollouts/{id}/{cmd}, in the long form (an alias).",
			"", "as POST /api/rollouts/{id}/{cmd}",
			`curl -s -X POST "$PUSHUI/api/rollouts/web/hello/20261201t101500-0a1b2c/pause"`},
		{"GET", "/api/config", s.apiGetConfig,
			"The push config in the bucket (which apps may go on which servers and groups, and the groups' default rollout strategies), with its ETag.",
			"", "200 config + ETag", `curl -si "$PUSHUI/api/config"`},
		{"PUT", "/api/config", s.apiPutConfig,
			"Replace the push config, if it is still the one you read (If-Match).",
			`{"servers": {"web-1": ["hello"]}, "groups": {"web": ["hello", "api"]}, "rollouts": {"web": {"canary": 1, "auto_revert": true}}}`,
			"200 + ETag; 428 without If-Match; 412 it changed meanwhile; 400 not a valid config; nothing is written in those cases",
			`curl -s -X PUT -H 'If-Match: "ETAG"' --data-binary @push.json "$PUSHUI/api/config"`},
		{"GET", "/api/openapi.json", s.apiOpenAPI,
			"This API as an OpenAPI 3 document, generated from the same route table as this reference: every route with its parameters and the JSON schemas of its body and answer, for code generators and validators.",
			"", "200 the document", `curl -s "$PUSHUI/api/openapi.json"`},
		{"GET", "/api/live", s.apiLive,
			"The generation of what pushui's pages show, after refreshing its cache if it is older than a second (?rollout=group/env/id adds that rollout's record version). Pages ask it every second and reload what changed when it moves.",
			"", `200 {"generation": "42"}`, `curl -s "$PUSHUI/api/live"`},
	}
}

// handleAPIDoc answers the API reference: every route with its method,
// body, answers and an example, as JSON ({"routes": [...]}) for a client
// that asks for application/json, else as the page.
func (s *Handler) handleAPIDoc(w http.ResponseWriter, r *http.Request) {
	routes := s.Routes()
	base := "http://" + r.Host
	for i := range routes {
		routes[i].Example = strings.ReplaceAll(routes[i].Example, "$PUSHUI", base)
	}
	w.Header().Add("Vary", "Accept")
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]any{"routes": routes})
		return
	}
	s.page(w, r, routes)
}

// wantsJSON reports whether r's Accept header prefers application/json to
// text/html: it names JSON, and names it before any HTML.
func wantsJSON(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	j := strings.Index(accept, "application/json")
	h := strings.Index(accept, "text/html")
	return j >= 0 && (h < 0 || j < h)
}
