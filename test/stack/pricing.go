package stack

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
)

// moto has no Price List API: the stack's proxy answers pricing:GetProducts itself,
// in the API's own shape (JSON 1.1; each product a JSON document in a string), for
// the Linux on-demand products of the stack's region. Its prices differ from the
// binary's built-in table, so a test sees which one a cost came from.

// PriceListPrices are the stand-in's hourly prices in the stack's region.
var PriceListPrices = map[string]float64{"t3.micro": 0.0108, "t3.small": 0.0216, "t4g.micro": 0.0087, "t4g.small": 0.0174, "m7g.large": 0.0850}

// priceListPage is how many products one answer holds at most, so that a client
// must follow NextToken as it must on AWS.
const priceListPage = 2

func servePriceList(w http.ResponseWriter, body []byte) {
	var in struct {
		ServiceCode string
		Filters     []struct{ Field, Value string }
		NextToken   string
	}
	if err := json.Unmarshal(body, &in); err != nil || in.ServiceCode != "AmazonEC2" {
		http.Error(w, `{"__type":"InvalidParameterException","Message":"the stand-in serves AmazonEC2 only"}`, http.StatusBadRequest)
		return
	}
	region := ""
	for _, f := range in.Filters {
		if f.Field == "regionCode" {
			region = f.Value
		}
	}
	var docs []string
	if region == Region {
		for _, typ := range slices.Sorted(maps.Keys(PriceListPrices)) {
			docs = append(docs, priceListDoc(typ, region, PriceListPrices[typ]))
		}
	}
	start, _ := strconv.Atoi(in.NextToken)
	end := min(start+priceListPage, len(docs))
	out := map[string]any{"FormatVersion": "aws_v1", "PriceList": docs[min(start, end):end]}
	if end < len(docs) {
		out["NextToken"] = strconv.Itoa(end)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// priceListDoc is one product as the Price List API writes it (abridged).
func priceListDoc(typ, region string, usd float64) string {
	return fmt.Sprintf(`{"product":{"productFamily":"Compute Instance","attributes":{"instanceType":%q,"regionCode":%q,"operatingSystem":"Linux","tenancy":"Shared","preInstalledSw":"NA","capacitystatus":"Used"},"sku":"STANDIN%s"},`+
		`"serviceCode":"AmazonEC2","terms":{"OnDemand":{"STANDIN.JRTCKXETXF":{"priceDimensions":{"STANDIN.JRTCKXETXF.6YS6EN2CT7":{"unit":"Hrs","pricePerUnit":{"USD":"%.10f"},"description":"$%.4f per On Demand Linux %s Instance Hour"}}}}}}`,
		typ, region, typ, usd, usd, typ)
}
