//go:build !linux

package selfcheck

// fsSize is -1 off Linux: the doubles only run in Linux containers.
func fsSize(string) int64 { return -1 }

// mountedReadOnly is unknown off Linux.
func mountedReadOnly(string) (readOnly, ok bool) { return false, false }
