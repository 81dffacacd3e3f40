// Package doubles holds the programs that stand in for the stack's real
// images when real kubelets with containerd, and no registry, run its pods:
// a pause process for the pod sandbox, a vLLM double (modelserver), a
// huggingface-cli and aws double (fetch) and one binary for the pipeline
// and checkpoint roles (workload). Each is a small static Go program, stdlib
// only; package images builds them into image tarballs that
// `ctr -n k8s.io images import` loads, and cmd/build-images is its command.
//
// The doubles behave like the real programs where the stack depends on it
// (probe paths, metric names, graceful shutdown on SIGTERM, the weights'
// completion marker) and check the promises the stack makes to them: each
// refuses to run as uid 0 or on a writable root filesystem (exit 3).
package doubles
