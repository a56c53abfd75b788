//go:build tools

// Package tools pins controller-gen's version in this module.
package tools

import _ "sigs.k8s.io/controller-tools/cmd/controller-gen"
