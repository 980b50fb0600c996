// Package auth decides who the caller of a pushui request is, and what
// they may do; it is the only place that does. A Gate identifies the
// caller by one of an htpasswd file of bcrypt hashes (HTTP Basic), a
// trusted identity header set by an authenticating proxy, or the signed
// header of Google's Identity-Aware Proxy (verified with idtoken), or,
// with none configured, serves everyone as LocalUser. Gate.Protect
// refuses cross-origin writes (http.CrossOriginProtection), unidentified
// callers (401) and writes by anyone not in Admins (403), and puts the
// Caller in the request's context (CallerOf) for the pages and the API.
// ForViewer masks config values from callers who are not admins.
package auth
