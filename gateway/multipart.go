package gateway

import (
	"encoding/xml"
	"net/http"
	"strconv"
)

// maxParts is S3's limit on parts per multipart upload.
const maxParts = 10000

type initiateMultipartUploadResult struct {
	XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ InitiateMultipartUploadResult"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	UploadID string   `xml:"UploadId"`
}

type completeMultipartUpload struct {
	XMLName xml.Name `xml:"CompleteMultipartUpload"`
	Parts   []struct {
		PartNumber int32  `xml:"PartNumber"`
		ETag       string `xml:"ETag"`
	} `xml:"Part"`
}

type completeMultipartUploadResult struct {
	XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CompleteMultipartUploadResult"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	ETag     string   `xml:"ETag"`
}

func (g *Gateway) createMultipart(req *request) error {
	meta, err := userMetadata(req.r.Header)
	if err != nil {
		return err
	}
	id, err := g.be.CreateMultipartUpload(req.r.Context(), req.rt.bucket, req.rt.key, req.r.Header.Get("Content-Type"), meta)
	if err != nil {
		return err
	}
	return g.writeXML(req, initiateMultipartUploadResult{Bucket: req.rt.bucket, Key: req.rt.key, UploadID: id})
}

func (g *Gateway) uploadID(req *request) (string, error) {
	vs := req.q["uploadId"]
	if len(vs) != 1 || vs[0] == "" {
		return "", errInvalidArgument.with("Invalid uploadId.")
	}
	return vs[0], nil
}

func (g *Gateway) uploadPart(req *request) error {
	r := req.r
	if r.Header.Get("X-Amz-Copy-Source") != "" {
		return errNotImplemented.with("UploadPartCopy is not supported.")
	}
	id, err := g.uploadID(req)
	if err != nil {
		return err
	}
	pn, err := strconv.Atoi(req.q.Get("partNumber"))
	if err != nil || pn < 1 || pn > maxParts {
		return errInvalidArgument.with("Part number must be an integer between 1 and 10000, inclusive.")
	}
	body, size, err := g.uploadBody(r, req.auth)
	if err != nil {
		return err
	}
	if size < 0 {
		return errMissingContentLength
	}
	etag, err := g.be.UploadPart(r.Context(), req.rt.bucket, req.rt.key, id, int32(pn), body, size)
	if verr := body.Err(); verr != nil {
		return verr
	}
	if err != nil {
		return err
	}
	req.w.Header().Set("ETag", etag)
	req.w.WriteHeader(http.StatusOK)
	return nil
}

func (g *Gateway) completeMultipart(req *request) error {
	id, err := g.uploadID(req)
	if err != nil {
		return err
	}
	var in completeMultipartUpload
	if err := g.readXML(req, &in); err != nil {
		return err
	}
	if len(in.Parts) == 0 || len(in.Parts) > maxParts {
		return errMalformedXML.with("The parts list must name between 1 and 10000 parts.")
	}
	parts := make([]CompletedPart, len(in.Parts))
	for i, p := range in.Parts {
		if p.PartNumber < 1 || p.PartNumber > maxParts || p.ETag == "" {
			return errInvalidArgument.with("Invalid part number or ETag in the parts list.")
		}
		if i > 0 && p.PartNumber <= in.Parts[i-1].PartNumber {
			return errInvalidPartOrder
		}
		parts[i] = CompletedPart{PartNumber: p.PartNumber, ETag: p.ETag}
	}
	info, err := g.be.CompleteMultipartUpload(req.r.Context(), req.rt.bucket, req.rt.key, id, parts)
	if err != nil {
		return err
	}
	return g.writeXML(req, completeMultipartUploadResult{
		Location: "/" + req.rt.bucket + "/" + uriEncode(req.rt.key, false),
		Bucket:   req.rt.bucket, Key: req.rt.key, ETag: info.ETag,
	})
}

func (g *Gateway) abortMultipart(req *request) error {
	id, err := g.uploadID(req)
	if err != nil {
		return err
	}
	if err := g.be.AbortMultipartUpload(req.r.Context(), req.rt.bucket, req.rt.key, id); err != nil {
		return err
	}
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}
