package origin

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
)

// uploadInfo is the record of a staged multipart upload.
type uploadInfo struct {
	Key         string            `json:"key"`
	ContentType string            `json:"content_type,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

func uploadDir(bucket, id string) string { return path.Join(bucket, uploadsDirName, id) }

func partName(n int32) string { return fmt.Sprintf("part-%05d", n) }

// validUploadID: IDs are 32 lower-case hex digits (we make them), which also
// keeps them safe as path elements.
func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (d *Dir) loadUpload(op, bucket, key, id string) (uploadInfo, error) {
	noUpload := fmt.Errorf("origin: dir %s %s upload %q: %w", op, target(bucket, key), id, ErrNoSuchUpload)
	if !validUploadID(id) {
		return uploadInfo{}, noUpload
	}
	data, err := d.root.ReadFile(path.Join(uploadDir(bucket, id), "upload.json"))
	if err != nil {
		return uploadInfo{}, noUpload
	}
	var u uploadInfo
	if json.Unmarshal(data, &u) != nil || u.Key != key {
		return uploadInfo{}, noUpload
	}
	return u, nil
}

// CreateMultipartUpload stages a new upload and returns its ID.
func (d *Dir) CreateMultipartUpload(ctx context.Context, bucket, key, contentType string, meta map[string]string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := d.checkObject("CreateMultipartUpload", bucket, key); err != nil {
		return "", err
	}
	id := randomHex(16)
	data, err := json.Marshal(uploadInfo{Key: key, ContentType: contentType, Metadata: lowerKeys(meta)})
	if err != nil {
		return "", err
	}
	dir := uploadDir(bucket, id)
	if err := d.root.MkdirAll(dir, 0o755); err != nil {
		return "", fsErr("CreateMultipartUpload", target(bucket, key), err)
	}
	if err := d.root.WriteFile(path.Join(dir, "upload.json"), data, 0o644); err != nil {
		return "", fsErr("CreateMultipartUpload", target(bucket, key), err)
	}
	return id, nil
}

// UploadPart stores one part (replacing an earlier upload of the same
// number) and returns its ETag, the quoted hex MD5 of the part.
func (d *Dir) UploadPart(ctx context.Context, bucket, key, uploadID string, partNumber int32, body io.Reader, size int64) (string, error) {
	if err := d.checkObject("UploadPart", bucket, key); err != nil {
		return "", err
	}
	tgt := target(bucket, key)
	if partNumber < 1 || partNumber > maxParts {
		return "", fmt.Errorf("origin: dir UploadPart %s: part number %d: %w", tgt, partNumber, ErrInvalidArgument)
	}
	if _, err := d.loadUpload("UploadPart", bucket, key, uploadID); err != nil {
		return "", err
	}
	if body == nil {
		body = strings.NewReader("")
	}
	if size >= 0 {
		body = io.LimitReader(body, size+1)
	}
	h := md5.New()
	tmp, n, err := d.writeTemp(ctx, bucket, body, h)
	if err != nil {
		return "", fsErrOrCtx(ctx, "UploadPart", tgt, err)
	}
	if size >= 0 && n != size {
		_ = d.root.Remove(tmp)
		return "", fmt.Errorf("origin: dir UploadPart %s: body has %d bytes, size says %d: %w", tgt, n, size, ErrInvalidArgument)
	}
	etag := `"` + hex.EncodeToString(h.Sum(nil)) + `"`
	dir := uploadDir(bucket, uploadID)
	// The ETag file is written first: a part file without a matching ETag
	// is treated as missing at completion.
	if err := d.root.WriteFile(path.Join(dir, partName(partNumber)+".etag"), []byte(etag), 0o644); err != nil {
		_ = d.root.Remove(tmp)
		return "", fsErr("UploadPart", tgt, err)
	}
	if err := d.root.Rename(tmp, path.Join(dir, partName(partNumber))); err != nil {
		_ = d.root.Remove(tmp)
		return "", fsErr("UploadPart", tgt, err) // aborted concurrently
	}
	return etag, nil
}

// CompleteMultipartUpload concatenates the listed parts (ascending part
// numbers, ETags as returned by UploadPart, every part but the last at least
// 5 MiB, as S3 requires) into the object. The ETag is S3's multipart form,
// "<hex md5 of the concatenated binary part MD5s>-<number of parts>".
func (d *Dir) CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []CompletedPart) (ObjectInfo, error) {
	if err := d.checkObject("CompleteMultipartUpload", bucket, key); err != nil {
		return ObjectInfo{}, err
	}
	tgt := target(bucket, key)
	u, err := d.loadUpload("CompleteMultipartUpload", bucket, key, uploadID)
	if err != nil {
		return ObjectInfo{}, err
	}
	bad := func(format string, a ...any) (ObjectInfo, error) {
		return ObjectInfo{}, fmt.Errorf("origin: dir CompleteMultipartUpload %s: "+format+": %w", append([]any{tgt}, append(a, ErrInvalidArgument)...)...)
	}
	if len(parts) == 0 {
		return bad("no parts")
	}
	dir := uploadDir(bucket, uploadID)
	var sums []byte
	readers := make([]io.Reader, 0, len(parts))
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for i, p := range parts {
		if i > 0 && p.PartNumber <= parts[i-1].PartNumber {
			return bad("part numbers not ascending at %d", p.PartNumber)
		}
		stored, err := d.root.ReadFile(path.Join(dir, partName(p.PartNumber)+".etag"))
		if err != nil || !etagMatch(string(stored), p.ETag) || p.ETag == "*" {
			return bad("part %d missing or ETag mismatch", p.PartNumber)
		}
		f, err := d.root.Open(path.Join(dir, partName(p.PartNumber)))
		if err != nil {
			return bad("part %d missing", p.PartNumber)
		}
		closers = append(closers, f)
		fi, err := f.Stat()
		if err != nil {
			return ObjectInfo{}, fsErr("CompleteMultipartUpload", tgt, err)
		}
		if i < len(parts)-1 && fi.Size() < minPartSize {
			return bad("part %d is %d bytes, smaller than 5 MiB and not the last", p.PartNumber, fi.Size())
		}
		sum, err := hex.DecodeString(strings.Trim(string(stored), `"`))
		if err != nil {
			return bad("part %d: corrupt stored ETag", p.PartNumber)
		}
		sums = append(sums, sum...)
		readers = append(readers, f)
	}
	tmp, _, err := d.writeTemp(ctx, bucket, io.MultiReader(readers...), nil)
	if err != nil {
		return ObjectInfo{}, fsErrOrCtx(ctx, "CompleteMultipartUpload", tgt, err)
	}
	total := md5.Sum(sums)
	info, err := d.publish("CompleteMultipartUpload", tmp, bucket, key, dirMeta{
		ETag:        fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(total[:]), len(parts)),
		ContentType: u.ContentType,
		Metadata:    u.Metadata,
	})
	if err != nil {
		return ObjectInfo{}, err
	}
	_ = d.root.RemoveAll(dir)
	return info, nil
}

// AbortMultipartUpload discards a staged upload.
func (d *Dir) AbortMultipartUpload(ctx context.Context, bucket, key, uploadID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.checkObject("AbortMultipartUpload", bucket, key); err != nil {
		return err
	}
	if _, err := d.loadUpload("AbortMultipartUpload", bucket, key, uploadID); err != nil {
		return err
	}
	if err := d.root.RemoveAll(uploadDir(bucket, uploadID)); err != nil {
		return fsErr("AbortMultipartUpload", target(bucket, key), err)
	}
	return nil
}
