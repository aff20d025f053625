//go:build tools

// The helm command, built from this module at the version go.mod pins, for
// the chart tests' `helm lint` and `helm template` (helm_test.go).
package deploy

import _ "helm.sh/helm/v4/cmd/helm"
