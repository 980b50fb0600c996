// Package api is pushui's JSON API. Every route is one row of the table
// Handler.Routes returns — method, path, handler, what it does, the body
// it takes, what it answers and a curl example — which is also what
// GET /api shows and what docs/api.md is generated from, so that the
// reference cannot forget a route.
//
// Reads come from the view (internal/fleetview) or fresh from the bucket;
// writes go through ops.Service and check the version they read (ETag and
// If-Match). Errors are {"error": "…"} with a 4xx or 5xx status.
package api
