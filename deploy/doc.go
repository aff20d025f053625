// Package deploy holds what installs Shoal and watches it: the Helm chart
// (helm/shoal), the container image build (Dockerfile, in the repository
// root), the Grafana dashboard (grafana/) and the Prometheus rules
// (prometheus/). It is its own Go module so that the chart's tests, which
// render it with Helm's Go library and decode it with the Kubernetes API
// types, keep their dependencies out of the node's module.
package deploy
