package prices

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/pricing/types"

	"github.com/ec2-executor/ec2-executor/statefile"
)

// The built-in table is what AWS published when the binary was made. `ec2-executor
// prices update` asks AWS's Price List API (pricing:GetProducts) for today's and
// writes the manager's own table beside the spot cache; prices are read from it
// first, then from the built-in one.

// PricingAPI is the one Price List call an update makes.
type PricingAPI interface {
	GetProducts(ctx context.Context, in *pricing.GetProductsInput, optFns ...func(*pricing.Options)) (*pricing.GetProductsOutput, error)
}

var _ PricingAPI = (*pricing.Client)(nil)

// PricingRegion is where the Price List API answers for every region.
const PricingRegion = "us-east-1"

// tablePath is the manager's on-demand table under the prices directory.
func tablePath(dir string) string { return filepath.Join(dir, "ondemand.json") }

// Update asks the Price List API for the Linux, shared-tenancy on-demand price of
// every instance type in each region and writes them into the manager's table in
// dir, keeping the regions it was not asked about. It returns how many types each
// region has. A region with no price at all is an error, and nothing is written.
func Update(ctx context.Context, api PricingAPI, dir string, regions []string, now time.Time) (map[string]int, error) {
	table, err := readTable(tablePath(dir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if table.Regions == nil {
		table.Regions = map[string]map[string]float64{}
	}
	counts := map[string]int{}
	for _, region := range regions {
		got, err := regionPrices(ctx, api, region)
		if err != nil {
			return nil, err
		}
		if len(got) == 0 {
			return nil, fmt.Errorf("the Price List API has no Linux on-demand price for any instance type in %s: is it a region?", region)
		}
		table.Regions[region], counts[region] = got, len(got)
	}
	table.Source = "AWS Price List API, fetched " + now.UTC().Format(time.DateOnly)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return counts, statefile.Write(tablePath(dir), table)
}

// linuxOnDemand selects what a worker is: Linux with no pre-installed software or
// licence, on shared hardware, billed as used (not a capacity reservation).
func linuxOnDemand(region string) []types.Filter {
	f := func(field, value string) types.Filter {
		return types.Filter{Type: types.FilterTypeTermMatch, Field: aws.String(field), Value: aws.String(value)}
	}
	return []types.Filter{f("regionCode", region), f("operatingSystem", "Linux"), f("tenancy", "Shared"),
		f("preInstalledSw", "NA"), f("capacitystatus", "Used"), f("licenseModel", "No License required")}
}

// regionPrices reads every page of the region's products.
func regionPrices(ctx context.Context, api PricingAPI, region string) (map[string]float64, error) {
	out := map[string]float64{}
	in := &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), Filters: linuxOnDemand(region), MaxResults: aws.Int32(100)}
	pages := pricing.NewGetProductsPaginator(api, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("asking the Price List API (pricing:GetProducts) for %s: %w", region, err)
		}
		for _, doc := range page.PriceList {
			typ, price, ok := hourly(doc)
			if ok && (out[typ] == 0 || price < out[typ]) {
				out[typ] = price
			}
		}
	}
	return out, nil
}

// product is the part of a Price List document an hourly price needs.
type product struct {
	Product struct {
		Attributes struct {
			InstanceType string `json:"instanceType"`
		} `json:"attributes"`
	} `json:"product"`
	Terms struct {
		OnDemand map[string]struct {
			PriceDimensions map[string]struct {
				Unit         string            `json:"unit"`
				PricePerUnit map[string]string `json:"pricePerUnit"`
			} `json:"priceDimensions"`
		} `json:"OnDemand"`
	} `json:"terms"`
}

// hourly is a product's instance type and its hourly USD price; ok is false for a
// document that has none (a host, a reservation, a price of 0).
func hourly(doc string) (typ string, price float64, ok bool) {
	var p product
	if json.Unmarshal([]byte(doc), &p) != nil || p.Product.Attributes.InstanceType == "" {
		return "", 0, false
	}
	for _, term := range p.Terms.OnDemand {
		for _, dim := range term.PriceDimensions {
			usd, err := strconv.ParseFloat(dim.PricePerUnit["USD"], 64)
			if dim.Unit == "Hrs" && err == nil && usd > 0 {
				return p.Product.Attributes.InstanceType, usd, true
			}
		}
	}
	return "", 0, false
}

// readTable reads an on-demand table file.
func readTable(path string) (onDemandTable, error) {
	var t onDemandTable
	b, err := os.ReadFile(path)
	if err != nil {
		return t, err
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("%s is not a price table (run `ec2-executor prices update` again): %w", path, err)
	}
	return t, nil
}
