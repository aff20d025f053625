package node

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cache/shoal/gateway"
	"github.com/shoal-cache/shoal/origin"
)

// fill sets every field of the struct v points to a distinct non-zero
// value (strings name their field).
func fill(t *testing.T, v any) {
	t.Helper()
	rv := reflect.ValueOf(v).Elem()
	for i := range rv.NumField() {
		f, name := rv.Field(i), rv.Type().Field(i).Name
		switch f.Kind() {
		case reflect.String:
			f.SetString("v-" + name)
		case reflect.Int, reflect.Int32, reflect.Int64:
			f.SetInt(int64(i + 7))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{"k-" + strings.ToLower(name): "v"}))
		case reflect.Struct:
			if f.Type() == reflect.TypeFor[time.Time]() {
				f.Set(reflect.ValueOf(time.Unix(int64(1e9+i), 0).UTC()))
				continue
			}
			fill(t, f.Addr().Interface())
		default:
			if f.CanInterface() && f.Kind() == reflect.Interface {
				continue // readers and the like
			}
			t.Fatalf("fill: field %s of kind %s not handled; extend the test", name, f.Kind())
		}
	}
}

// sameFields checks that every field of to has a field of the same name in
// from with an equal value, and that every field of from is either in to or
// listed in dropped.
func sameFields(t *testing.T, from, to any, dropped ...string) {
	t.Helper()
	fv, tv := reflect.ValueOf(from), reflect.ValueOf(to)
	for i := range tv.NumField() {
		name := tv.Type().Field(i).Name
		f := fv.FieldByName(name)
		if !f.IsValid() {
			t.Errorf("%s.%s has no counterpart in %s", tv.Type(), name, fv.Type())
			continue
		}
		if tv.Field(i).Kind() == reflect.Interface {
			continue
		}
		if f.Type() != tv.Field(i).Type() && f.Type().ConvertibleTo(tv.Field(i).Type()) {
			f = f.Convert(tv.Field(i).Type()) // same shape, the other package's type
		}
		if !reflect.DeepEqual(f.Interface(), tv.Field(i).Interface()) {
			t.Errorf("%s: %v did not cross (got %v)", name, f.Interface(), tv.Field(i).Interface())
		}
	}
	for i := range fv.NumField() {
		name := fv.Type().Field(i).Name
		if _, ok := tv.Type().FieldByName(name); !ok && !contains(dropped, name) {
			t.Errorf("%s.%s is not carried to %s", fv.Type(), name, tv.Type())
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestConvertObjectInfo: every field of an object's metadata crosses from
// the origin to the catalog and to the gateway (a field added to one type
// and not the others fails here).
func TestConvertObjectInfo(t *testing.T) {
	var oi origin.ObjectInfo
	fill(t, &oi)
	co := fromOriginInfo(oi)
	if !reflect.DeepEqual(co.ObjectInfo, oi) {
		t.Errorf("catalog record %+v, want %+v", co.ObjectInfo, oi)
	}
	co.Metadata["x"] = "changed"
	if oi.Metadata["x"] != "" {
		t.Error("catalog record shares the origin's metadata map")
	}
	// ETagIsMD5 is the node's business (checking a version against its
	// origin), not the gateway's.
	sameFields(t, oi, toGatewayInfo(oi), "ETagIsMD5")
}

func TestConvertRequests(t *testing.T) {
	var pp gateway.PutParams
	fill(t, &pp)
	sameFields(t, pp, toOriginPut(pp))
	var lp gateway.ListParams
	fill(t, &lp)
	sameFields(t, lp, toOriginList(lp))
	var le origin.ListEntry
	fill(t, &le)
	r := toGatewayList(origin.ListResult{Entries: []origin.ListEntry{le}, CommonPrefixes: []string{"p/"}, IsTruncated: true, NextContinuationToken: "t"})
	sameFields(t, le, r.Entries[0])
	if !r.IsTruncated || r.NextContinuationToken != "t" || len(r.CommonPrefixes) != 1 {
		t.Errorf("listing page: %+v", r)
	}
	var cp gateway.CompletedPart
	fill(t, &cp)
	sameFields(t, cp, toOriginParts([]gateway.CompletedPart{cp})[0])
}
