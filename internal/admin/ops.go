package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
)

// Ops is what a Backend also implements to serve jobs and introspection
// (the node does; a Backend without it serves only the routes above):
//
//	GET  /v1/jobs                 every member's jobs
//	POST /v1/jobs                 JobRequest -> the job started (or resumed)
//	GET  /v1/jobs/{id}            one job, from whichever member runs it
//	POST /v1/jobs/{id}/cancel     cancel it on every member
//	GET  /v1/where?bucket=&key=   holders of each chunk of an object, asked live
//	GET  /v1/cached?bucket=&prefix=  objects with the share cached here and in the cluster
//	GET  /v1/peers                the members as the transfer client sees them
type Ops interface {
	Jobs(ctx context.Context) (any, error)
	Job(ctx context.Context, id string) (any, error)
	StartJob(ctx context.Context, req JobRequest) (any, error)
	CancelJob(ctx context.Context, id string) (any, error)
	Where(ctx context.Context, bucket, key string) (any, error)
	Cached(ctx context.Context, bucket, prefix string) (any, error)
	Peers(ctx context.Context) (any, error)
}

// JobRequest is the body of POST /v1/jobs: a warm-up of Bucket/Prefix.
type JobRequest struct {
	Bucket   string `json:"bucket"`
	Prefix   string `json:"prefix"`
	Local    bool   `json:"local,omitempty"`
	Pin      bool   `json:"pin,omitempty"`
	Replicas int    `json:"replicas,omitempty"`
}

// ErrNotFound marks a Backend error for something that does not exist (404).
var ErrNotFound = errors.New("admin: not found")

func (s *Server) routeOps(o Ops) {
	s.mux.HandleFunc("GET /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		res, err := o.Jobs(r.Context())
		s.reply(w, "jobs", res, err)
	})
	s.mux.HandleFunc("POST /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		var req JobRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
			return
		}
		if err := ValidateBucket(req.Bucket); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.log.Info("start job", "bucket", req.Bucket, "prefix", req.Prefix, "pin", req.Pin, "replicas", req.Replicas, "local", req.Local)
		res, err := o.StartJob(r.Context(), req)
		s.reply(w, "start job", res, err)
	})
	s.mux.HandleFunc("GET /v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		res, err := o.Job(r.Context(), r.PathValue("id"))
		s.reply(w, "job", res, err)
	})
	s.mux.HandleFunc("POST /v1/jobs/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		s.log.Info("cancel job", "job", r.PathValue("id"))
		res, err := o.CancelJob(r.Context(), r.PathValue("id"))
		s.reply(w, "cancel job", res, err)
	})
	s.mux.HandleFunc("GET /v1/where", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if err := ValidateBucket(q.Get("bucket")); err != nil || q.Get("key") == "" {
			writeError(w, http.StatusBadRequest, "want ?bucket=B&key=K")
			return
		}
		res, err := o.Where(r.Context(), q.Get("bucket"), q.Get("key"))
		s.reply(w, "where", res, err)
	})
	s.mux.HandleFunc("GET /v1/cached", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if err := ValidateBucket(q.Get("bucket")); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		res, err := o.Cached(r.Context(), q.Get("bucket"), q.Get("prefix"))
		s.reply(w, "cached", res, err)
	})
	s.mux.HandleFunc("GET /v1/peers", func(w http.ResponseWriter, r *http.Request) {
		res, err := o.Peers(r.Context())
		s.reply(w, "peers", res, err)
	})
}

// Jobs returns every member's jobs.
func (c *Client) Jobs(ctx context.Context) (json.RawMessage, error) {
	return c.do(ctx, http.MethodGet, "/v1/jobs", nil)
}

// Job returns one job.
func (c *Client) Job(ctx context.Context, id string) (json.RawMessage, error) {
	return c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil)
}

// StartJob starts (or resumes) a warm-up job.
func (c *Client) StartJob(ctx context.Context, req JobRequest) (json.RawMessage, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	return c.do(ctx, http.MethodPost, "/v1/jobs", body)
}

// CancelJob cancels a job on every member.
func (c *Client) CancelJob(ctx context.Context, id string) (json.RawMessage, error) {
	return c.do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/cancel", []byte("{}"))
}

// Where returns the holders of each chunk of bucket/key.
func (c *Client) Where(ctx context.Context, bucket, key string) (json.RawMessage, error) {
	return c.do(ctx, http.MethodGet, "/v1/where?"+url.Values{"bucket": {bucket}, "key": {key}}.Encode(), nil)
}

// Cached lists the objects under bucket/prefix with their cached share.
func (c *Client) Cached(ctx context.Context, bucket, prefix string) (json.RawMessage, error) {
	return c.do(ctx, http.MethodGet, "/v1/cached?"+url.Values{"bucket": {bucket}, "prefix": {prefix}}.Encode(), nil)
}

// Peers returns the members with their transfer figures.
func (c *Client) Peers(ctx context.Context) (json.RawMessage, error) {
	return c.do(ctx, http.MethodGet, "/v1/peers", nil)
}
