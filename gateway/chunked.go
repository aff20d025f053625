package gateway

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"io"
	"strconv"
	"strings"
)

// Limits of the aws-chunked decoder. A chunk header is
// "<hex size>;chunk-signature=<64 hex>" (about 90 bytes); trailers are a few
// checksum lines. The limits only stop a hostile client from making the
// decoder buffer without bound.
const (
	maxChunkLineBytes = 4096
	maxTrailerLines   = 16
)

var errChunkedMalformed = errInvalidRequest.with("The aws-chunked request body is malformed.")

// chunkSigner holds what is needed to verify chunk and trailer signatures
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]).
type chunkSigner struct {
	key     []byte
	amzDate string
	scope   string
	prevSig string
}

func (s *chunkSigner) next(kind, dataHash string) string {
	sts := kind + "\n" + s.amzDate + "\n" + s.scope + "\n" + s.prevSig + "\n"
	if kind == "AWS4-HMAC-SHA256-PAYLOAD" {
		sts += emptySHA256 + "\n"
	}
	sts += dataHash
	return hex.EncodeToString(hmacSHA256(s.key, []byte(sts)))
}

// chunkedReader decodes an aws-chunked body:
//
//	<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n ... 0[;chunk-signature=<sig>]\r\n
//	[<trailer-name>:<value>\r\n ... [x-amz-trailer-signature:<sig>\r\n]]\r\n
//
// With a signer, every chunk signature (and the trailer signature) is
// verified; a bad one fails the Read that completes the chunk. The final
// Read returns io.EOF only after the whole framing checked out.
type chunkedReader struct {
	br       *bufio.Reader
	signer   *chunkSigner // nil: signatures are not verified
	signed   bool         // chunk signatures are present in the framing
	trailer  bool         // trailers follow the final chunk
	left     int64        // bytes left in the current chunk
	wantSig  string       // signature of the current chunk
	chunkSHA hash.Hash    // hash of the current chunk's data (signer only)
	trailers map[string]string
	err      error // sticky
	started  bool
}

func newChunkedReader(r io.Reader, signed, trailer bool, signer *chunkSigner) *chunkedReader {
	cr := &chunkedReader{br: bufio.NewReaderSize(r, 64<<10), signed: signed, trailer: trailer, signer: signer}
	if signer != nil {
		cr.chunkSHA = sha256.New()
	}
	return cr
}

// Trailers returns the trailing headers, valid once Read returned io.EOF.
func (c *chunkedReader) Trailers() map[string]string { return c.trailers }

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for c.left == 0 {
		if err := c.nextChunk(); err != nil {
			c.err = err
			return 0, err
		}
		if c.err != nil { // finished cleanly
			return 0, c.err
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.left -= int64(n)
	if c.chunkSHA != nil {
		c.chunkSHA.Write(p[:n])
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		c.err = errIncompleteBody
		return n, c.err
	}
	return n, nil
}

// nextChunk finishes the current chunk (CRLF, signature) and reads the
// next chunk header; after the last chunk it reads the trailers and sets
// c.err to io.EOF.
func (c *chunkedReader) nextChunk() error {
	if c.started {
		if err := c.expectCRLF(); err != nil {
			return err
		}
		if err := c.verifyChunk(); err != nil {
			return err
		}
	}
	c.started = true
	line, err := c.readLine()
	if err != nil {
		return err
	}
	sizeStr, ext, hasExt := strings.Cut(line, ";")
	if len(sizeStr) == 0 || len(sizeStr) > 15 {
		return errChunkedMalformed
	}
	size, err := strconv.ParseInt(sizeStr, 16, 64)
	if err != nil || size < 0 {
		return errChunkedMalformed
	}
	c.wantSig = ""
	if c.signed {
		sig, ok := strings.CutPrefix(ext, "chunk-signature=")
		if !hasExt || !ok || !isHexSig(sig) {
			return errChunkedMalformed.with("The aws-chunked body is missing a chunk signature.")
		}
		c.wantSig = sig
	}
	c.left = size
	if size > 0 {
		return nil
	}
	// Final, empty chunk.
	if err := c.verifyChunk(); err != nil {
		return err
	}
	if c.trailer {
		if err := c.readTrailers(); err != nil {
			return err
		}
	} else if err := c.expectCRLF(); err != nil {
		return err
	}
	c.err = io.EOF
	return nil
}

func (c *chunkedReader) verifyChunk() error {
	if c.signer == nil {
		return nil
	}
	got := hex.EncodeToString(c.chunkSHA.Sum(nil))
	c.chunkSHA.Reset()
	want := c.signer.next("AWS4-HMAC-SHA256-PAYLOAD", got)
	if subtle.ConstantTimeCompare([]byte(want), []byte(c.wantSig)) != 1 {
		return errSignatureMismatch.with("The chunk signature does not match.")
	}
	c.signer.prevSig = want
	return nil
}

func (c *chunkedReader) readTrailers() error {
	c.trailers = map[string]string{}
	var canon strings.Builder
	var trailerSig string
	for i := 0; ; i++ {
		if i > maxTrailerLines {
			return errChunkedMalformed.with("Too many trailing headers.")
		}
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if line == "" {
			break
		}
		name, val, ok := strings.Cut(line, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		val = strings.TrimSpace(val)
		if !ok || name == "" {
			return errChunkedMalformed.with("A trailing header is malformed.")
		}
		if name == "x-amz-trailer-signature" {
			trailerSig = val
			continue
		}
		if _, dup := c.trailers[name]; dup {
			return errChunkedMalformed.with("Duplicate trailing header.")
		}
		c.trailers[name] = val
		canon.WriteString(name + ":" + val + "\n")
	}
	if c.signed && c.signer != nil {
		want := c.signer.next("AWS4-HMAC-SHA256-TRAILER", hexSHA256([]byte(canon.String())))
		if subtle.ConstantTimeCompare([]byte(want), []byte(trailerSig)) != 1 {
			return errSignatureMismatch.with("The trailer signature does not match.")
		}
	}
	return nil
}

// readLine reads one CRLF-terminated line of at most maxChunkLineBytes.
func (c *chunkedReader) readLine() (string, error) {
	var b []byte
	for {
		frag, err := c.br.ReadSlice('\n')
		b = append(b, frag...)
		if len(b) > maxChunkLineBytes {
			return "", errChunkedMalformed.with("An aws-chunked line is too long.")
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", errIncompleteBody
		}
		break
	}
	if len(b) < 2 || b[len(b)-2] != '\r' {
		return "", errChunkedMalformed
	}
	return string(b[:len(b)-2]), nil
}

func (c *chunkedReader) expectCRLF() error {
	var crlf [2]byte
	if _, err := io.ReadFull(c.br, crlf[:]); err != nil {
		return errIncompleteBody
	}
	if crlf != [2]byte{'\r', '\n'} {
		return errChunkedMalformed
	}
	return nil
}
