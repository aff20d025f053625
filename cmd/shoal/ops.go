package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/shoal-cache/shoal/gateway"
	"github.com/shoal-cache/shoal/internal/admin"
	"github.com/shoal-cache/shoal/jobs"
)

// The admin API's jobs and introspection routes, served by the node.
var _ admin.Ops = adminBackend{}

// opErr maps node and job errors to the admin API's statuses.
func opErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jobs.ErrNotFound), errors.Is(err, gateway.ErrNoSuchKey), errors.Is(err, gateway.ErrNoSuchBucket):
		return fmt.Errorf("%w: %w", admin.ErrNotFound, err)
	case errors.Is(err, jobs.ErrInvalid), errors.Is(err, gateway.ErrInvalidArgument):
		return fmt.Errorf("%w: %w", admin.ErrBadRequest, err)
	}
	return err
}

func (a adminBackend) Jobs(ctx context.Context) (any, error) {
	js, err := a.n.Jobs().List(ctx)
	if js == nil {
		js = []jobs.Job{}
	}
	return js, opErr(err)
}

func (a adminBackend) Job(ctx context.Context, id string) (any, error) {
	j, err := a.n.Jobs().Get(ctx, id)
	return j, opErr(err)
}

func (a adminBackend) StartJob(ctx context.Context, req admin.JobRequest) (any, error) {
	j, err := a.n.Jobs().Start(ctx, jobs.Spec{Bucket: req.Bucket, Prefix: req.Prefix, Local: req.Local, Pin: req.Pin, Replicas: req.Replicas})
	return j, opErr(err)
}

func (a adminBackend) CancelJob(ctx context.Context, id string) (any, error) {
	j, err := a.n.Jobs().Cancel(ctx, id)
	return j, opErr(err)
}

func (a adminBackend) Where(ctx context.Context, bucket, key string) (any, error) {
	w, err := a.n.Where(ctx, bucket, key)
	return w, opErr(err)
}

func (a adminBackend) Cached(ctx context.Context, bucket, prefix string) (any, error) {
	c, err := a.n.Cached(ctx, bucket, prefix)
	return c, opErr(err)
}

func (a adminBackend) Peers(ctx context.Context) (any, error) {
	p, err := a.n.Peers(ctx)
	return p, opErr(err)
}
