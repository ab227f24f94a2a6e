//go:build tools

// Package tools pins the commands this module builds; `go build` names them
// by import path (k8s.io/kubernetes/cmd/kube-apiserver, .../cmd/kubectl).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubectl/pkg/cmd"
)
