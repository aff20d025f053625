package transfer

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/shoal-cache/shoal/internal/content"
)

var testCID = content.Sum(content.SHA256, []byte("chunk"))

func TestRequestRoundTrip(t *testing.T) {
	for _, r := range []Request{
		{Type: MsgGetBlock, CID: testCID},
		{Type: MsgGetBlock, CID: testCID, Offset: 1 << 20, Length: 1 << 20},
		{Type: MsgFetch, Key: []byte("bucket/key@v1#3"), Offset: 7},
		{Type: MsgFetch, Key: bytes.Repeat([]byte{0xff}, MaxKeySize)},
		{Type: MsgMeta, Key: []byte("bucket/key")},
	} {
		b, err := AppendRequest(nil, r)
		if err != nil {
			t.Fatalf("encode %+v: %v", r, err)
		}
		got, err := ReadRequest(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("decode %+v: %v", r, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip: got %+v, want %+v", got, r)
		}
	}
}

func TestResponseRoundTrip(t *testing.T) {
	for _, r := range []Response{
		{Status: StatusOK, Size: 4 << 20, Offset: 1 << 20, Length: 1 << 20},
		{Status: StatusOK, CID: testCID, Size: 10, Length: 10},
		{Status: StatusOK, Payload: []byte("meta")},
		{Status: StatusNotFound},
		{Status: StatusBusy},
		{Status: StatusError, Payload: []byte("disk on fire")},
		{Status: StatusWorking},
	} {
		b, err := AppendResponse(nil, r)
		if err != nil {
			t.Fatalf("encode %+v: %v", r, err)
		}
		got, err := ReadResponse(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("decode %+v: %v", r, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip: got %+v, want %+v", got, r)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := AppendRequest(nil, Request{Type: MsgGetBlock, CID: testCID})
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, b := range map[string][]byte{
		"empty":         {},
		"short header":  {wireVersion, 1},
		"bad version":   mutate(func(b []byte) []byte { b[0] = 9; return b }),
		"unknown type":  mutate(func(b []byte) []byte { b[1] = 77; return b }),
		"huge body":     {wireVersion, 1, 0xff, 0xff},
		"truncated":     good[:len(good)-1],
		"trailing":      append(mutate(func(b []byte) []byte { b[3]++; return b }), 0),
		"bad cid":       {wireVersion, 1, 0, 6, 2, 0xff, 0xff, 0, 0, 0},
		"key in get":    {wireVersion, 1, 0, 5, 0, 1, 'k', 0, 0},
		"range in meta": {wireVersion, 3, 0, 5, 0, 1, 'k', 1, 0},
	} {
		if _, err := ReadRequest(bytes.NewReader(b)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := AppendRequest(nil, Request{Type: MsgMeta, Key: make([]byte, MaxKeySize+1)}); !errors.Is(err, ErrProtocol) {
		t.Errorf("oversized key encoded: %v", err)
	}
	if _, err := AppendResponse(nil, Response{Status: StatusOK, Size: 10, Offset: 5, Length: 6}); !errors.Is(err, ErrProtocol) {
		t.Errorf("range past size encoded: %v", err)
	}
	for _, r := range []Response{
		{Status: StatusWorking, Payload: []byte("x")},
		{Status: StatusWorking, Size: 1},
		{Status: StatusWorking, CID: testCID},
		{Status: StatusWorking + 1},
	} {
		if _, err := AppendResponse(nil, r); !errors.Is(err, ErrProtocol) {
			t.Errorf("%+v encoded: %v", r, err)
		}
	}
	// A keep-alive that carries a field is refused on decode too.
	withField, _ := AppendResponse(nil, Response{Status: StatusOK, Size: 1})
	withField[1] = byte(StatusWorking)
	if _, err := ReadResponse(bytes.NewReader(withField)); !errors.Is(err, ErrProtocol) {
		t.Errorf("keep-alive with a size decoded: %v", err)
	}
	ka, _ := AppendResponse(nil, Response{Status: StatusWorking})
	if len(ka) != 11 {
		t.Errorf("keep-alive frame is %d bytes, doc.go says 11", len(ka))
	}
	bad, _ := AppendResponse(nil, Response{Status: StatusOK, Size: 10, Offset: 5, Length: 5})
	bad[len(bad)-2] = 6 // length 6 > size-offset
	if _, err := ReadResponse(bytes.NewReader(bad)); !errors.Is(err, ErrProtocol) {
		t.Errorf("range past size decoded: %v", err)
	}
}

func FuzzReadRequest(f *testing.F) {
	for _, r := range []Request{
		{Type: MsgGetBlock, CID: testCID, Offset: 1, Length: 2},
		{Type: MsgFetch, Key: []byte("k")},
		{Type: MsgMeta, Key: []byte("m")},
	} {
		b, _ := AppendRequest(nil, r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ReadRequest(bytes.NewReader(b))
		if err != nil {
			return
		}
		enc, err := AppendRequest(nil, r)
		if err != nil {
			t.Fatalf("decoded request does not encode: %+v: %v", r, err)
		}
		r2, err := ReadRequest(bytes.NewReader(enc))
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-decode: %+v vs %+v (%v)", r, r2, err)
		}
	})
}

func FuzzReadResponse(f *testing.F) {
	for _, r := range []Response{
		{Status: StatusOK, CID: testCID, Size: 9, Offset: 2, Length: 3},
		{Status: StatusOK, Payload: []byte("meta")},
		{Status: StatusError, Payload: []byte("x")},
		{Status: StatusBusy},
		{Status: StatusWorking},
	} {
		b, _ := AppendResponse(nil, r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ReadResponse(bytes.NewReader(b))
		if err != nil {
			return
		}
		if r.Offset > r.Size || r.Length > r.Size-r.Offset || len(r.Payload) > MaxMetaSize {
			t.Fatalf("decoder let through %+v", r)
		}
		if r.Status > StatusWorking || r.Status == StatusWorking && !r.empty() {
			t.Fatalf("decoder let through %+v", r)
		}
		enc, err := AppendResponse(nil, r)
		if err != nil {
			t.Fatalf("decoded response does not encode: %+v: %v", r, err)
		}
		r2, err := ReadResponse(bytes.NewReader(enc))
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-decode: %+v vs %+v (%v)", r, r2, err)
		}
	})
}
