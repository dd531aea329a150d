package sqlite

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"sync"
)

// Documents are stored compressed: a run's documents and their change
// history are most of the database, and JSON shrinks to a third or less.
// A packed value starts with packMagic, which no JSON document (nor an
// empty value) starts with; anything else is a value stored as it is, so
// databases written before compression read as they were. A value that
// does not shrink, or is too small to, stays as it is.
var packMagic = []byte{0, 'P', 'Z', 1}

// packMin is the smallest value worth compressing.
const packMin = 200

var writers = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed)
	return w
}}

// pack returns data as it is stored: compressed when that makes it smaller.
func pack(data []byte) []byte {
	// A value that happens to start with the marker is always packed, so
	// that it cannot be read back as something else.
	marked := bytes.HasPrefix(data, packMagic)
	if len(data) < packMin && !marked {
		return nonNil(data)
	}
	var buf bytes.Buffer
	buf.Grow(len(data)/2 + len(packMagic))
	buf.Write(packMagic)
	w := writers.Get().(*flate.Writer)
	defer writers.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(data); err != nil {
		return data // writing to memory does not fail
	}
	if err := w.Close(); err != nil || (buf.Len() >= len(data) && !marked) {
		return data
	}
	return buf.Bytes()
}

// readers keeps decompressors between calls: a new one allocates its
// tables and window (tens of KiB) each time, and a watch unpacks every
// change it sends.
var readers = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}

// unpack returns a stored value as it was written.
func unpack(stored []byte) ([]byte, error) {
	if !bytes.HasPrefix(stored, packMagic) {
		return stored, nil
	}
	r := readers.Get().(io.ReadCloser)
	defer readers.Put(r)
	if err := r.(flate.Resetter).Reset(bytes.NewReader(stored[len(packMagic):]), nil); err != nil {
		return nil, fmt.Errorf("read a stored document: %w", err)
	}
	// JSON packs to a third of its size or less: start there.
	out := bytes.NewBuffer(make([]byte, 0, 4*len(stored)))
	if _, err := out.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("read a stored document: %w", err)
	}
	return out.Bytes(), nil
}
