//go:build tools

// Package tools pins the commands that tools/kubeenv builds from the Go module proxy: a
// real kube-apiserver, kube-controller-manager, kubectl and etcd for tests. It is never
// compiled (the build tag keeps it out); it only makes `go mod tidy` record every module
// those commands need, so go.sum covers the whole build.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"                     // etcd (its main package is the module root)
	_ "k8s.io/kubernetes/cmd/kube-apiserver"          // the API server
	_ "k8s.io/kubernetes/cmd/kube-controller-manager" // namespace deletion, service accounts, GC
	_ "k8s.io/kubernetes/cmd/kubectl"                 // the client, same release
)
