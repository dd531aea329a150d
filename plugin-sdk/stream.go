package sdk

import (
	"errors"
	"io"
)

// SendChunks reads r to its end and hands it to send in chunks of at most
// 64 KiB. The category shims use it to stream blobs.
func SendChunks(r io.Reader, send func([]byte) error) error {
	buf := make([]byte, chunkSize)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if serr := send(buf[:n]); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// chunkReader turns a function that returns successive chunks into an
// io.ReadCloser.
type chunkReader struct {
	next  func() ([]byte, error)
	buf   []byte
	err   error
	close func()
}

// NewChunkReader returns a reader over the chunks next returns, until next
// returns io.EOF. close, if not nil, is called by Close (for example to
// cancel the stream's context).
func NewChunkReader(next func() ([]byte, error), close func()) io.ReadCloser {
	return &chunkReader{next: next, close: close}
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		chunk, err := r.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				r.err = io.EOF
			} else {
				r.err = FromGRPC(err)
			}
		}
		r.buf = chunk
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *chunkReader) Close() error {
	if r.close != nil {
		r.close()
	}
	return nil
}
