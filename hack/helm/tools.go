//go:build tools

// Pins the helm command for the chart tests: scripts/helm.sh builds
// helm.sh/helm/v4/cmd/helm at the version go.mod requires.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
