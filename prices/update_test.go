package prices

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// fakePricing answers GetProducts with Price List documents, two per page.
type fakePricing struct {
	docs  map[string][]string // region → documents
	calls int
}

func priceDoc(typ, usd string) string {
	return fmt.Sprintf(`{"product":{"productFamily":"Compute Instance","attributes":{"instanceType":%q,"operatingSystem":"Linux"}},
	 "terms":{"OnDemand":{"SKU.JRTCKXETXF":{"priceDimensions":{"SKU.JRTCKXETXF.6YS6EN2CT7":{"unit":"Hrs","pricePerUnit":{"USD":%q}}}}}}}`, typ, usd)
}

func (f *fakePricing) GetProducts(_ context.Context, in *pricing.GetProductsInput, _ ...func(*pricing.Options)) (*pricing.GetProductsOutput, error) {
	f.calls++
	var region string
	for _, fl := range in.Filters {
		if aws.ToString(fl.Field) == "regionCode" {
			region = aws.ToString(fl.Value)
		}
	}
	docs, start := f.docs[region], 0
	if in.NextToken != nil {
		fmt.Sscan(*in.NextToken, &start)
	}
	end := min(start+2, len(docs))
	out := &pricing.GetProductsOutput{PriceList: docs[start:end]}
	if end < len(docs) {
		out.NextToken = aws.String(fmt.Sprint(end))
	}
	return out, nil
}

func TestPricesUpdateWritesTheManagersTableWhichCostsReadFirst(t *testing.T) {
	api := &fakePricing{docs: map[string][]string{"us-east-1": {
		priceDoc("t3.micro", "0.0110000000"), priceDoc("m7g.large", "0.0816000000"),
		`{"product":{"attributes":{"instanceType":"t3.micro"}},"terms":{"OnDemand":{"X":{"priceDimensions":{"Y":{"unit":"Quantity","pricePerUnit":{"USD":"99"}}}}}}}`,
	}}}
	dir := t.TempDir()
	counts, err := Update(t.Context(), api, dir, []string{"us-east-1"}, now)
	if err != nil || counts["us-east-1"] != 2 || api.calls != 2 {
		t.Fatalf("counts %v, %v, %d calls", counts, err, api.calls)
	}
	b := &Book{Dir: dir, Now: func() time.Time { return now }}
	p, source, err := b.Hourly(t.Context(), "us-east-1", "us-east-1a", "t3.micro", false)
	if err != nil || p != 0.011 || source != "AWS Price List API, fetched 2026-11-22" {
		t.Fatalf("t3.micro: %v %q %v", p, source, err)
	}
	if p, source, _ := b.Hourly(t.Context(), "us-east-1", "us-east-1a", "t3.small", false); p != 0.0208 || source != "on-demand price list" {
		t.Fatalf("a type the update did not list comes from the built-in table: %v %q", p, source)
	}
	if _, err := Update(t.Context(), api, dir, []string{"xx-nowhere-1"}, now); err == nil || !strings.Contains(err.Error(), "no Linux on-demand price for any instance type in xx-nowhere-1") {
		t.Fatalf("an empty region: %v", err)
	}
	if p, _, _ := b.Hourly(t.Context(), "us-east-1", "", "t3.micro", false); p != 0.011 {
		t.Fatal("a failed update changed the table")
	}
}
