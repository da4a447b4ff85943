package body

import "sync"

// capturePool reuses the buffers of the captures that multipart keeps of a body in case it
// holds no part: they fill with the first few kilobytes of nearly every multipart, and are
// dropped as soon as a part is found. Buffers that grew beyond max are left to the garbage
// collector, so the pool holds small buffers only.
type capturePool struct {
	pool sync.Pool
	max  int
}

var rawCopies = capturePool{max: 64 << 10}

func (p *capturePool) get() []byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 8<<10)
}

// put takes c's buffer back; c keeps nothing more after it.
func (p *capturePool) put(c *capture) {
	b := c.b[:0]
	c.b, c.stop = nil, true
	if cap(b) > 0 && cap(b) <= p.max {
		p.pool.Put(&b)
	}
}

// bufferPool reuses byte buffers of up to max bytes of capacity; larger ones are left to the
// garbage collector, so that one large part does not stay in memory after its message.
type bufferPool struct {
	pool    sync.Pool
	initial int // capacity of a new buffer
	max     int
}

// keepBuffers holds the capture memory of kept attachment parts.
var keepBuffers = bufferPool{initial: 32 << 10, max: 512 << 10}

func (p *bufferPool) get() []byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, p.initial)
}

func (p *bufferPool) put(b []byte) {
	if cap(b) == 0 || cap(b) > p.max {
		return
	}
	b = b[:0]
	p.pool.Put(&b)
}
