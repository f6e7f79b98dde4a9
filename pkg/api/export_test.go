package api

import "net/http"

// WithIdentity lets tests send requests as id without a token or socket.
var WithIdentity = withIdentity

// RouteAccess is one route with what the table says it needs.
type RouteAccess struct {
	Route, Verb string
	Role        Role
	InTable     bool
	Streams     bool
}

// Routes lists every route NewHandler serves.
func Routes() []RouteAccess {
	s := &server{}
	var out []RouteAccess
	for _, rt := range s.routes() {
		key := rt.method + " " + rt.path
		_, in := routeAccess[key]
		a := accessOf(key)
		out = append(out, RouteAccess{Route: key, Verb: a.verb, Role: a.role, InTable: in, Streams: a.streams})
	}
	return out
}

// TableRoutes lists the keys of the route table.
func TableRoutes() []string {
	var out []string
	for k := range routeAccess {
		out = append(out, k)
	}
	return out
}

// AsAdmin wraps h so every request is an admin's.
func AsAdmin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(withIdentity(r.Context(), Identity{Via: "token", Name: "test", UID: -1, Role: RoleAdmin})))
	})
}

// SetApplyTurnHook makes every apply call f once it has its turn, until
// the returned function restores the default.
func SetApplyTurnHook(f func()) (restore func()) {
	testHookApplyTurn = f
	return func() { testHookApplyTurn = func() {} }
}

// StatusOf is the one mapping of errors to status codes.
var StatusOf = statusOf
