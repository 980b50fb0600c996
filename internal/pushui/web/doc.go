// Package web is pushui's console: the HTML templates and static files,
// embedded, the forms and the handlers that render the pages from the
// view models of internal/fleetview and write through ops.Service.
//
// Pages that show state update themselves: static/app.js asks
// GET /api/live for the generation of what the page shows and reloads the
// parts that changed. Forms carry the manifest version their page was
// rendered from, so a write never overwrites a change it did not see (the
// page then answers 412 with the new state). Pages run no inline script,
// under a strict Content-Security-Policy.
package web
