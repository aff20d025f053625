package transfer

import (
	"encoding/binary"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Frames of a MsgFetchStream answer. After the OK answer header (Size: the
// chunk's size; CID: the chunk's CID if the home already knows it; Payload:
// the chunk's hash function) the home sends frames until an end or error
// frame:
//
//	frame: type u8 | body length u32 BE | body
//
//	data       (1) 1..maxFrameData bytes of the chunk, in order
//	keep-alive (2) empty: the home is waiting for more bytes from its origin
//	end        (3) the chunk's CID: every byte was sent (the data frames
//	               added up to Size); the asker verifies the bytes against it
//	error      (4) 1..maxErrMsg bytes of text: the home's origin read failed
//	               (no fault of the home); the asker tries elsewhere
//
// Every length is checked against its type's bound before a byte of the
// body is read or allocated.

// frameType is the kind of a stream frame.
type frameType uint8

const (
	frameData      frameType = 1
	frameKeepAlive frameType = 2
	frameEnd       frameType = 3
	frameError     frameType = 4
)

func (t frameType) String() string {
	switch t {
	case frameData:
		return "data"
	case frameKeepAlive:
		return "keep-alive"
	case frameEnd:
		return "end"
	case frameError:
		return "error"
	}
	return fmt.Sprintf("frame(%d)", uint8(t))
}

const (
	// frameHeaderSize: type u8 + length u32.
	frameHeaderSize = 5
	// maxFrameData bounds a data frame: one write piece, so the upload
	// limiter and write deadline work per frame as for raw bodies.
	maxFrameData = writePiece
)

// frameHeader is a decoded frame header.
type frameHeader struct {
	typ frameType
	len int
}

// appendFrameHeader appends a frame header to dst.
func appendFrameHeader(dst []byte, t frameType, n int) []byte {
	dst = append(dst, byte(t))
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// parseFrameHeader decodes a frame header and checks its length against
// the type's bound; remaining is the number of chunk bytes not yet
// received (a data frame may not carry more).
func parseFrameHeader(b [frameHeaderSize]byte, remaining int64) (frameHeader, error) {
	h := frameHeader{typ: frameType(b[0])}
	n := binary.BigEndian.Uint32(b[1:])
	var lo, hi uint32
	switch h.typ {
	case frameData:
		lo, hi = 1, uint32(min(int64(maxFrameData), max(remaining, 0)))
	case frameKeepAlive:
		lo, hi = 0, 0
	case frameEnd:
		lo, hi = 1, maxCIDSize
	case frameError:
		lo, hi = 1, maxErrMsg
	default:
		return h, fmt.Errorf("%w: unknown frame type %d", ErrProtocol, b[0])
	}
	if n < lo || n > hi {
		return h, fmt.Errorf("%w: %s frame of %d bytes (want %d..%d)", ErrProtocol, h.typ, n, lo, hi)
	}
	h.len = int(n)
	return h, nil
}

// parseEndFrame decodes an end frame's body.
func parseEndFrame(body []byte) (cid.Cid, error) {
	c, err := cid.Cast(body)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: bad cid in end frame: %v", ErrProtocol, err)
	}
	return c, nil
}
