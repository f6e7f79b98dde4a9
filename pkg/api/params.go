package api

import (
	"net/http"
	"strconv"
	"time"
)

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fail(errBadRequest, name, "%s=%q: use true or false", name, v)
	}
	return b, nil
}

// intParam reads a count; absent is 0.
func intParam(r *http.Request, name string) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fail(errBadRequest, name, "%s=%q: use a whole number, 0 or more", name, v)
	}
	return n, nil
}

func uintParam(r *http.Request, name string) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fail(errBadRequest, name, "%s=%q: use a whole number, 0 or more", name, v)
	}
	return n, nil
}

// tailParam is "all" (also when absent) or a number of lines.
func tailParam(r *http.Request) (string, error) {
	v := r.URL.Query().Get("tail")
	if v == "" || v == "all" {
		return "all", nil
	}
	if n, err := strconv.Atoi(v); err != nil || n < 0 {
		return "", fail(errBadRequest, "tail", "tail=%q: use a number of lines or all", v)
	}
	return v, nil
}

// sinceParam reads a time as docker logs --since does: RFC 3339, Unix
// seconds, or a duration back from now ("10m").
func sinceParam(r *http.Request, now time.Time) (time.Time, error) {
	v := r.URL.Query().Get("since")
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
		return time.Unix(0, int64(secs*float64(time.Second))), nil
	}
	return time.Time{}, fail(errBadRequest, "since", "since=%q: use a time (2006-01-02T15:04:05Z), Unix seconds or a duration back from now (10m)", v)
}
