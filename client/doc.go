// Package client is the Go client of pushui's JSON API, and the only code
// outside pushui that knows the API's paths and JSON shapes: pushctl is
// built on it, and so may any program that drives pushpull.
//
// A Client is made for one pushui (New) with the credentials it needs
// (Options.Auth; FromEnvironment reads them the way curl and git do, from
// ~/.netrc, or from the environment). Its methods take typed requests and
// return typed results — the manifest package's documents where the API
// answers one (a rollout record, a status) and this package's types
// otherwise. Errors from pushui are *Error, which match the sentinel of
// their status with errors.Is (ErrNotFound, ErrConflict, ErrPrecondition,
// ErrUnauthorized, ...). A Client is safe for concurrent use.
package client
