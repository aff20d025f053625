package transfer

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// ProtocolID is the libp2p protocol of the chunk transfer.
const ProtocolID protocol.ID = "/shoal/chunk/1.0.0"

// wireVersion is the first byte of every message; a peer that sees another
// value rejects the message instead of guessing its layout.
const wireVersion = 1

// Bounds on message sizes. Each decoder checks them before allocating.
const (
	// MaxKeySize bounds the opaque key of Fetch and Meta requests: the node
	// encodes an object version and a chunk index there, far below 4 KiB.
	MaxKeySize = 4 << 10
	// MaxMetaSize bounds a Meta answer: object metadata (HEAD), not data.
	MaxMetaSize = 64 << 10
	// maxCIDSize bounds an encoded CID: a CIDv1 with a 32-byte digest takes
	// 36 bytes; 128 leaves room for other codecs without inviting abuse.
	maxCIDSize = 128
	// maxErrMsg bounds the text of an error status.
	maxErrMsg = 512
	// maxRequestBody and maxResponseBody bound a message body as a whole
	// (fields plus length prefixes, 10 bytes per uvarint at most).
	maxRequestBody  = maxCIDSize + MaxKeySize + 4*10
	maxResponseBody = maxCIDSize + MaxMetaSize + 6*10
	// maxOffset bounds offsets, sizes and lengths on the wire (1 TiB): no
	// chunk comes near it, and it keeps int64 arithmetic far from overflow.
	maxOffset = 1 << 40
)

// MsgType is the kind of a request.
type MsgType uint8

// Request kinds.
const (
	// MsgGetBlock asks for bytes [Offset, Offset+Length) of the block CID
	// (Length 0: to the end).
	MsgGetBlock MsgType = 1
	// MsgFetch asks the chunk's home node to resolve Key (fetching from the
	// origin if needed) and answer with the chunk's CID, size and bytes from
	// Offset (Length 0: to the end).
	MsgFetch MsgType = 2
	// MsgMeta asks for opaque metadata bytes under Key.
	MsgMeta MsgType = 3
	// MsgFetchStream is MsgFetch whose answer is framed (see frame.go): the
	// home node sends the chunk's bytes while they still arrive from the
	// origin (cut-through), keep-alives while it waits for more, and the
	// chunk's CID at the end, or an error frame if its origin read failed.
	// Offset and Length must be 0: the whole chunk is sent.
	MsgFetchStream MsgType = 4
)

// maxMsgType is the highest request type this version understands.
const maxMsgType = MsgFetchStream

func (t MsgType) String() string {
	switch t {
	case MsgGetBlock:
		return "get"
	case MsgFetch:
		return "fetch"
	case MsgMeta:
		return "meta"
	case MsgFetchStream:
		return "fetch_stream"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Status is the outcome in a response header.
type Status uint8

// Response statuses.
const (
	StatusOK       Status = 0
	StatusNotFound Status = 1
	StatusBusy     Status = 2
	StatusError    Status = 3
	// StatusWorking is a keep-alive, not an answer: the server is still
	// running the request's handler (a home node may be reading from the
	// origin). It carries no field and may be sent any number of times
	// before the real answer header; the client restarts its stall timer on
	// each one.
	StatusWorking Status = 4
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNotFound:
		return "not_found"
	case StatusBusy:
		return "busy"
	case StatusError:
		return "error"
	case StatusWorking:
		return "working"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Request is one request; which fields are used depends on Type.
//
// Wire layout: version u8, type u8, body length u16 (big endian), body:
// uvarint-prefixed CID bytes, uvarint-prefixed key, uvarint offset, uvarint
// length.
type Request struct {
	Type   MsgType
	CID    cid.Cid // MsgGetBlock
	Key    []byte  // MsgFetch, MsgFetchStream, MsgMeta
	Offset uint64  // MsgGetBlock, MsgFetch
	Length uint64  // MsgGetBlock, MsgFetch; 0 = to the end
}

// Response is a response header. For MsgGetBlock and MsgFetch with StatusOK
// it is followed on the stream by exactly Length raw bytes (no framing);
// for MsgFetchStream by frames (see frame.go), and Payload then names the
// chunk's hash function (content.Hash) so the asker can hash as bytes
// arrive.
// Any number of StatusWorking keep-alives (no fields) may precede the one
// answer header.
//
// Wire layout: version u8, status u8, body length u32 (big endian), body:
// uvarint-prefixed CID bytes, uvarint size, uvarint offset, uvarint length,
// uvarint-prefixed payload.
type Response struct {
	Status Status
	CID    cid.Cid // MsgFetch: the chunk's CID
	Size   uint64  // total size of the block
	Offset uint64  // first byte that follows
	Length uint64  // number of raw bytes that follow
	// Payload is the Meta answer (StatusOK) or the error text (StatusError).
	Payload []byte
}

// AppendRequest appends the encoding of r to dst.
func AppendRequest(dst []byte, r Request) ([]byte, error) {
	if r.Type < MsgGetBlock || r.Type > maxMsgType {
		return dst, fmt.Errorf("%w: unknown request type %d", ErrProtocol, r.Type)
	}
	if len(r.Key) > MaxKeySize {
		return dst, fmt.Errorf("%w: key of %d bytes exceeds %d", ErrProtocol, len(r.Key), MaxKeySize)
	}
	if r.Offset > maxOffset || r.Length > maxOffset {
		return dst, fmt.Errorf("%w: offset/length out of range", ErrProtocol)
	}
	var cb []byte
	if r.CID.Defined() {
		cb = r.CID.Bytes()
	}
	if len(cb) > maxCIDSize {
		return dst, fmt.Errorf("%w: cid of %d bytes", ErrProtocol, len(cb))
	}
	body := make([]byte, 0, len(cb)+len(r.Key)+4*binary.MaxVarintLen64)
	body = appendBytes(body, cb)
	body = appendBytes(body, r.Key)
	body = binary.AppendUvarint(body, r.Offset)
	body = binary.AppendUvarint(body, r.Length)
	dst = append(dst, wireVersion, byte(r.Type))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(body)))
	return append(dst, body...), nil
}

// ReadRequest reads and validates one request from r.
func ReadRequest(r io.Reader) (Request, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Request{}, fmt.Errorf("transfer: read request header: %w", err)
	}
	if hdr[0] != wireVersion {
		return Request{}, fmt.Errorf("%w: request version %d, want %d", ErrProtocol, hdr[0], wireVersion)
	}
	n := int(binary.BigEndian.Uint16(hdr[2:]))
	if n > maxRequestBody {
		return Request{}, fmt.Errorf("%w: request body of %d bytes exceeds %d", ErrProtocol, n, maxRequestBody)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return Request{}, fmt.Errorf("transfer: read request body: %w", err)
	}
	return decodeRequest(MsgType(hdr[1]), body)
}

func decodeRequest(t MsgType, body []byte) (Request, error) {
	req := Request{Type: t}
	if t < MsgGetBlock || t > maxMsgType {
		return req, fmt.Errorf("%w: unknown request type %d", ErrProtocol, t)
	}
	d := decoder{b: body}
	cb := d.bytes(maxCIDSize)
	key := d.bytes(MaxKeySize)
	req.Offset = d.uvarint(maxOffset)
	req.Length = d.uvarint(maxOffset)
	if err := d.finish(); err != nil {
		return req, err
	}
	switch t {
	case MsgGetBlock:
		c, err := cid.Cast(cb)
		if err != nil {
			return req, fmt.Errorf("%w: bad cid: %v", ErrProtocol, err)
		}
		req.CID = c
		if len(key) != 0 {
			return req, fmt.Errorf("%w: key in a block request", ErrProtocol)
		}
	case MsgFetch, MsgMeta, MsgFetchStream:
		if len(cb) != 0 {
			return req, fmt.Errorf("%w: cid in a %s request", ErrProtocol, t)
		}
		req.Key = key
		if (t == MsgMeta || t == MsgFetchStream) && (req.Offset != 0 || req.Length != 0) {
			return req, fmt.Errorf("%w: range in a %s request", ErrProtocol, t)
		}
	}
	return req, nil
}

// AppendResponse appends the encoding of r to dst.
func AppendResponse(dst []byte, r Response) ([]byte, error) {
	if r.Status > StatusWorking {
		return dst, fmt.Errorf("%w: unknown status %d", ErrProtocol, r.Status)
	}
	if r.Status == StatusWorking && !r.empty() {
		return dst, fmt.Errorf("%w: keep-alive with fields", ErrProtocol)
	}
	if len(r.Payload) > MaxMetaSize {
		return dst, fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrProtocol, len(r.Payload), MaxMetaSize)
	}
	if r.Size > maxOffset || r.Offset > r.Size || r.Length > r.Size-r.Offset {
		return dst, fmt.Errorf("%w: range %d+%d outside size %d", ErrProtocol, r.Offset, r.Length, r.Size)
	}
	var cb []byte
	if r.CID.Defined() {
		cb = r.CID.Bytes()
	}
	if len(cb) > maxCIDSize {
		return dst, fmt.Errorf("%w: cid of %d bytes", ErrProtocol, len(cb))
	}
	body := make([]byte, 0, len(cb)+len(r.Payload)+6*binary.MaxVarintLen64)
	body = appendBytes(body, cb)
	body = binary.AppendUvarint(body, r.Size)
	body = binary.AppendUvarint(body, r.Offset)
	body = binary.AppendUvarint(body, r.Length)
	body = appendBytes(body, r.Payload)
	dst = append(dst, wireVersion, byte(r.Status))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...), nil
}

// ReadResponse reads and validates one response header from r. The raw
// bytes that may follow it are left on r.
func ReadResponse(r io.Reader) (Response, error) {
	var hdr [6]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Response{}, fmt.Errorf("transfer: read response header: %w", err)
	}
	if hdr[0] != wireVersion {
		return Response{}, fmt.Errorf("%w: response version %d, want %d", ErrProtocol, hdr[0], wireVersion)
	}
	n := binary.BigEndian.Uint32(hdr[2:])
	if n > maxResponseBody {
		return Response{}, fmt.Errorf("%w: response body of %d bytes exceeds %d", ErrProtocol, n, maxResponseBody)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return Response{}, fmt.Errorf("transfer: read response body: %w", err)
	}
	return decodeResponse(Status(hdr[1]), body)
}

func decodeResponse(s Status, body []byte) (Response, error) {
	resp := Response{Status: s}
	if s > StatusWorking {
		return resp, fmt.Errorf("%w: unknown status %d", ErrProtocol, s)
	}
	d := decoder{b: body}
	cb := d.bytes(maxCIDSize)
	resp.Size = d.uvarint(maxOffset)
	resp.Offset = d.uvarint(maxOffset)
	resp.Length = d.uvarint(maxOffset)
	resp.Payload = d.bytes(MaxMetaSize)
	if err := d.finish(); err != nil {
		return resp, err
	}
	if resp.Offset > resp.Size || resp.Length > resp.Size-resp.Offset {
		return resp, fmt.Errorf("%w: range %d+%d outside size %d", ErrProtocol, resp.Offset, resp.Length, resp.Size)
	}
	if len(cb) != 0 {
		c, err := cid.Cast(cb)
		if err != nil {
			return resp, fmt.Errorf("%w: bad cid: %v", ErrProtocol, err)
		}
		resp.CID = c
	}
	if s == StatusError && len(resp.Payload) > maxErrMsg {
		return resp, fmt.Errorf("%w: error text of %d bytes", ErrProtocol, len(resp.Payload))
	}
	if s == StatusWorking && !resp.empty() {
		return resp, fmt.Errorf("%w: keep-alive with fields", ErrProtocol)
	}
	return resp, nil
}

// empty reports whether r carries no field besides its status (as a
// keep-alive must).
func (r Response) empty() bool {
	return !r.CID.Defined() && r.Size == 0 && r.Offset == 0 && r.Length == 0 && len(r.Payload) == 0
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// decoder reads length-checked fields from a body; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint(max uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: truncated or overlong varint", ErrProtocol)
		return 0
	}
	if v > max {
		d.err = fmt.Errorf("%w: value %d exceeds %d", ErrProtocol, v, max)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(max int) []byte {
	n := d.uvarint(uint64(max))
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = fmt.Errorf("%w: field of %d bytes truncated", ErrProtocol, n)
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]byte, n)
	copy(out, d.b[:n])
	d.b = d.b[n:]
	return out
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrProtocol, len(d.b))
	}
	return d.err
}
