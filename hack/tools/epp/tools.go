//go:build tools

// Package tools pins the Gateway API Inference Extension's endpoint picker
// (EPP) command this module builds.
package tools

import _ "sigs.k8s.io/gateway-api-inference-extension/cmd/epp"
