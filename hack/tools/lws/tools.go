//go:build tools

// Package tools pins the LeaderWorkerSet controller manager command this
// module builds (upstream's main package is sigs.k8s.io/lws/cmd).
package tools

import _ "sigs.k8s.io/lws/cmd"
