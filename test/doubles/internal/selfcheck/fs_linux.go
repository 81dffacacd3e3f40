package selfcheck

import "syscall"

// fsSize is the size in bytes of the filesystem at path, or -1.
func fsSize(path string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return -1
	}
	return int64(st.Blocks) * int64(st.Bsize)
}

// mountedReadOnly says the filesystem at path is mounted read-only; ok is
// false when that could not be read.
func mountedReadOnly(path string) (readOnly, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return false, false
	}
	const stRdonly = 0x1 // ST_RDONLY of statvfs(3)
	return st.Flags&stRdonly != 0, true
}
