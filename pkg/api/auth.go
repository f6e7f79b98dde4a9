package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/user"
	"strconv"
	"strings"
)

// Identity is who sent a request: a TCP client by its token's name, a
// unix-socket peer by its uid. Tokens never appear here.
type Identity struct {
	// Via is "token" or "socket".
	Via  string
	Name string // the token's name, or the peer's user name (its uid when it has none)
	UID  int    // the socket peer's uid; -1 for a token
	Role Role
}

func (id Identity) String() string {
	if id.Via == "socket" {
		if id.Name != strconv.Itoa(id.UID) {
			return fmt.Sprintf("uid %d (%s)", id.UID, id.Name)
		}
		return fmt.Sprintf("uid %d", id.UID)
	}
	return fmt.Sprintf("token %q", id.Name)
}

type identityKey struct{}

func withIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

func identityOf(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Token is one line of the --api-tokens file. Only its hash is kept.
type Token struct {
	Name string
	Role Role
	sum  [sha256.Size]byte
}

// NewToken makes the Token value grants as name with role.
func NewToken(value, name string, role Role) Token {
	return Token{Name: name, Role: role, sum: sha256.Sum256([]byte(value))}
}

// ParseTokens reads a static token file in the style of Kubernetes'
// --token-auth-file: CSV lines "token,name,role", with # comments and blank
// lines. file names the file in errors, which give its line and never the
// token.
func ParseTokens(file string, data []byte) ([]Token, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.ReuseRecord = true
	var out []Token
	names := map[string]int{}
	seen := map[[sha256.Size]byte]int{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %v (want token,name,role)", file, pe.StartLine, pe.Err)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		line, _ := r.FieldPos(0)
		if len(rec) != 3 {
			return nil, fmt.Errorf("%s:%d: %d fields, want 3: token,name,role", file, line, len(rec))
		}
		value, name, roleText := rec[0], strings.TrimSpace(rec[1]), strings.TrimSpace(rec[2])
		switch {
		case value == "":
			return nil, fmt.Errorf("%s:%d: the token is empty", file, line)
		case strings.ContainsFunc(value, isSpaceOrControl):
			return nil, fmt.Errorf("%s:%d: the token holds a space or control character", file, line)
		case name == "":
			return nil, fmt.Errorf("%s:%d: the name is empty (it names the client in the audit log)", file, line)
		case strings.ContainsFunc(name, isSpaceOrControl):
			return nil, fmt.Errorf("%s:%d: name %q holds a space or control character", file, line, name)
		}
		role, err := ParseRole(roleText)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", file, line, err)
		}
		if first, dup := names[name]; dup {
			return nil, fmt.Errorf("%s:%d: name %q is already on line %d", file, line, name, first)
		}
		t := NewToken(value, name, role)
		if first, dup := seen[t.sum]; dup {
			return nil, fmt.Errorf("%s:%d: the token of line %d again", file, line, first)
		}
		names[name], seen[t.sum] = line, line
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no token (lines are token,name,role)", file)
	}
	return out, nil
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

// TokenAuth lets through only requests bearing one of tokens
// ("Authorization: Bearer TOKEN"), as that token's Identity. Anything else
// gets 401 and its connection is closed. No tokens refuse everything.
func TokenAuth(tokens []Token, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if t, found := matchToken(tokens, got); ok && found {
			h.ServeHTTP(w, r.WithContext(withIdentity(r.Context(), Identity{Via: "token", Name: t.Name, UID: -1, Role: t.Role})))
			return
		}
		// A client without a token gets no second try on this connection.
		w.Header().Set("Connection", "close")
		w.Header().Set("WWW-Authenticate", `Bearer realm="reconciler"`)
		writeJSON(w, statusOf(errUnauthorized), errorBody(fail(errUnauthorized, "",
			"a bearer token is required on TCP (Authorization: Bearer TOKEN; reconciler --token or RECONCILER_TOKEN)")))
	})
}

// matchToken compares got with every token in constant time: hashing
// first hides the length, and no comparison stops early.
func matchToken(tokens []Token, got string) (Token, bool) {
	sum := sha256.Sum256([]byte(got))
	var found Token
	match := 0
	for _, t := range tokens {
		eq := subtle.ConstantTimeCompare(sum[:], t.sum[:])
		if eq == 1 {
			found = t
		}
		match |= eq
	}
	return found, match == 1 && got != ""
}

// SocketPeer identifies the peer of a unix-socket connection for
// http.Server.ConnContext, by its kernel credentials (SO_PEERCRED). Root
// and the agent's own user (self) are admin; every other user has role.
// A connection whose peer cannot be told gets no identity, and then every
// request on it is refused.
func SocketPeer(self int, role Role) func(context.Context, net.Conn) context.Context {
	return func(ctx context.Context, c net.Conn) context.Context {
		uid, err := peerUID(c)
		if err != nil {
			return ctx
		}
		id := Identity{Via: "socket", UID: uid, Name: strconv.Itoa(uid), Role: role}
		if u, err := user.LookupId(id.Name); err == nil {
			id.Name = u.Username
		}
		if uid == 0 || uid == self {
			id.Role = RoleAdmin
		}
		return withIdentity(ctx, id)
	}
}

// peerUID is the uid of the process at the other end of c, a unix
// connection or a wrapper that gives its connection with NetConn (as
// tls.Conn and a connection-limiting listener's do).
func peerUID(c net.Conn) (int, error) {
	for {
		switch cc := c.(type) {
		case *net.UnixConn:
			return unixPeerUID(cc)
		case interface{ NetConn() net.Conn }:
			c = cc.NetConn()
		default:
			return 0, fmt.Errorf("%T is not a unix connection", c)
		}
	}
}
