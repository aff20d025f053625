package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client talks to a node's admin API.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client for the admin API at addr (host:port or an
// http:// URL). hc may be nil (http.DefaultClient; no timeout, as a pin of
// a large prefix takes as long as it takes: cancel through ctx).
func NewClient(addr string, hc *http.Client) (*Client, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("admin: bad address %q: want host:port or http://host:port", addr)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), hc: hc}, nil
}

// Status returns the node's status JSON.
func (c *Client) Status(ctx context.Context) (json.RawMessage, error) {
	return c.do(ctx, http.MethodGet, "/v1/status", nil)
}

// Pin pins bucket/prefix and returns the result JSON.
func (c *Client) Pin(ctx context.Context, bucket, prefix string) (json.RawMessage, error) {
	return c.prefixOp(ctx, "/v1/pin", bucket, prefix)
}

// Unpin releases a pin.
func (c *Client) Unpin(ctx context.Context, bucket, prefix string) (json.RawMessage, error) {
	return c.prefixOp(ctx, "/v1/unpin", bucket, prefix)
}

// Prefetch fetches bucket/prefix into the cache without pinning.
func (c *Client) Prefetch(ctx context.Context, bucket, prefix string) (json.RawMessage, error) {
	return c.prefixOp(ctx, "/v1/prefetch", bucket, prefix)
}

func (c *Client) prefixOp(ctx context.Context, path, bucket, prefix string) (json.RawMessage, error) {
	body, err := json.Marshal(PrefixRequest{Bucket: bucket, Prefix: prefix})
	if err != nil {
		return nil, err
	}
	return c.do(ctx, http.MethodPost, path, body)
}

// maxResponse bounds what the client reads (a status is a few KiB; a pin
// result lists per-object errors).
const maxResponse = 16 << 20

func (c *Client) do(ctx context.Context, method, path string, body []byte) (json.RawMessage, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("admin %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("admin %s: %s: %w", path, resp.Status, errors.New(e.Error))
		}
		return nil, fmt.Errorf("admin %s: %s", path, resp.Status)
	}
	return json.RawMessage(data), nil
}

// ParseS3URL splits s3://bucket/prefix into bucket and prefix.
func ParseS3URL(s string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q: want s3://bucket/prefix", s)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if err := ValidateBucket(bucket); err != nil {
		return "", "", err
	}
	return bucket, prefix, nil
}
