package registrytest

import (
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Blackhole returns the http URL of a loopback address that never answers
// a connection: a listening socket with a backlog of 0 whose accept queue
// is filled by connections nobody accepts. Linux drops every further SYN,
// so a client's connect hangs until its own timeout, as it does for a
// registry behind a firewall that drops packets.
func Blackhole(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	for range 16 {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			return "http://" + addr // the queue is full: connects hang now
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("Blackhole: %s still accepts connections after 16 unaccepted ones", addr)
	return ""
}
