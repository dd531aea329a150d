package pluginhost

import (
	"os"
	"strconv"
	"syscall"
)

// fileID is what identifies a file's content without reading it: which
// file (device and inode) and the attributes every change of content moves
// (size, mtime, and ctime, which the kernel sets to the current time on any
// change and no system call can set back).
type fileID struct {
	dev, ino     uint64
	mode         uint32
	size         int64
	mtime, ctime int64 // nanoseconds since the epoch
}

func idOf(st *syscall.Stat_t) fileID {
	return fileID{
		dev: uint64(st.Dev), ino: st.Ino, mode: st.Mode, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
	}
}

func fileIdentity(f *os.File) (fileID, bool) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return fileID{}, false
	}
	return idOf(&st), true
}

func pathIdentity(path string) (fileID, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return fileID{}, false
	}
	return idOf(&st), true
}

// execThrough returns the path that executes the open file f itself:
// /proc/self/fd/N, resolved by the kernel at execve in the forked child,
// which shares the parent's descriptors until then (f is close-on-exec, so
// the plugin does not keep it). Without /proc it is the file's path.
func execThrough(f *os.File, id fileID, path string) string {
	p := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	if at, ok := pathIdentity(p); ok && at == id {
		return p
	}
	return path
}
